"""Which IR version to write: what the installed onnxruntime reads, and at least what the opsets need.

onnx 1.23 writes IR 14 by default; onnxruntime 1.31 and older refuse anything above 13, and a model
they cannot load cannot be verified. So the default is probed from the runtime actually installed.
"""

from __future__ import annotations

import functools

import onnx
from onnx import helper

# Every onnxruntime graphdsl supports (>= 1.20) reads IR 10: models at or below it need no probe, which
# saves importing onnxruntime (a second or more) in processes that only rewrite files.
ALWAYS_READABLE = 10


@functools.cache
def default_ir_version() -> int:
    """The highest IR version the installed onnxruntime loads, never above onnx.IR_VERSION.

    Probed once per process with a one-node model, newest version first. Without onnxruntime the
    answer is onnx.IR_VERSION.

    Returns:
        The IR version.
    """
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - onnxruntime is a dependency
        return onnx.IR_VERSION
    options = ort.SessionOptions()
    options.log_severity_level = 4  # the refusals are expected; keep them off stderr
    for version in range(onnx.IR_VERSION, 6, -1):
        try:
            ort.InferenceSession(_probe(version), options, providers=["CPUExecutionProvider"])
            return version
        except Exception:  # noqa: BLE001 - any refusal means "not this version"
            continue
    return 7  # pragma: no cover - a runtime older than IR 7 (2020) is not supported anyway


def _probe(version: int) -> bytes:
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=version)
    return model.SerializeToString()


def minimum_ir_version(opset_imports) -> int:
    """The lowest IR version that allows these opsets (unknown domains ignored)."""
    return helper.find_min_ir_version_for(list(opset_imports), ignore_unknown=True)


def choose_ir_version(requested: int | None, graph_ir: int | None, opset_imports) -> tuple[int, str | None]:
    """The IR version to write, and a note when it differs from what was asked for.

    An explicit request wins; otherwise the graph's own version, capped at what onnxruntime reads.
    Either is raised to the minimum the opsets require (a lower IR would make an invalid model).
    """
    if requested is not None:
        wanted = requested
    elif graph_ir and graph_ir <= ALWAYS_READABLE:
        wanted = graph_ir
    else:
        wanted = min(graph_ir or default_ir_version(), default_ir_version())
    floor = minimum_ir_version(opset_imports)
    if wanted < floor:
        return floor, f"IR version {wanted} is too old for the model's opsets; writing IR {floor}"
    return wanted, None
