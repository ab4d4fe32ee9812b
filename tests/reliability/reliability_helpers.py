"""Shared pieces of the reliability tests: the default pipeline, ONNX Runtime runs, output comparison,
and running the CLI in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from graphdsl.compile import std_library_dir

REPO = Path(__file__).resolve().parents[2]

# Standard rule files that belong in the default pipeline as soon as they exist. Importing one that
# std/default.gds imports already does nothing (each file is imported once per run), so the tests
# cover them from the day they appear, whether or not default.gds has caught up.
RULE_FILES = ("fusions.gds", "cleanup.gds")


def default_pipeline_files() -> list[str]:
    """`std/...` names the semantic tests run: default.gds, then any rule file it may not import yet."""
    return ["std/default.gds"] + [f"std/{n}" for n in RULE_FILES if (std_library_dir() / n).is_file()]


def default_script() -> str:
    return "".join(f'import "{name}"\n' for name in default_pipeline_files())


def session(model: onnx.ModelProto | str | os.PathLike) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 4  # the tests judge ORT's failures themselves
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def to_numpy(value):
    """A backend test's input or expected output as ORT takes and gives it (TensorProto, numpy scalar,
    sequence, optional)."""
    if isinstance(value, onnx.TensorProto):
        return onnx.numpy_helper.to_array(value)
    if isinstance(value, (list, tuple)):
        return [to_numpy(v) for v in value]
    return None if value is None else np.asarray(value)


def outputs_close(got, want, rtol: float, atol: float) -> bool:
    """Outputs (tensors, sequences, optionals) equal within tolerance; NaNs equal NaNs, shapes must match."""
    if want is None or got is None:
        return want is None and got is None
    if isinstance(want, (list, tuple)) or isinstance(got, (list, tuple)):
        return (isinstance(want, (list, tuple)) and isinstance(got, (list, tuple)) and len(got) == len(want)
                and all(outputs_close(g, w, rtol, atol) for g, w in zip(got, want)))
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return False
    if want.dtype.kind in "fc" or got.dtype.kind in "fc":
        try:
            return bool(np.allclose(got.astype(np.complex128 if want.dtype.kind == "c" else np.float64),
                                    want.astype(np.complex128 if want.dtype.kind == "c" else np.float64),
                                    rtol=rtol, atol=atol, equal_nan=True))
        except (TypeError, ValueError):  # e.g. float8 types numpy cannot convert: compare the bits
            return got.tobytes() == want.tobytes()
    return bool(np.array_equal(got, want))


def identical(got, want) -> bool:
    """Bit-for-bit the same outputs."""
    if want is None or got is None:
        return want is None and got is None
    if isinstance(want, (list, tuple)) or isinstance(got, (list, tuple)):
        return (isinstance(want, (list, tuple)) and isinstance(got, (list, tuple)) and len(got) == len(want)
                and all(identical(g, w) for g, w in zip(got, want)))
    got, want = np.asarray(got), np.asarray(want)
    return got.shape == want.shape and got.dtype == want.dtype and got.tobytes() == want.tobytes()


def cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300,
        ) -> subprocess.CompletedProcess:
    """`python -m graphdsl ARGS` in a fresh process, as a user would run it."""
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("GRAPHDSL_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "graphdsl", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def assert_clean_exit(proc: subprocess.CompletedProcess, *codes: int) -> None:
    """The documented exit code, and no Python traceback or internal error on either stream."""
    shown = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert proc.returncode in codes, shown
    for stream in (proc.stdout, proc.stderr):
        assert "Traceback" not in stream and "internal error" not in stream, shown


def small_model() -> onnx.ModelProto:
    """A small MLP (its names are the fuzzer's MODEL_NAMES): MatMul, Add, Clip, MatMul, Softmax."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
               for name, shape in (("w1", (16, 32)), ("b1", (32,)), ("w2", (32, 4)), ("lo", ()))]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
             helper.make_node("Add", ["h", "b1"], ["hb"], name="add1"),
             helper.make_node("Clip", ["hb", "lo"], ["hc"], name="clip"),
             helper.make_node("MatMul", ["hc", "w2"], ["y0"], name="mm2"),
             helper.make_node("Softmax", ["y0"], ["y"], name="softmax", axis=-1)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])
    graph = helper.make_graph(nodes, "mlp", [x], [y], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8,
                             producer_name="reliability-tests")
