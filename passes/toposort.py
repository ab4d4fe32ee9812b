"""`toposort`: order nodes so that every node comes after the producers of its inputs (ONNX requires it).

graphsurgeon's `Graph.toposort` is not called: it computes each node's level by Python recursion, one
frame per node on the path, so an unsorted chain deeper than the recursion limit (about a thousand
nodes) fails with RecursionError; it rebuilds `_foreign_tensors()` of a subgraph for every node that
holds it, its function ordering recurses without end once the graph has subgraphs, and on a sorted
100k-node BERT-like model it takes 2.7 s of CPU (this one 0.5 s). Here the same order is computed
iteratively in O(nodes + edges): graphsurgeon's order is the stable sort by level (longest path from
the inputs) of the depth-first post-order, and that is what `gs_order` gives, so results do not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, TypeVar

import onnx_graphsurgeon as gs

from graphdsl.diagnostics import ModelError, Span, model_error
from graphdsl.gcpause import gc_paused
from graphdsl.graphwalk import GraphTree, graph_tree
from graphdsl.pipeline import Pass, PassContext, PassResult

if TYPE_CHECKING:
    from graphdsl.check import ModelScope

CYCLE = "GDS311"
_GS_CYCLE = "Cycle detected in graph! Are there tensors with duplicate names in the graph?"
T = TypeVar("T")


@dataclass
class Toposort(Pass):
    """Sort the graph's nodes (and its subgraphs' and functions') topologically, in graphsurgeon's order.

    [C(b), B(a), A(x)] -> [A(x), B(a), C(b)]; a cycle is an error naming the nodes on it.
    """

    name = "toposort"
    span: Span | None = None

    def check(self, scope: "ModelScope") -> None:
        return None  # reorders nodes, renames nothing

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        order = [id(n) for n in graph.nodes]
        with gc_paused():  # collections would walk every object of the graph, again and again
            sort_graph(graph, self.span)
        moved = sum(1 for a, b in zip(order, (id(n) for n in graph.nodes)) if a != b)
        return PassResult(changed=moved > 0, counts={"nodes_moved": moved} if moved else {})


class _Cycle(Exception):
    pass


def sort_graph(graph: gs.Graph, span: Span | None = None) -> None:
    """Sort the nodes of every graph (main, nested, functions) and the function list; a cycle is GDS311."""
    tree = GraphTree(graph).capture_all()
    for g in tree.graphs:
        sort_nodes(g, tree, span)
    if len(tree.graphs) > 1:
        graph._merge_subgraph_functions()  # as gs does: functions declared on subgraphs join the list
    if graph.functions:
        graph.functions = sort_functions(graph.functions)


def sort_nodes(graph: gs.Graph, tree: GraphTree, span: Span | None = None) -> None:
    """Sort one graph's nodes in graphsurgeon's order; `tree` has its nested graphs' captures."""
    index = {id(n): n for n in graph.nodes}

    def producers(node: gs.Node) -> list[gs.Node]:
        found: dict[int, gs.Node] = {}
        for t in tree.reads(node):
            for p in t.inputs:
                if id(p) in index:
                    found.setdefault(id(p), p)
        return list(found.values())

    try:
        graph.nodes = gs_order(graph.nodes, producers, id)
    except _Cycle:
        raise cycle_error(graph, _GS_CYCLE, span) from None


def sort_functions(functions: Sequence[gs.Function]) -> list[gs.Function]:
    """Functions ordered so that each comes after the functions it calls (graphsurgeon's order)."""
    by_id = {f.unique_id: f for f in functions}

    def callees(func: gs.Function) -> list[gs.Function]:
        ids = dict.fromkeys((n.domain, n.op) for g in graph_tree(func, functions=False) for n in g.nodes)
        return [by_id[i] for i in ids if i in by_id]

    try:
        return gs_order(list(functions), callees, lambda f: f.unique_id)
    except _Cycle:
        raise model_error(CYCLE, "local functions call each other in a cycle",
                          hint="a function cannot call itself, directly or through others") from None


def gs_order(items: list[T], deps: Callable[[T], list[T]], key: Callable[[T], Hashable]) -> list[T]:
    """Items sorted by level (0 without dependencies, else 1 + the highest level among them), ties in
    depth-first post-order from the given order: graphsurgeon's toposort, without recursion."""
    level: dict[Hashable, int] = {}
    post: list[T] = []
    on_path: set[Hashable] = set()
    for root in items:
        if key(root) in level:
            continue
        stack = [(root, deps(root), 0)]
        on_path.add(key(root))
        while stack:
            item, below, i = stack[-1]
            while i < len(below) and key(below[i]) in level:
                i += 1
            if i < len(below):
                stack[-1] = (item, below, i + 1)
                nxt = below[i]
                if key(nxt) in on_path:
                    raise _Cycle()
                on_path.add(key(nxt))
                stack.append((nxt, deps(nxt), 0))
                continue
            stack.pop()
            on_path.discard(key(item))
            level[key(item)] = 1 + max((level[key(d)] for d in below), default=-1)
            post.append(item)
    return sorted(post, key=lambda item: level[key(item)])


def is_sorted(graph: gs.Graph, tree: GraphTree | None = None) -> bool:
    """Whether every node of the graph comes after the producers of what it reads (its inputs, and with
    `tree`, what its subgraphs read); nested graphs themselves are not checked."""
    position = {id(n): i for i, n in enumerate(graph.nodes)}
    get = position.get
    holders = tree.holders if tree is not None else {}
    for index, node in enumerate(graph.nodes):
        tensors = tree.reads(node) if id(node) in holders else node.inputs
        for t in tensors:
            for producer in t.inputs:
                if get(id(producer), -1) >= index:
                    return False
    return True


def cycle_error(graph: gs.Graph, gs_message: str, span: Span | None) -> ModelError:
    cycle = find_cycle(graph.nodes)
    if not cycle:  # a cycle we cannot see: through a subgraph's captured tensors, or duplicate tensor names
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


__all__ = ["Toposort", "find_cycle", "gs_order", "is_sorted", "node_label", "sort_functions", "sort_graph",
           "sort_nodes"]
