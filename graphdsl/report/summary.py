"""A model at a glance: node and op counts, parameters and their bytes, the input/output signature.

Computed from a graph snapshot, so constant values are never loaded: parameter counts and bytes come
from each constant's shape and dtype.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from graphdsl.report.graphdiff import snapshot

_ONNX_NAMES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64",
               onnx.TensorProto.FLOAT16: "float16"}


def dtype_name(dtype: object) -> str:
    """`float32`, `int64`, `bfloat16`...: numpy's names, and ONNX's (lower case) for types numpy lacks."""
    if dtype is None:
        return "?"
    if isinstance(dtype, int) and not isinstance(dtype, bool):
        try:
            return _ONNX_NAMES.get(dtype) or onnx.TensorProto.DataType.Name(dtype).lower()
        except ValueError:
            return str(dtype)
    try:
        return str(np.dtype(dtype))
    except TypeError:
        return str(dtype)


def shape_text(shape: list | tuple | None) -> str:
    """`[batch, 3, 640, 640]`; `?` for an unknown dim, `[?]` for an unknown rank."""
    if shape is None:
        return "[?]"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


@dataclass(frozen=True)
class TensorInfo:
    """A graph input or output: name, element type and shape (ints, symbolic names or None)."""

    name: str
    dtype: str
    shape: tuple | None

    @property
    def signature(self) -> str:
        """`float32 [1, 3, 640, 640]`."""
        return f"{self.dtype} {shape_text(self.shape)}"

    def to_json(self) -> dict[str, Any]:
        """Keys: name, dtype, shape (a list, or null for an unknown rank; unknown dims are null)."""
        shape = None if self.shape is None else list(self.shape)
        return {"name": self.name, "dtype": self.dtype, "shape": shape}


@dataclass
class ModelSummary:
    """Counts over the whole model, subgraphs (If/Loop/Scan bodies) included.

    Attributes:
        node_count: how many nodes.
        op_histogram: op type -> node count, most frequent first (ties by name).
        parameter_count: elements of all constant tensors that nodes read.
        parameter_bytes: their size in bytes (from shape and dtype; values are not loaded).
        initializer_count: how many such constant tensors.
        inputs, outputs: the graph's signature.
    """

    node_count: int
    op_histogram: dict[str, int]
    parameter_count: int
    parameter_bytes: int
    initializer_count: int
    inputs: list[TensorInfo] = field(default_factory=list)
    outputs: list[TensorInfo] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Keys: node_count, op_histogram, parameter_count, parameter_bytes, initializer_count, inputs,
        outputs (see `TensorInfo.to_json`)."""
        return {"node_count": self.node_count, "op_histogram": dict(self.op_histogram),
                "parameter_count": self.parameter_count, "parameter_bytes": self.parameter_bytes,
                "initializer_count": self.initializer_count, "inputs": [t.to_json() for t in self.inputs],
                "outputs": [t.to_json() for t in self.outputs]}

    def __rich_console__(self, console, options):
        from graphdsl.report.render import render_summary

        yield from render_summary(self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        from graphdsl.report.render import mimebundle

        return mimebundle(self)


def model_summary(graph: gs.Graph, snap: Any = None) -> ModelSummary:
    """Summarize a graph: node and op counts, parameters and bytes, inputs and outputs. `snap`: the
    graph's snapshot when the caller has one (a run takes one per pass for the diffs anyway)."""
    snap = snap if snap is not None else snapshot(graph)
    ops = Counter(snap.ops)
    values = [c._values for c in snap.constants]  # LazyValues or ndarray: shape and dtype without loading
    parameters = sum(math.prod(v.shape) for v in values)
    return ModelSummary(node_count=len(snap.nodes),
                        op_histogram=dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
                        parameter_count=int(parameters), parameter_bytes=int(sum(map(_nbytes, values))),
                        initializer_count=len(values), inputs=[_info(t) for t in graph.inputs],
                        outputs=[_info(t) for t in graph.outputs])


def _nbytes(values: Any) -> int:
    known = getattr(values, "nbytes", None)
    if known is not None:
        return int(known)
    return math.prod(values.shape) * _itemsize(values.dtype)


def _itemsize(dtype: object) -> int:
    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(dtype)).itemsize


def _info(tensor: gs.Tensor) -> TensorInfo:
    if isinstance(tensor, gs.Constant):
        return TensorInfo(tensor.name, dtype_name(tensor.dtype), tuple(tensor.shape))
    shape = tensor.shape
    return TensorInfo(tensor.name, dtype_name(tensor.dtype), None if shape is None else tuple(shape))
