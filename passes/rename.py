"""`rename tensor a to b`, `rename node a to b`: new names, never ones the model already uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import onnx_graphsurgeon as gs

from graphdsl.diagnostics import Diagnostic, ModelError, ScriptError, Span
from graphdsl.lookup import find_node, find_tensor, tensor_map
from graphdsl.pipeline import Pass, PassContext, PassResult
from graphdsl.syntax.names import span_of

if TYPE_CHECKING:
    from graphdsl.check import ModelScope

NAME_CLASH = "GDS312"
EMPTY_NAME = "GDS115"


@dataclass
class RenameTensor(Pass):
    """Give a tensor a new name; everything that reads or writes it follows (it is one object).

    `y = Relu(x)`, rename y to out -> `out = Relu(x)`; renamed graph outputs are recorded so that
    verification compares `out` with the input model's `y`.

    Args:
        old: the tensor's current name.
        new: its new name, which no other tensor of the graph may have.
    """

    name = "rename_tensor"
    old: str
    new: str
    span: Span | None = None

    def check(self, scope: "ModelScope") -> None:
        _refuse_empty(self.new, self.span)
        known = scope.require_tensor(self.old) and scope.tensors is not None
        if known and self.new != self.old and self.new in scope.tensors:
            scope.error(clash("tensor", self.new, self.span))
        scope.rename_tensor(self.old, self.new)

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        _refuse_empty(self.new, self.span)
        tensors = tensor_map(graph)
        tensor = find_tensor(graph, self.old, tensors)
        if self.new == self.old:
            return PassResult()
        if self.new in tensors or self.new in _subgraph_tensor_names(graph):
            raise ModelError(clash("tensor", self.new, self.span))
        tensor.name = str(self.new)
        ctx.record_rename(str(self.old), str(self.new))
        return PassResult(changed=True, counts={"renamed": 1})


@dataclass
class RenameNode(Pass):
    """Give a node a new name, which no other node of the graph may have.

    `Relu(x) named relu_3` -> `Relu(x) named act`

    Args:
        old: the node's current name.
        new: its new name.
    """

    name = "rename_node"
    old: str
    new: str
    span: Span | None = None

    def check(self, scope: "ModelScope") -> None:
        _refuse_empty(self.new, self.span)
        if scope.require_node(self.old) is not None and self.new in scope.nodes and self.new != self.old:
            scope.error(clash("node", self.new, self.span))
        scope.rename_node(self.old, self.new)

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        _refuse_empty(self.new, self.span)
        node = find_node(graph, self.old)
        if self.new == self.old:
            return PassResult()
        if any(n.name == self.new for n in graph.nodes):
            raise ModelError(clash("node", self.new, self.span))
        node.name = str(self.new)
        return PassResult(changed=True, counts={"renamed": 1})


def clash(kind: str, name: str, span: Span | None) -> Diagnostic:
    """The error for a new name that another tensor (or node) already has."""
    where = span_of(name, span)
    return Diagnostic(NAME_CLASH, f"the model already has a {kind} named `{name}`", span=where,
                      label=f"another {kind} has this name", location="" if where else f"{kind} '{name}'",
                      hints=(f"{kind} names must be unique; rename the other {kind} first, or pick another",))


def _subgraph_tensor_names(graph: gs.Graph) -> set[str]:
    # a name defined inside an If/Loop body would shadow the renamed tensor there
    return {name for sub in graph.subgraphs(recursive=True) for name in sub.tensors()}


def _refuse_empty(name: str, span: Span | None) -> None:
    if not str(name):
        raise ScriptError(Diagnostic(EMPTY_NAME, "a new name cannot be empty", span=span_of(name, span)))


__all__ = ["RenameTensor", "RenameNode", "clash"]
