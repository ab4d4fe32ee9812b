"""Nothing lost: a run killed at any moment leaves the previous output as it was, and the next run sweeps
what the killed one left.

A killed process cleans nothing up, so its staging folder (`.graphdsl-stage-<host>-<pid>-...`, beside the
output) stays; the next run writing into that folder removes it once its process is gone. The one moment
two files are inconsistent — between moving a new external data file and its model into place — is
covered by a journal: the sweep finishes that commit. Models here are a few hundred MB, so that a kill
lands inside writing, checking and moving, not only around them.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from reliability_helpers import assert_clean_exit, cli

from graphdsl import outputs

MB = 1 << 20
KILLS = 5
SIDE = 4096  # 4 weights of 4096 x 4096 float32: 256 MB of weights per model


def big_model(path: Path, seed: int, layers: int = 4) -> Path:
    """x @ W0 @ W1 @ ... : `layers` weights of SIDE x SIDE float32, embedded, values depending on `seed`."""
    rng = np.random.default_rng(seed)
    weights = [numpy_helper.from_array(rng.standard_normal((SIDE, SIDE), dtype=np.float32), f"w{i}")
               for i in range(layers)]
    nodes, prev = [], "x"
    for i in range(layers):
        out = "y" if i == layers - 1 else f"h{i}"
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [out], name=f"mm{i}"))
        prev = out
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, SIDE])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, SIDE])
    graph = helper.make_graph(nodes, "big", [x], [y], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


def digest(path: Path) -> str | None:
    if not path.exists():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * MB):
            h.update(chunk)
    return h.hexdigest()


def state(folder: Path, names: list[str]) -> tuple:
    return tuple(digest(folder / n) for n in names)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp"))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two inputs of 256 MB whose weights differ, so that every output file tells which input it is from."""
    root = tmp_path_factory.mktemp("crash")
    return root, big_model(root / "a.onnx", 1), big_model(root / "b.onnx", 2)


VARIANTS = {  # script, output files (data first)
    "external data": ('cleanup\nsave "model.onnx" external "model.data"\n', ["model.data", "model.onnx"]),
    "embedded": ("cleanup\nsave \"model.onnx\"\n", ["model.onnx"]),
}


def _run(script: Path, model: Path, *extra) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("GRAPHDSL_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "graphdsl", "run", str(script), "-i", str(model), "-q",
                             "--no-verify", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env)


def _wait_for_stage(proc: subprocess.Popen, folder: Path, timeout: float = 120) -> float:
    """Seconds until the run made its staging folder (polled every 2 ms); inf if it ended first."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if any(p.name.startswith(outputs.STAGE_PREFIX) for p in folder.iterdir()):
            return time.perf_counter() - start
        if proc.poll() is not None:
            return float("inf")
        time.sleep(0.002)
    raise AssertionError("no staging folder appeared")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_sigkill_at_random_points_while_saving(models, variant, tmp_path, figures):
    root, model_a, model_b = models
    text, names = VARIANTS[variant]
    script = tmp_path / "save.gds"
    script.write_text(text)
    assert_clean_exit(cli("run", script, "-i", model_a, "-q", "--no-verify"), 0)
    old = state(tmp_path, names)
    # the state a finished run from b leaves, and how long it spends after staging begins
    proc = _run(script, model_b)
    _wait_for_stage(proc, tmp_path)
    began = time.perf_counter()
    proc.wait()
    window = time.perf_counter() - began
    new = state(tmp_path, names)
    assert proc.returncode == 0 and new != old and new[0] != old[0]
    assert_clean_exit(cli("run", script, "-i", model_a, "-q", "--no-verify"), 0)
    rng = random.Random(6)
    outcomes = []
    for trial in range(KILLS):
        proc = _run(script, model_b)
        _wait_for_stage(proc, tmp_path)
        time.sleep(rng.uniform(0, window))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = state(tmp_path, names)
        left = leftovers(tmp_path)
        assert all(n.startswith(f"{outputs.STAGE_PREFIX}{outputs._host()}-{proc.pid}-") for n in left), left
        journal = any((tmp_path / n / outputs.JOURNAL).exists() for n in left)
        assert now in (old, new) or journal, f"trial {trial}: a mix of old and new files, and no journal"
        outputs.sweep(tmp_path)  # what the next run does first
        assert leftovers(tmp_path) == []
        after = state(tmp_path, names)
        assert after in (old, new), f"trial {trial}: the sweep left a mix of old and new files"
        outcomes.append("old kept" if after == old else "new complete")
        if after == new:
            assert_clean_exit(cli("run", script, "-i", model_a, "-q", "--no-verify"), 0)
    figures(f"SIGKILL while saving 256 MB ({variant}): {KILLS} kills in the {window:.1f} s after staging "
            "began: " + ", ".join(outcomes) + "; no leftovers after the sweep")


def test_kill_between_data_and_model_renames_is_finished_by_the_next_run(models, tmp_path):
    """The commit's one inconsistent moment, forced: the process kills itself right after moving the new
    data file over the old one. The next run (of any script writing there) completes the commit."""
    root, model_a, model_b = models
    script = tmp_path / "save.gds"
    script.write_text(VARIANTS["external data"][0])
    names = VARIANTS["external data"][1]
    assert_clean_exit(cli("run", script, "-i", model_a, "-q", "--no-verify"), 0)
    old = state(tmp_path, names)
    driver = textwrap.dedent(f"""
        import os, signal, sys
        from pathlib import Path
        real = os.replace
        def replace(src, dst):
            real(src, dst)
            into_place = Path(dst).parent == Path({str(tmp_path)!r})
            if into_place and Path(src).parent.name.startswith(".graphdsl-stage-"):
                os.kill(os.getpid(), signal.SIGKILL)
        os.replace = replace
        from graphdsl.cli import main
        sys.exit(main(["run", {str(script)!r}, "-i", {str(model_b)!r}, "-q", "--no-verify"]))
        """)
    proc = subprocess.run([sys.executable, "-c", driver], capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL
    mixed = state(tmp_path, names)
    assert mixed[0] != old[0] and mixed[1] == old[1]  # new data beside the old model: what the journal is for
    (stage,) = [tmp_path / n for n in leftovers(tmp_path)]
    assert (stage / outputs.JOURNAL).exists()
    other = tmp_path / "other.gds"
    other.write_text('cleanup\nsave "unrelated.onnx"\n')
    assert_clean_exit(cli("run", other, "-i", model_a, "-q", "--no-verify"), 0)  # sweeps first
    assert leftovers(tmp_path) == []
    reference = tmp_path / "ref" / "model.onnx"
    assert_clean_exit(cli("run", script, "-i", model_b, "-q", "--no-verify", "-o", reference), 0)
    assert state(tmp_path, names) == state(tmp_path / "ref", names)  # exactly what the killed run would write


def test_journal_ignored_when_the_destination_changed_since(tmp_path):
    """Someone replaced the model after the kill: the sweep removes the staging folder and touches nothing."""
    dest = tmp_path
    (dest / "m.data").write_bytes(b"new data")
    (dest / "m.onnx").write_bytes(b"old model")
    stage = dest / f"{outputs.STAGE_PREFIX}{outputs._host()}-{_dead_pid()}-x"
    stage.mkdir()
    (stage / "m.onnx").write_bytes(b"new model")
    data_id = outputs._identity(dest / "m.data")
    outputs._write_journal(stage, dest, ["m.onnx"])
    moved = f'{{"name": "m.data", "staged": {data_id}, "replaced": null}}, '
    journal = (stage / outputs.JOURNAL).read_text().replace('"files": [', '"files": [' + moved)
    (stage / outputs.JOURNAL).write_text(journal)
    (dest / "m.onnx").write_bytes(b"user's own model")  # the destination moved on
    assert outputs.sweep(dest) == [f"removed `{stage.name}` (process {_dead_pid()} ended)"]
    assert (dest / "m.onnx").read_bytes() == b"user's own model" and not stage.exists()


_DEAD: list[int] = []


def _dead_pid() -> int:
    """The pid of a process that has ended."""
    if not _DEAD:
        proc = subprocess.Popen([sys.executable, "-c", "pass"])
        proc.wait()
        _DEAD.append(proc.pid)
    return _DEAD[0]


def test_sweep_removes_only_what_is_graphdsls_and_dead(tmp_path):
    host = outputs._host()
    dead = tmp_path / f"{outputs.STAGE_PREFIX}{host}-{_dead_pid()}-abc"
    alive = tmp_path / f"{outputs.STAGE_PREFIX}{host}-{os.getppid()}-abc"
    mine = tmp_path / f"{outputs.STAGE_PREFIX}{host}-{os.getpid()}-abc"
    other_host = tmp_path / f"{outputs.STAGE_PREFIX}0000beef-{_dead_pid()}-abc"
    old_style = tmp_path / f"{outputs.STAGE_PREFIX}k2j4h5"  # no owner in the name: never guessed at
    not_ours = tmp_path / ".cache-stage-1-abc"
    for folder in (dead, alive, mine, other_host, old_style, not_ours):
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"partial")
    (dead / ".model.onnx.0123456789ab.tmp").write_bytes(b"half")
    assert outputs.sweep(tmp_path) == [f"removed `{dead.name}` (process {_dead_pid()} ended)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f.name for f in (alive, mine, other_host, old_style, not_ours))
    assert socket.gethostname()  # the host part is a hash of it


def test_reused_pid_counts_as_gone(tmp_path):
    """A folder older than the live process that now has its pid was made by an earlier process."""
    folder = tmp_path / f"{outputs.STAGE_PREFIX}{outputs._host()}-{os.getppid()}-abc"
    folder.mkdir()
    started = outputs._start_time(os.getppid())
    if started is None:
        pytest.skip("no /proc")
    os.utime(folder, (started - 60, started - 60))
    assert outputs.sweep(tmp_path) and not folder.exists()
