"""The same graph always gives the same bytes: across runs, processes and PYTHONHASHSEED values."""

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import onnx
import onnxio_builders as builders

from graphdsl.onnxio import read_model, write_model

REPO = Path(__file__).resolve().parents[2]

# Reads the model, edits it (so nodes, value-infos and the opset list are re-encoded, not copied) and
# writes it; prints the digest of the output.
SCRIPT = textwrap.dedent("""
    import hashlib, sys
    import numpy as np
    import onnx_graphsurgeon as gs
    from graphdsl.onnxio import read_model, write_model
    src, out = sys.argv[1], sys.argv[2]
    loaded = read_model(src)
    g = loaded.graph
    for i, node in enumerate(g.nodes):
        node.name = f"renamed_{i}"
        node.attrs["note"] = "edited"
    extra = gs.Variable("extra", dtype=np.float32, shape=[2])
    g.nodes.append(gs.Node("Relu", inputs=[g.outputs[0]], outputs=[extra], domain="late.ops"))
    g.outputs.append(extra)
    write_model(g, out, loaded.meta)
    print(hashlib.sha256(open(out, "rb").read()).hexdigest())
""")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_writes_are_identical(tmp_path):
    model, _ = builders.with_function()
    onnx.save(model, tmp_path / "m.onnx")
    loaded = read_model(tmp_path / "m.onnx")
    write_model(loaded.graph, tmp_path / "a.onnx", loaded.meta)
    write_model(loaded.graph, tmp_path / "b.onnx", loaded.meta)
    assert digest(tmp_path / "a.onnx") == digest(tmp_path / "b.onnx")


def test_output_does_not_depend_on_the_hash_seed(tmp_path):
    model, _ = builders.many_domains()
    onnx.save(model, tmp_path / "m.onnx")
    digests = set()
    for seed in ("0", "1", "12345", "random"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(REPO))
        out = tmp_path / f"out_{seed}.onnx"
        proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "m.onnx"), str(out)], env=env,
                              capture_output=True, text=True, timeout=120, check=True)
        digests.add(proc.stdout.strip())
    assert len(digests) == 1
    written = onnx.load(tmp_path / "out_0.onnx")
    domains = [o.domain for o in written.opset_import]
    assert domains == ["", "alpha.ops", "beta.ops", "kappa.ops", "late.ops", "mid.ops", "omega.ops",
                       "zeta.ops"]
