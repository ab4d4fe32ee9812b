"""`replace node NAME with Op(...)`: swap one node for new ones that write the same output tensors."""

from __future__ import annotations

from dataclasses import dataclass

import onnx_graphsurgeon as gs

from graphdsl import opcall
from graphdsl.check import ModelScope
from graphdsl.diagnostics import Span
from graphdsl.lookup import find_node
from graphdsl.opcall import NodeBuilder, OpCall
from graphdsl.pipeline import Pass, PassContext, PassResult


@dataclass
class ReplaceNode(Pass):
    """Replace a node by an op call writing its outputs: `Add(m, b)` named add_b -> `LeakyRelu(m)`.

    Consumers and graph outputs keep reading the same tensors; the old node's inputs that nothing else
    reads are left for `cleanup`. This is graphsurgeon example 04's "change the op" step.

    Args:
        node: the node to replace.
        call: the op call that replaces it (nested calls become further nodes).
    """

    name = "replace_node"
    node: str
    call: OpCall
    span: Span | None = None

    def check(self, scope: ModelScope) -> None:
        scope.require_node(self.node)
        opcall.check(scope, self.call)

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        old = find_node(graph, self.node)
        outputs = list(old.outputs)  # a multi-output node's outputs all go to the replacing op
        old.outputs.clear()
        old.inputs.clear()
        graph.nodes.remove(old)
        new_nodes = NodeBuilder(graph, self.node).build(self.call, outputs)
        new_nodes[-1].name = self.node  # the replacement keeps the node's name for later statements
        graph.nodes.extend(new_nodes)
        return PassResult(changed=True, counts={"removed": 1, "added": len(new_nodes)},
                          notes=[f"{self.node}: {old.op} -> {self.call.qualified}"])


__all__ = ["ReplaceNode"]
