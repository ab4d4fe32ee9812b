"""`set input x shape [N, 3, 224, 224]`: the declared shape and element type of a graph input or output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import onnx

from graphdsl import dtypes
from graphdsl.diagnostics import (Diagnostic, ModelError, ScriptError, Span, did_you_mean, model_error,
                                  script_error)
from graphdsl.pipeline import Pass, PassContext, PassResult
from graphdsl.syntax.names import span_of

if TYPE_CHECKING:
    import onnx_graphsurgeon as gs

    from graphdsl.check import ModelScope

NOT_GRAPH_IO = "GDS315"
BAD_DIM = "GDS316"
BAD_KIND = "GDS115"  # the option-value code: `kind` is a parameter given a value it does not take

KINDS = ("input", "output")


def gs_dtype(name: str) -> object:
    """A dtype name as graphsurgeon stores it: a numpy dtype where numpy has one, else the ONNX enum."""
    onnx_type = dtypes.onnx_dtype(name)
    np_type = onnx.helper.tensor_dtype_to_np_dtype(onnx_type)
    # bfloat16 and the float8 types map onto ml_dtypes' numpy types, which graphsurgeon cannot export
    return np_type if np_type.kind in "biufc" and np_type.type.__module__ == "numpy" else onnx_type


def plain_dim(dim: object) -> object:
    """A script dim as ONNX stores it: ints stay, symbolic `Name`s become plain strings, `?` stays None."""
    return str(dim) if isinstance(dim, str) else dim


@dataclass
class SetTensor(Pass):
    """Set the shape, element type or single dims of a graph input or output.

    `set input x shape [N, 3, 224, 224] dtype float16` -> x: float16[N, 3, 224, 224]

    Args:
        kind: "input" or "output": which list of the graph the name is looked up in.
        name: the graph input's or output's name.
        shape: the whole shape; each dim an int, a symbolic name (str) or None (unknown).
        dtype: the element type, e.g. "float32", "float16", "int64".
        dims: single dims to set, by index (negative counts from the end), e.g. {0: "batch"}.
    """

    kind: str
    name: str
    shape: list | None = None
    dtype: str | None = None
    dims: dict[int, object] | None = None
    span: Span | None = None

    def check(self, scope: "ModelScope") -> None:
        try:
            _require_kind(self.kind, self.span)
        except ScriptError as e:  # reported with the other findings, so that checking goes on
            scope.diagnostics.extend(e.diagnostics)
        scope.require_tensor(self.name)

    def apply(self, graph: "gs.Graph", ctx: PassContext) -> PassResult:
        _require_kind(self.kind, self.span)
        tensor = self._find(graph)
        before = (list(tensor.shape) if tensor.shape is not None else None, tensor.dtype)
        if self.shape is not None:
            tensor.shape = [plain_dim(d) for d in self.shape]
        if self.dtype is not None:
            tensor.dtype = gs_dtype(self.dtype)
        for index, dim in (self.dims or {}).items():
            self._set_dim(tensor, index, dim)
        changed = (list(tensor.shape) if tensor.shape is not None else None, tensor.dtype) != before
        return PassResult(changed=changed, counts={"tensors": int(changed)})

    def _find(self, graph: "gs.Graph") -> "gs.Tensor":
        tensors = graph.inputs if self.kind == "input" else graph.outputs
        for t in tensors:
            if t.name == self.name:
                return t
        raise ModelError(not_graph_io(self.kind, self.name, [t.name for t in tensors], graph, self.span))

    def _set_dim(self, tensor: "gs.Tensor", index: int, dim: object) -> None:
        shape = list(tensor.shape) if tensor.shape is not None else None
        if shape is None or not -len(shape) <= index < len(shape):
            rank = "unknown rank" if shape is None else f"rank {len(shape)}"
            raise model_error(BAD_DIM, f"{self.kind} `{self.name}` has {rank}: it has no dim {index}",
                              span=span_of(self.name, self.span),
                              hint="set the whole shape first: `shape [...]`" if shape is None
                              else f"its shape is {shape}; dims count from 0")
        shape[index] = plain_dim(dim)
        tensor.shape = shape


# The pass's own name is a class attribute, set after the dataclass is made: the compiler passes the
# tensor as the keyword `name`, which as a field shadows `Pass.name` on instances (read it from the class).
SetTensor.name = "set_tensor"


def _require_kind(kind: str, span: Span | None) -> None:
    if kind not in KINDS:
        raise script_error(BAD_KIND, f"`kind` takes \"input\" or \"output\", got {kind!r}", span)


def not_graph_io(kind: str, name: str, names: list[str], graph: "gs.Graph", span: Span | None) -> Diagnostic:
    """The error for a name that is not among the graph's inputs (or outputs), with the closest one."""
    best = did_you_mean(name, names, cutoff=0.5)
    exists = name in graph.tensors()
    message = (f"tensor `{name}` is not a graph {kind}" if exists else f"the graph has no {kind} `{name}`")
    label = f"did you mean `{best}`?" if best and best != name else f"not a graph {kind}"
    return Diagnostic(NOT_GRAPH_IO, message, span=span_of(name, span), label=label,
                      hints=(f"graph {kind}s: {', '.join(names) or 'none'}",),
                      location="" if span_of(name, span) else f"{kind} '{name}'")


__all__ = ["SetTensor", "gs_dtype", "plain_dim", "not_graph_io"]
