"""`extract inputs x1 outputs add_out`: cut out the subgraph between tensors (graphsurgeon example 03)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import onnx
import onnx_graphsurgeon as gs

from graphdsl.diagnostics import Span, model_error
from graphdsl.lookup import find_tensor, tensor_map
from graphdsl.passes.set_tensor import gs_dtype, plain_dim
from graphdsl.pipeline import Pass, PassContext, PassResult
from graphdsl.syntax.names import span_of

if TYPE_CHECKING:
    from graphdsl.check import ModelScope

DANGLING = "GDS310"
NO_DTYPE = "GDS324"
UNUSED_INPUT = "GDS325"


@dataclass
class TensorSpec:
    """A tensor named in `extract`, with the type it gets as a graph input or output.

    Args:
        name: the tensor's name in the model.
        shape: dims as int, symbolic name (str) or None (unknown); None keeps the shape the model knows.
        dtype: an element type name such as "float32"; None keeps the type the model knows.
    """

    name: str
    shape: list | None = None
    dtype: str | None = None


@dataclass
class Extract(Pass):
    """Make some tensors the graph's inputs and others its outputs, and drop everything else.

    inputs x1, outputs add_out: `Y = Add(x0, Add(Mul(a, x1), b))` -> `add_out = Add(Mul(a, x1), b)`

    The outputs must be computable from the inputs and constants alone; a tensor they need that is
    neither is an error that names it. Types come from the specs, else from the model, else from ONNX
    shape inference.

    Args:
        inputs: the new graph inputs (`TensorSpec`s, or plain names).
        outputs: the new graph outputs (`TensorSpec`s, or plain names).
    """

    name = "extract"
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    span: Span | None = None

    def __post_init__(self) -> None:
        # `apply extract(inputs=[x], ...)` and the Python API pass plain names
        self.inputs = [_spec(s) for s in self.inputs]
        self.outputs = [_spec(s) for s in self.outputs]

    def check(self, scope: "ModelScope") -> None:
        for spec in self.inputs + self.outputs:
            scope.require_tensor(spec.name)
        scope.keep_only(spec.name for spec in self.inputs + self.outputs)

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        tensors = tensor_map(graph)
        inputs = [find_tensor(graph, s.name, tensors) for s in self.inputs]
        outputs = [find_tensor(graph, s.name, tensors) for s in self.outputs]
        self._refuse_dangling(inputs, outputs)
        types = self._types(graph, inputs + outputs, self.inputs + self.outputs)
        before = len(graph.nodes)
        graph.inputs = [t.to_variable(*types[t.name]) for t in inputs]
        graph.outputs = [t.to_variable(*types[t.name]) for t in outputs]
        graph.cleanup()
        self._warn_unused(graph, ctx)
        removed = before - len(graph.nodes)
        return PassResult(changed=True, counts={"nodes_removed": removed},
                          notes=[f"kept {len(graph.nodes)} nodes between {len(inputs)} inputs and "
                                 f"{len(outputs)} outputs"])

    def _refuse_dangling(self, inputs: list[gs.Tensor], outputs: list[gs.Tensor]) -> None:
        stops = {id(t) for t in inputs}
        for spec, out in zip(self.outputs, outputs):
            missing = first_dangling(out, stops)
            if missing is not None:
                raise model_error(DANGLING, f"output `{out.name}` needs tensor `{missing.name}`, which is "
                                  "neither an extracted input nor a constant",
                                  span=span_of(spec.name, self.span),
                                  hint=f"add `{missing.name}` to the inputs, or extract an earlier output")

    def _types(self, graph: gs.Graph, tensors: list[gs.Tensor], specs: list[TensorSpec]) -> dict[str, tuple]:
        """name -> (dtype, shape) for each new graph input/output: spec, else model, else inference."""
        inferred = inferred_types(graph) if any(_unknown(t, s) for t, s in zip(tensors, specs)) else {}
        types = {}
        for tensor, spec in zip(tensors, specs):
            guess_dtype, guess_shape = inferred.get(tensor.name, (None, None))
            dtype = gs_dtype(spec.dtype) if spec.dtype else _first_known(tensor.dtype, guess_dtype)
            shape = [plain_dim(d) for d in spec.shape] if spec.shape is not None else _first_known(
                tensor.shape, guess_shape)
            if dtype is None:
                raise model_error(NO_DTYPE, f"the element type of `{tensor.name}` is unknown",
                                  span=span_of(spec.name, self.span),
                                  hint="give it in the extract statement, e.g. `float32`; graph inputs and "
                                       "outputs must have a type")
            types[tensor.name] = (dtype, shape)
        return types

    def _warn_unused(self, graph: gs.Graph, ctx: PassContext) -> None:
        for tensor in graph.inputs:
            if not tensor.outputs:
                ctx.warn(UNUSED_INPUT, f"extracted input `{tensor.name}` is not used by any output",
                         hint="drop it from the inputs, or check the output names")


def _spec(value: TensorSpec | str) -> TensorSpec:
    return value if isinstance(value, TensorSpec) else TensorSpec(value)


def _first_known(*values: object) -> object:
    return next((v for v in values if v is not None), None)


def _unknown(tensor: gs.Tensor, spec: TensorSpec) -> bool:
    return (spec.dtype is None and tensor.dtype is None) or (spec.shape is None and tensor.shape is None)


def first_dangling(output: gs.Tensor, stops: set[int]) -> gs.Tensor | None:
    """The first tensor `output` depends on that has no producer and is no stop, input nor constant.

    Subgraphs (If/Loop/Scan bodies) count as part of their node: their outputs are needed, their own
    inputs are provided by the node, and tensors they read from outside are found through their producers.
    """
    stops = set(stops)
    seen: set[int] = set()
    stack = [output]
    while stack:
        tensor = stack.pop()
        if id(tensor) in seen or id(tensor) in stops or isinstance(tensor, gs.Constant) or tensor.is_empty():
            continue
        seen.add(id(tensor))
        if not tensor.inputs:
            return tensor
        stack.extend(_needs(tensor.inputs[0], stops))
    return None


def _needs(node: gs.Node, stops: set[int]) -> Iterable[gs.Tensor]:
    needed = list(node.inputs)
    for subgraph in node.subgraphs(recursive=False):
        stops.update(id(t) for t in subgraph.inputs)
        needed.extend(subgraph.outputs)
    return needed


def inferred_types(graph: gs.Graph) -> dict[str, tuple]:
    """name -> (elem type, shape) from ONNX shape inference on an export of the graph; {} if it fails."""
    try:
        model = onnx.shape_inference.infer_shapes(gs.export_onnx(graph, do_type_check=False))
    except Exception:  # noqa: BLE001 - inference is a best-effort fallback; a missing type is reported later
        return {}
    infos = list(model.graph.value_info) + list(model.graph.output) + list(model.graph.input)
    return {info.name: _type_of(info) for info in infos if info.type.HasField("tensor_type")}


def _type_of(info: onnx.ValueInfoProto) -> tuple:
    tensor_type = info.type.tensor_type
    dtype = gs_dtype_from_onnx(tensor_type.elem_type) if tensor_type.elem_type else None
    if not tensor_type.HasField("shape"):
        return dtype, None
    shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor_type.shape.dim]
    return dtype, shape


def gs_dtype_from_onnx(elem_type: int) -> object:
    """An ONNX element type as graphsurgeon stores it (see `gs_dtype`)."""
    from graphdsl.dtypes import dtype_name

    return gs_dtype(dtype_name(elem_type))


__all__ = ["Extract", "TensorSpec", "first_dangling", "inferred_types"]

