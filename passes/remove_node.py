"""`remove node debug_identity`: bypass nodes; their consumers read their input (graphsurgeon example 06)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import onnx_graphsurgeon as gs

from graphdsl.diagnostics import Span, model_error
from graphdsl.lookup import find_node
from graphdsl.passes.extract import inferred_types
from graphdsl.passes.toposort import node_label
from graphdsl.pipeline import Pass, PassContext, PassResult
from graphdsl.syntax.names import span_of

if TYPE_CHECKING:
    from graphdsl.check import ModelScope

MULTI_OUTPUT = "GDS313"
BAD_INPUT_INDEX = "GDS314"
OUTPUT_RENAMED = "GDS328"


@dataclass
class RemoveNodes(Pass):
    """Remove nodes by name, wiring each one's `input_index`-th input to where its output went.

    `i0 = Identity(x); i1 = Fake(i0); y = Identity(i1)`, remove Fake -> `i1 = Identity(x); y = Identity(i1)`

    As in graphsurgeon's example, the removed node's output name survives: the producer of its input
    writes it. Where the input has no producer (a graph input, a constant) or is itself a graph output,
    the consumers read the input instead, and a graph output among them takes the input's name (a
    warning, and recorded so verification still compares it). Nodes that fed only the removed node stay
    until `cleanup`.

    Args:
        names: the nodes to remove.
        input_index: which input takes the place of the output (e.g. 0 for Identity, Dropout, Cast).
    """

    name = "remove_nodes"
    names: list[str]
    input_index: int = 0
    span: Span | None = None

    def check(self, scope: "ModelScope") -> None:
        for name in self.names:
            scope.require_node(name)
            scope.remove_node(name)

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        names = list(dict.fromkeys(self.names))
        nodes = [find_node(graph, name) for name in names]
        for name, node in zip(names, nodes):  # every problem is found before anything changes
            self._source(node, name)
            self._output(graph, node, name)
        types = TypeLookup(graph)
        for name, node in zip(names, nodes):
            self._bypass(graph, node, name, types, ctx)
        removed = {id(n) for n in nodes}
        graph.nodes = [n for n in graph.nodes if id(n) not in removed]
        return PassResult(changed=bool(nodes), counts={"removed": len(nodes)})

    def _bypass(self, graph: gs.Graph, node: gs.Node, written: str, types: "TypeLookup",
                ctx: PassContext) -> None:
        source = self._source(node, written)
        output = self._output(graph, node, written)
        producer = source.inputs[0] if source.inputs else None
        takes_over = producer is not None and not any(t is source for t in graph.outputs)
        source_type = types.of(source) if takes_over else None
        node.inputs.clear()
        node.outputs.clear()
        if takes_over:
            take_over(source, output, producer, source_type)
        else:
            redirect(graph, output, source, ctx)

    def _source(self, node: gs.Node, written: str) -> gs.Tensor:
        if not 0 <= self.input_index < len(node.inputs) or node.inputs[self.input_index].is_empty():
            raise model_error(BAD_INPUT_INDEX, f"node `{node_label(node)}` ({node.op}) has no input "
                              f"{self.input_index} to take its output's place",
                              span=span_of(written, self.span),
                              hint=f"it has {len(node.inputs)} inputs; choose one with `input_index`")
        return node.inputs[self.input_index]

    def _output(self, graph: gs.Graph, node: gs.Node, written: str) -> gs.Tensor:
        used = [t for t in node.outputs if t.outputs or t in graph.outputs]
        if len(used) > 1:
            raise model_error(MULTI_OUTPUT, f"node `{node_label(node)}` ({node.op}) has {len(used)} outputs "
                              f"in use ({', '.join(t.name for t in used)}); only one can be bypassed",
                              span=span_of(written, self.span),
                              hint="remove the consumers of the other outputs first, or rewrite with a rule")
        if not node.outputs:
            raise model_error(MULTI_OUTPUT, f"node `{node_label(node)}` has no outputs to bypass",
                              span=span_of(written, self.span))
        return used[0] if used else node.outputs[0]


class TypeLookup:
    """(dtype, shape) of tensors: as recorded, else from one shape inference of the graph, run when needed.

    Bypassing nodes does not change what the remaining producers write, so one inference serves them all.
    """

    def __init__(self, graph: gs.Graph):
        self.graph = graph
        self.inferred: dict[str, tuple] | None = None

    def of(self, tensor: gs.Tensor) -> tuple:
        if tensor.dtype is not None:
            return tensor.dtype, tensor.shape
        if self.inferred is None:
            self.inferred = inferred_types(self.graph)
        return self.inferred.get(tensor.name, (None, None))


def take_over(source: gs.Tensor, output: gs.Tensor, producer: gs.Node, source_type: tuple) -> None:
    """`s = P(..); o = N(s)` -> `o = P(..)`: the producer writes the output, readers of s read it too."""
    for consumer in list(source.outputs):
        swap(consumer.inputs, source, output)
    swap(producer.outputs, source, output)
    # o now holds what P writes, whatever type the bypassed node (a Cast, say) had made of it
    dtype, shape = source_type
    if dtype is not None:
        output.dtype, output.shape = dtype, shape


def redirect(graph: gs.Graph, output: gs.Tensor, source: gs.Tensor, ctx: PassContext) -> None:
    """`o = N(s); C(o)` -> `C(s)`; a graph output o is replaced by s, which keeps its own name."""
    for consumer in list(output.outputs):
        swap(consumer.inputs, output, source)
    if any(t is output for t in graph.outputs):
        graph.outputs = [source if t is output else t for t in graph.outputs]
        ctx.record_rename(output.name, source.name)
        ctx.warn(OUTPUT_RENAMED, f"graph output `{output.name}` is now `{source.name}`",
                 hint=f"`{source.name}` is a graph input, a constant or another output, so it cannot be "
                      "renamed; rename the output afterwards if its name matters")


def swap(tensors: list[gs.Tensor], old: gs.Tensor, new: gs.Tensor) -> None:
    """Replace `old` by `new` in a node's inputs or outputs, one item at a time.

    graphsurgeon's synchronized lists keep producer/consumer links only through item assignment.
    """
    for i, t in enumerate(tensors):
        if t is old:
            tensors[i] = new


__all__ = ["RemoveNodes", "take_over", "redirect", "swap"]
