"""Whole-graph walks over a graphsurgeon Graph and its nested graphs, without recursion, in O(size).

Shared by the passes that look at every node (cleanup, fold constants, toposort). graphsurgeon's own
helpers for these walks recurse once per nesting level (`_foreign_tensors`, `toposort`), rebuild
name-keyed tensor maps on every call (`tensors()`, `_local_tensors()`), and edit edges through
`SynchronizedList.remove`, which scans the list and compares with `==` (for nodes: name, op, attributes,
inputs and outputs). Here every walk keeps an explicit stack, sets are keyed by `id()`, and an edge is
cut by rebuilding the one list that holds it.
"""

from __future__ import annotations

from collections.abc import Iterable

import onnx_graphsurgeon as gs


def subgraphs_of(node: gs.Node) -> list[gs.Graph]:
    """The graphs a node holds in its attributes (If branches, Loop and Scan bodies), in attribute order."""
    attrs = node.attrs
    return [v for v in attrs.values() if isinstance(v, gs.Graph)] if attrs else []


def graph_tree(graph: gs.Graph, functions: bool = True, holders: dict | None = None) -> list[gs.Graph]:
    """`graph`, its local functions (if asked) and every graph nested in them, each once, parents first.

    Reversed, the list puts every nested graph before the graph that holds it. `holders`, if given, is
    filled with id(node) -> subgraphs for every node that has some.
    """
    roots = [graph] + (list(graph.functions) if functions else [])
    order: list[gs.Graph] = []
    seen: set[int] = set()
    stack = list(reversed(roots))
    while stack:
        g = stack.pop()
        if id(g) in seen:
            continue
        seen.add(id(g))
        order.append(g)
        children = []
        for node in g.nodes:
            attrs = node.attrs
            if not attrs:
                continue
            for value in attrs.values():  # most nodes have attributes, few hold graphs: test cheaply
                if isinstance(value, gs.Graph):
                    break
            else:
                continue
            subs = subgraphs_of(node)
            children.extend(subs)
            if holders is not None:
                holders[id(node)] = subs
        stack.extend(reversed(children))
    return order


class GraphTree:
    """A model's graphs, the nodes that hold subgraphs, and what each nested graph reads from outside.

    Built in one pass over every node; lookups are then dict hits (`subgraphs_of` on every node of a
    100k-node graph costs more than the walk that asks). `captures` is filled by `capture_all` (or graph
    by graph with `capture`, nested graphs first, e.g. while cleaning them); it lists non-Constant tensors
    only, and may keep a tensor that has since become a Constant (callers test for that).

    Attributes:
        graphs: `graph`, its functions (if asked) and every nested graph, each once, parents first.
        holders: id(node) -> the graphs in its attributes, for every node (at any depth) that has some.
        captures: id(nested graph) -> the outer-scope tensors it reads, directly or through its own
            nested graphs, in first-use order.
    """

    def __init__(self, graph: gs.Graph, functions: bool = True):
        self.roots = {id(graph)} | ({id(f) for f in graph.functions} if functions else set())
        self.holders: dict[int, list[gs.Graph]] = {}
        self.captures: dict[int, list[gs.Tensor]] = {}
        self.graphs = graph_tree(graph, functions, self.holders)

    def subgraphs(self, node: gs.Node) -> list[gs.Graph]:
        return self.holders.get(id(node), [])

    def is_nested(self, graph: gs.Graph) -> bool:
        return id(graph) not in self.roots

    def capture_all(self) -> GraphTree:
        for g in reversed(self.graphs):
            if self.is_nested(g):
                self.capture(g)
        return self

    def capture(self, graph: gs.Graph) -> list[gs.Tensor]:
        """Compute (again) what one graph reads from outside; its nested graphs must be captured."""
        local = {id(t) for t in graph.inputs}
        for node in graph.nodes:
            local.update(map(id, node.outputs))
        found: dict[int, gs.Tensor] = {}
        holders = self.holders
        for node in graph.nodes:
            for t in node.inputs:
                if id(t) not in local and t.name and not isinstance(t, gs.Constant):
                    found.setdefault(id(t), t)
            if id(node) in holders:
                for sub in holders[id(node)]:
                    for t in self.captures.get(id(sub), ()):
                        if id(t) not in local and not isinstance(t, gs.Constant):
                            found.setdefault(id(t), t)
        self.captures[id(graph)] = list(found.values())
        return self.captures[id(graph)]

    def reads(self, node: gs.Node) -> list[gs.Tensor]:
        """Every tensor a node depends on: its inputs, then what its subgraphs read from outside."""
        subs = self.holders.get(id(node))
        if not subs:
            return list(node.inputs)
        return list(node.inputs) + [t for sub in subs for t in self.captures.get(id(sub), ())]


def nested_nodes(nodes: Iterable[gs.Node]) -> list[gs.Node]:
    """Every node inside the subgraphs of `nodes`, at any depth."""
    found: list[gs.Node] = []
    stack = [sub for n in nodes if n.attrs for sub in subgraphs_of(n)]
    seen: set[int] = set()
    while stack:
        g = stack.pop()
        if id(g) in seen:
            continue
        seen.add(id(g))
        found.extend(g.nodes)
        stack.extend(sub for n in g.nodes if n.attrs for sub in subgraphs_of(n))
    return found


def detach_nodes(nodes: list[gs.Node]) -> None:
    """Cut every edge of `nodes` (removed from their graph): their tensors forget them, and they them.

    Nodes inside their subgraphs are also dropped from the consumer lists of the tensors they read, so
    that no tensor left in the graph counts a removed node as a consumer. Each touched tensor's list is
    rebuilt once, by identity: O(edges), where `SynchronizedList.clear` would cost O(degree) per edge.
    """
    forget_consumers(list(nodes) + nested_nodes(nodes))
    removed = {id(n) for n in nodes}
    written = {id(t): t for n in nodes for t in n.outputs}
    for n in nodes:
        list.clear(n.inputs)  # the base method: SynchronizedList's would edit the tensors one by one
        list.clear(n.outputs)
    for t in written.values():
        _keep_only(t.inputs, removed)


def forget_consumers(nodes: list[gs.Node]) -> None:
    """Drop `nodes` from the consumer lists of the tensors they read (the nodes' own lists stay)."""
    removed = {id(n) for n in nodes}
    read = {id(t): t for n in nodes for t in n.inputs}
    for t in read.values():
        _keep_only(t.outputs, removed)


def set_input(node: gs.Node, index: int, tensor: gs.Tensor) -> None:
    """`node.inputs[index] = tensor`, with both tensors' consumer lists edited by identity."""
    old = node.inputs[index]
    list.__setitem__(node.inputs, index, tensor)
    _remove_one(old.outputs, node)
    list.append(tensor.outputs, node)


def set_output(node: gs.Node, index: int, tensor: gs.Tensor) -> None:
    """`node.outputs[index] = tensor`, with both tensors' producer lists edited by identity."""
    old = node.outputs[index]
    list.__setitem__(node.outputs, index, tensor)
    _remove_one(old.inputs, node)
    list.append(tensor.inputs, node)


def detach_producers(tensor: gs.Tensor, placeholder: bool = False) -> None:
    """Make `tensor` producer-less: it leaves the outputs of the nodes that wrote it.

    With `placeholder`, a producer keeps an unused tensor in that slot (named after it), so that its
    other outputs stay at their positions; without, the slot is removed (graphsurgeon's behaviour,
    right when the producer is about to go).
    """
    for producer in list(tensor.inputs):
        outputs = producer.outputs
        for i in reversed(range(len(outputs))):
            if outputs[i] is tensor:
                if placeholder:
                    list.__setitem__(outputs, i, _placeholder(producer, tensor))
                else:
                    list.__delitem__(outputs, i)
    list.clear(tensor.inputs)


def _placeholder(producer: gs.Node, tensor: gs.Tensor) -> gs.Variable:
    spare = gs.Variable(f"{tensor.name}__unused")
    list.append(spare.inputs, producer)
    return spare


def _remove_one(items: list, x: object) -> None:
    for i, y in enumerate(items):
        if y is x:
            list.__delitem__(items, i)
            return


def _keep_only(items: list, removed: set[int]) -> None:
    kept = [x for x in items if id(x) not in removed]
    if len(kept) < len(items):
        list.__setitem__(items, slice(None), kept)


def tensor_names(graph: gs.Graph) -> set[str]:
    """The names of one graph's tensors (not its subgraphs'): what `graph.tensors()` names, at a third of
    its cost (it builds a checked name -> tensor map), in one loop over the nodes."""
    names = {t.name for t in graph.inputs} | {t.name for t in graph.outputs}
    add = names.add
    for node in graph.nodes:
        for t in node.inputs:
            add(t.name)
        for t in node.outputs:
            add(t.name)
    names.discard("")
    return names


__all__ = ["GraphTree", "detach_nodes", "detach_producers", "forget_consumers", "graph_tree", "nested_nodes",
           "set_input", "set_output", "subgraphs_of", "tensor_names"]

