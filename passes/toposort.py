"""`toposort`: order nodes so that every node comes after the producers of its inputs (ONNX requires it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import onnx_graphsurgeon as gs
from onnx_graphsurgeon.util.exception import OnnxGraphSurgeonException

from graphdsl.diagnostics import ModelError, Span, model_error
from graphdsl.passes.gs_log import captured_gs_log
from graphdsl.pipeline import Pass, PassContext, PassResult

if TYPE_CHECKING:
    from graphdsl.check import ModelScope

CYCLE = "GDS311"


@dataclass
class Toposort(Pass):
    """Sort the graph's nodes (and its subgraphs' and functions') topologically, with graphsurgeon.

    [C(b), B(a), A(x)] -> [A(x), B(a), C(b)]; a cycle is an error naming the nodes on it.
    """

    name = "toposort"
    span: Span | None = None

    def check(self, scope: "ModelScope") -> None:
        return None  # reorders nodes, renames nothing

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        order = [id(n) for n in graph.nodes]
        sort_graph(graph, self.span)
        moved = sum(1 for a, b in zip(order, (id(n) for n in graph.nodes)) if a != b)
        return PassResult(changed=moved > 0, counts={"nodes_moved": moved} if moved else {})


def sort_graph(graph: gs.Graph, span: Span | None = None) -> None:
    """graphsurgeon's toposort, with its cycle error turned into a diagnostic that names the nodes."""
    try:
        with captured_gs_log(level=gs.logger.G_LOGGER.CRITICAL + 1):
            graph.toposort()
    except OnnxGraphSurgeonException as e:
        raise cycle_error(graph, str(e), span) from None


def is_sorted(graph: gs.Graph) -> bool:
    """Whether every node of the graph comes after the producers of its inputs (subgraphs not checked)."""
    position = {id(n): i for i, n in enumerate(graph.nodes)}
    for index, node in enumerate(graph.nodes):
        for producer in _producers(node):
            if position.get(id(producer), -1) >= index:
                return False
    return True


def cycle_error(graph: gs.Graph, gs_message: str, span: Span | None) -> ModelError:
    cycle = find_cycle(graph.nodes)
    if not cycle:  # graphsurgeon saw a cycle we cannot: in functions, or through duplicate tensor names
        return model_error(CYCLE, f"the graph cannot be sorted: {gs_message}", span=span,
                           hint="tensor names must be unique; check nodes that write the same name")
    names = " -> ".join(node_label(n) for n in cycle + cycle[:1])
    return model_error(CYCLE, f"the graph has a cycle: {names}", span=span,
                       location=f"node '{node_label(cycle[0])}'",
                       hint="a node reads, directly or through others, a tensor it writes itself; "
                            "rewire one of these nodes")


def find_cycle(nodes: list[gs.Node]) -> list[gs.Node]:
    """Nodes on one cycle, in data-flow order (producer first), or [] if there is none.

    Iterative depth-first search over producer edges, so a deep graph cannot exhaust Python's stack.
    """
    in_graph = {id(n) for n in nodes}
    state: dict[int, bool] = {}  # id -> True while on the current path, False when finished
    for start in nodes:
        if id(start) in state:
            continue
        path, branches = [start], [iter(_producers(start))]
        state[id(start)] = True
        while path:
            nxt = next((p for p in branches[-1] if id(p) in in_graph), None)
            if nxt is None:
                state[id(path.pop())] = False
                branches.pop()
            elif state.get(id(nxt)) is True:
                at = next(i for i, n in enumerate(path) if n is nxt)
                return _rotated(list(reversed(path[at:])), nodes)
            elif id(nxt) not in state:
                state[id(nxt)] = True
                path.append(nxt)
                branches.append(iter(_producers(nxt)))
    return []


def _rotated(cycle: list[gs.Node], nodes: list[gs.Node]) -> list[gs.Node]:
    # start at the node listed first in the graph, so the message does not depend on the search
    order = {id(n): i for i, n in enumerate(nodes)}
    start = min(range(len(cycle)), key=lambda i: order[id(cycle[i])])
    return cycle[start:] + cycle[:start]


def _producers(node: gs.Node) -> list[gs.Node]:
    return [t.inputs[0] for t in node.inputs if t.inputs]


def node_label(node: gs.Node) -> str:
    """How diagnostics name a node: its name, or its op when it has none."""
    return node.name or f"<unnamed {node.op}>"


__all__ = ["Toposort", "sort_graph", "is_sorted", "find_cycle", "node_label"]
