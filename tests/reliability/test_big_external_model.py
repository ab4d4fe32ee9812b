"""A model over 2 GB: external-data weights no pass changes are never read into memory.

A generated model with 2.25 GiB of external weights (written 16 MiB at a time; never in this process's
memory) goes through the default pipeline and a `save ... external` via the CLI in a fresh process. The
pipeline has work to do (a foldable Shape chain, an Identity, a spelled-out GELU); the output must load
and pass the checker, carry every weight byte for byte, leave the input untouched and nothing behind,
and the process must peak well below the weight bytes.

ONNX Runtime verification is off (--no-verify): its sessions would hold the weights of both models (with
MatMul weights prepacked, more), about 5 GB of this machine's memory and most of the test's time, and
the RSS figure would measure ONNX Runtime instead of graphdsl. The fold and the fusions it runs are
verified on small models elsewhere (tests/stdlib, test_real_models_default_pipeline).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from hostile_models import big_external
from onnx import TensorProto, helper, numpy_helper

from graphdsl.verify import check_model

GIB = 1 << 30
SIDE = 8192  # each weight 8192 x 8192 float32: 256 MiB
BIG_COUNT = 9  # 2.25 GiB, over protobuf's 2 GiB
RSS_LIMIT = 0.5  # of the weight bytes
GONE_OPS = {"Shape", "Gather", "Unsqueeze", "Concat", "Reshape", "Identity", "Div", "Erf"}

# The CLI is started by a small Python that only waits for it: a child's ru_maxrss starts at its
# parent's peak (exec records the address space it replaces), and pytest's own may be large.
_MEASURE = """
import json, resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"rc": proc.returncode, "stdout": proc.stdout[-3000:], "stderr": proc.stderr[-3000:],
                  "peak": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))
"""


def measured_cli(*args, cwd: Path) -> dict:
    """`python -m graphdsl ARGS` in a fresh process: exit code, output tails and its peak RSS in bytes."""
    env = {k: v for k, v in os.environ.items() if k != "GRAPHDSL_DEBUG"}
    proc = subprocess.run([sys.executable, "-c", _MEASURE, sys.executable, "-m", "graphdsl", *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=True)
    return json.loads(proc.stdout)


def assert_clean(result: dict) -> None:
    shown = f"exit {result['rc']}\nstdout:\n{result['stdout']}\nstderr:\n{result['stderr']}"
    assert result["rc"] == 0, shown
    assert "Traceback" not in result["stdout"] + result["stderr"], shown


def sha256_range(path: Path, offset: int, length: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(offset)
        while length:
            chunk = f.read(min(length, 1 << 24))
            assert chunk, f"{path} ends {length} bytes early"
            h.update(chunk)
            length -= len(chunk)
    return h.hexdigest()


def external_digests(model_path: Path) -> dict[str, str]:
    """sha256 of each external initializer's bytes, read range by range from its data file."""
    model = onnx.load(str(model_path), load_external_data=False)
    found = {}
    for t in model.graph.initializer:
        if t.data_location == TensorProto.EXTERNAL:
            info = {e.key: e.value for e in t.external_data}
            found[t.name] = sha256_range(model_path.parent / info["location"], int(info.get("offset", 0)),
                                         int(info["length"]))
    return found


def identity(path: Path) -> tuple:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def needs_disk(free_bytes: int, folder: Path) -> None:
    if shutil.disk_usage(folder).free < free_bytes:
        pytest.skip(f"needs {free_bytes / GIB:.1f} GiB free in {folder}")


@pytest.fixture
def workdir(tmp_path):
    """A folder deleted as soon as the test ends (pytest keeps tmp_path folders: these are GBs)."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


def run_default(folder: Path, model: Path) -> tuple[Path, dict, float]:
    """The default pipeline on `model`, saved with external data into out/; checks what every run must."""
    script = folder / "default.gds"
    script.write_text('import "std/default.gds"\nsave "out/big.opt.onnx" external "big.opt.onnx.data"\n')
    before = {p: identity(p) for p in (model, model.with_name(model.name + ".data"))}
    model_bytes = model.read_bytes()
    files_before = files_under(folder)
    start = time.perf_counter()
    result = measured_cli("run", script, "-i", model, "--no-verify", "--quiet", cwd=folder)
    seconds = time.perf_counter() - start
    assert_clean(result)
    out = folder / "out" / "big.opt.onnx"
    # nothing left behind: no staging folder, skeleton or temporary file, beside the input or the output
    assert files_under(folder) == files_before | {"out", "out/big.opt.onnx", "out/big.opt.onnx.data"}
    # the input: same files, same bytes
    assert {p: identity(p) for p in before} == before
    assert model.read_bytes() == model_bytes
    return out, result, seconds


def test_big_external_model_default_pipeline(workdir, figures):
    needs_disk(6 * GIB, workdir)
    start = time.perf_counter()
    model, digests = big_external(workdir, BIG_COUNT, SIDE)
    weight_bytes = BIG_COUNT * SIDE * SIDE * 4
    assert weight_bytes > 2 * GIB
    generated = time.perf_counter() - start

    out, result, seconds = run_default(workdir, model)

    start = time.perf_counter()
    onnx.checker.check_model(str(out), full_check=True)  # by path: checks the data file, reads no weight
    proto = onnx.load(str(out), load_external_data=False)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("MatMul") == BIG_COUNT and ops.count("Gelu") == 1, ops
    assert not GONE_OPS & set(ops), ops  # folded, bypassed and fused away
    assert {e.value for t in proto.graph.initializer for e in t.external_data if e.key == "location"} == \
        {"big.opt.onnx.data"}
    assert external_digests(out) == digests  # every weight, byte for byte
    assert external_digests(model) == digests  # and the input's data file as it was
    checked = time.perf_counter() - start

    peak = result["peak"]
    figures(f"big external model ({weight_bytes / GIB:.2f} GiB of weights, default pipeline, --no-verify): "
            f"peak RSS {peak / 2**20:.0f} MB = {peak / weight_bytes:.3f}x the weights (limit {RSS_LIMIT}x); "
            f"run {seconds:.1f} s, generate {generated:.1f} s, check outputs {checked:.1f} s")
    assert peak <= RSS_LIMIT * weight_bytes


def test_default_pipeline_without_value_info_reads_no_weights(workdir, figures):
    """The same, 512 MiB, without the types between nodes: the rules infer them."""
    needs_disk(2 * GIB, workdir)
    count = 2
    model, digests = big_external(workdir, count, SIDE, value_info=False)
    out, result, _ = run_default(workdir, model)
    assert external_digests(out) == digests
    weight_bytes = count * SIDE * SIDE * 4
    figures(f"external model without value_info ({weight_bytes >> 20} MiB, default pipeline, --no-verify): "
            f"peak RSS {result['peak'] / 2**20:.0f} MB = {result['peak'] / weight_bytes:.2f}x the weights")
    assert result["peak"] <= RSS_LIMIT * weight_bytes


# --- the checker's skeleton (graphdsl/onnxio/skeleton.py) ----------------------------------------------

def embedded_model(folder: Path, raw_bytes: int | None = None, op: str = "MatMul", value: float = 0.5) -> Path:
    """x @ w with w (256 x 256 float32, 256 KiB) embedded; `raw_bytes` cuts its raw_data short."""
    w = numpy_helper.from_array(np.full((256, 256), value, np.float32), "w")
    if raw_bytes is not None:
        w.raw_data = w.raw_data[:raw_bytes]
    node = helper.make_node(op, ["x", "w"], ["y"], name="mm")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256])], [w])
    path = folder / f"m_{op}_{raw_bytes}_{value}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


@pytest.mark.parametrize("case", ["valid", "short raw data", "unknown op"])
def test_skeleton_check_gives_the_files_verdict(tmp_path, case, monkeypatch):
    """Checking through the skeleton finds what checking the file finds, in the file's words, and leaves
    no skeleton behind (a small file is checked through one here too)."""
    import graphdsl.verify

    monkeypatch.setattr(graphdsl.verify, "SKELETON_MIN", 0)
    path = embedded_model(tmp_path, raw_bytes=1000 if case == "short raw data" else None,
                          op="NoSuchOp" if case == "unknown op" else "MatMul")
    plain, stripped = check_model(path), check_model(path, skeleton=True)
    assert [d.message for d in stripped] == [d.message for d in plain]
    assert bool(plain) == (case != "valid")
    assert files_under(tmp_path) == {path.name}


def test_skeleton_refers_to_the_same_bytes(tmp_path):
    from graphdsl.onnxio.skeleton import write_skeleton

    path = embedded_model(tmp_path)
    skeleton = write_skeleton(path)
    try:
        assert skeleton.stat().st_size < 4096 < path.stat().st_size
        loaded, original = onnx.load(str(skeleton)), onnx.load(str(path))  # loads data from `path`
        assert loaded.graph.initializer[0].raw_data == original.graph.initializer[0].raw_data
    finally:
        skeleton.unlink()


def test_verification_runs_embedded_weights_from_the_file(tmp_path, monkeypatch):
    """ONNX Runtime gets the skeleton and reads the weights from the file: they are the file's."""
    import graphdsl.verify
    from graphdsl.verify import verify

    monkeypatch.setattr(graphdsl.verify, "SKELETON_MIN", 0)

    model, other = embedded_model(tmp_path), embedded_model(tmp_path, value=0.25)
    assert verify(model, model).passed
    assert not verify(model, other).passed
    assert files_under(tmp_path) == {model.name, other.name}
