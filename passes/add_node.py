"""`add node Op(...) -> out, ...`: new nodes that write new tensors (graphsurgeon example 04's Identity)."""

from __future__ import annotations

from dataclasses import dataclass

import onnx_graphsurgeon as gs

from graphdsl import opcall
from graphdsl.check import ModelScope
from graphdsl.diagnostics import Diagnostic, ScriptError, Span
from graphdsl.opcall import NodeBuilder, OpCall
from graphdsl.pipeline import Pass, PassContext, PassResult
from graphdsl.passes.rename import NAME_CLASH


@dataclass
class AddNode(Pass):
    """Add the nodes of an op call, writing tensors that must not exist yet: `Identity(y) -> y_copy`.

    New tensors are not graph outputs until `extract` (or `set output`) makes them so; until then
    `cleanup` would remove them again.

    Args:
        call: the op call (nested calls become further nodes).
        outputs: names of the new output tensors.
    """

    name = "add_node"
    call: OpCall
    outputs: list[str]
    span: Span | None = None

    def check(self, scope: ModelScope) -> None:
        opcall.check(scope, self.call)
        if scope.tensors is not None:
            scope.diagnostics.extend(self._clash(out) for out in self.outputs if out in scope.tensors)
            scope.tensors.update(self.outputs)

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        builder = NodeBuilder(graph, self.call.op)
        clashes = [self._clash(out) for out in self.outputs if out in builder.tensors]
        if clashes:
            raise ScriptError(clashes)
        outputs = [gs.Variable(str(out)) for out in self.outputs]
        nodes = builder.build(self.call, outputs)
        graph.nodes.extend(nodes)
        return PassResult(changed=True, counts={"added": len(nodes)})

    def _clash(self, name: str) -> Diagnostic:
        return Diagnostic(NAME_CLASH, f"tensor `{name}` already exists", span=getattr(name, "span", self.span),
                          hints=("`add node` writes new tensors; pick another name",))


__all__ = ["AddNode"]
