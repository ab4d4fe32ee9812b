"""The same script on the same model writes the same bytes: across runs, processes and PYTHONHASHSEEDs.

Each hash seed gets a fresh process that runs every (script, model) pair twice through the CLI; every
file written (models and external data) must be identical across all of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import hostile_models as hm
import onnx
import pytest
from realmodels import real_model
from reliability_helpers import default_script, small_model

SEEDS = ["0", "1", "4242"]

SCRIPTS = {
    "default": default_script() + 'save "out.onnx"\n',
    "fold_rename": textwrap.dedent("""\
        fold constants
        cleanup
        rename tensor {input} to renamed_input
        {rename_node}
        set batch N
        toposort
        save "out.onnx" external "out.data" size_threshold 256
        """),
    "external_then_tidy": 'save "early.onnx" external "early.data"\nimport "std/tidy.gds"\nsave "out.onnx"\n',
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> (path, first input, a node reading it): real exports, an If reading outer names, an MLP."""
    root = tmp_path_factory.mktemp("models")
    onnx.save(small_model(), root / "mlp.onnx")
    paths = {"mlp": root / "mlp.onnx", "if_outer": hm.if_outer_scope(root),
             "ppocrv4_det": real_model("ppocrv4_det"), "silero_vad": real_model("silero_vad")}
    out = {}
    for name, path in paths.items():
        proto = onnx.load(path, load_external_data=False)
        inits = {t.name for t in proto.graph.initializer}
        first_input = next(i.name for i in proto.graph.input if i.name not in inits)
        # a named node that reads the input: folding cannot remove it
        node = next((n.name for n in proto.graph.node if n.name and first_input in n.input), None)
        out[name] = (path, first_input, node)
    return out


DRIVER = """
import hashlib, json, sys
from pathlib import Path
from graphdsl.cli import main
jobs, digests = json.loads(sys.argv[1]), {}
for repeat in range(2):
    for job in jobs:
        out = Path(job["out"]) / str(repeat)
        out.mkdir(parents=True)
        (out / "s.gds").write_text(job["script"])
        code = main(["run", str(out / "s.gds"), "-i", job["model"], "-q", "--no-verify"])
        assert code == 0, (job, code)
        for f in sorted(out.iterdir()):
            if f.name != "s.gds":
                key = f"{job['name']}/{f.name}"
                digests.setdefault(key, []).append(hashlib.sha256(f.read_bytes()).hexdigest())
print(json.dumps(digests))
"""


@pytest.mark.realmodel
def test_outputs_identical_across_runs_and_hash_seeds(models, tmp_path, figures):
    jobs = []
    for script_name, text in SCRIPTS.items():
        for model_name, (path, first_input, first_node) in models.items():
            rename_node = f"rename node {json.dumps(first_node)} to renamed_node" if first_node else ""
            script = text.format(input=json.dumps(first_input), rename_node=rename_node)
            jobs.append({"name": f"{script_name}:{model_name}", "script": script, "model": str(path),
                         "out": str(tmp_path / "{seed}" / script_name / model_name)})
    results = {}
    for seed in SEEDS:
        seeded = [dict(j, out=j["out"].format(seed=seed)) for j in jobs]
        env = dict(os.environ, PYTHONHASHSEED=seed)
        proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(seeded)], capture_output=True, text=True,
                              env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[seed] = json.loads(proc.stdout.strip().splitlines()[-1])
    files = sorted(results[SEEDS[0]])
    differing = [f for f in files if len({d for seed in SEEDS for d in results[seed][f]}) != 1]
    figures(f"byte-identical outputs: {len(jobs)} (script, model) pairs, {len(files)} files, "
            f"2 runs x {len(SEEDS)} PYTHONHASHSEEDs each: {len(files) - len(differing)} identical")
    assert not differing
    assert all(set(results[seed]) == set(files) for seed in SEEDS)
