"""Which graph of a model stores which tensor: the scope analysis behind the exporter.

A subgraph (If/Loop/Scan body) may use any tensor of the graphs enclosing it, by name. graphsurgeon
exports every Constant a graph uses as that graph's initializer, so a weight used inside a Loop body
is stored twice, and one used only inside the body moves into it. Here each Constant is stored once,
in the graph that declared it when it was read (if that still encloses all its users), otherwise in
the innermost graph enclosing every graph that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx_graphsurgeon as gs

from graphdsl.onnxio.construct import home_of
from graphdsl.onnxio.walk import subgraphs_of


@dataclass
class ModelScopes:
    """The graphs of a model and what each one holds.

    Attributes:
        order: Every graph and function, parents before their subgraphs.
        trees: id(main graph or function) -> it and all graphs nested in it.
        tensors: id(graph) -> gs's tensor map of that graph (name -> tensor, first-use order).
        enclosing: id(graph) -> for each enclosing graph, the ids of its tensors.
        constants: id(graph) -> the Constants stored as its initializers, in write order.
    """

    order: list
    trees: dict[int, list]
    tensors: dict[int, dict]
    enclosing: dict[int, list[set]]
    constants: dict[int, list]


def analyse(graph: gs.Graph) -> ModelScopes:
    """Scopes of `graph`, its functions and all their subgraphs, in one walk (no recursion)."""
    roots = [graph, *graph.functions]
    parent: dict[int, gs.Graph | None] = {id(g): None for g in roots}
    depth: dict[int, int] = {id(g): 0 for g in roots}
    trees: dict[int, list] = {id(g): [] for g in roots}
    root_of: dict[int, gs.Graph] = {id(g): g for g in roots}
    order, tensors, enclosing = [], {}, {}
    stack = list(reversed(roots))
    while stack:
        g = stack.pop()
        if id(g) in tensors:
            continue  # a graph object used twice
        order.append(g)
        trees[id(root_of[id(g)])].append(g)
        tensors[id(g)] = tensor_map(g)
        own = enclosing.setdefault(id(g), [])
        children = [sub for node in g.nodes if node.attrs for sub in subgraphs_of(node)]
        if children:
            ids = {id(t) for t in tensors[id(g)].values()}
            for sub in children:
                enclosing[id(sub)] = own + [ids]
                parent[id(sub)], depth[id(sub)], root_of[id(sub)] = g, depth[id(g)] + 1, root_of[id(g)]
            stack.extend(reversed(children))
    constants = _place_constants(order, tensors, parent, depth, root_of)
    return ModelScopes(order, trees, tensors, enclosing, constants)


def _place_constants(order, tensors, parent, depth, root_of) -> dict[int, list]:
    """Each Constant goes to the lowest common ancestor of the graphs that use it.

    The main graph and each function are separate trees (a function sees nothing of the graph): a
    Constant object used in several trees is placed in each of them, as gs would.
    """
    home: dict[tuple, gs.Graph] = {}
    first_use: dict[tuple, tuple[int, gs.Constant]] = {}
    for g in order:
        root = root_of[id(g)]
        for t in tensors[id(g)].values():
            if isinstance(t, gs.Constant):
                key = (id(root), id(t))
                if key not in home:
                    home[key] = g
                    first_use[key] = (len(first_use), t)
                elif home[key] is not g:
                    home[key] = _common_ancestor(home[key], g, parent, depth)
    placed: dict[int, list] = {id(g): [] for g in order}
    for key, (_, t) in sorted(first_use.items(), key=lambda item: _write_order(item[1])):
        g = home[key]
        declared = home_of(t)[0]
        if declared is not None and _encloses(declared, g, parent, depth):
            g = declared
        placed[id(g)].append(t)
    return placed


def _encloses(outer, inner, parent, depth) -> bool:
    if id(outer) not in depth:
        return False  # a graph no longer in the model
    while inner is not None and depth[id(inner)] > depth[id(outer)]:
        inner = parent[id(inner)]
    return inner is outer


def _common_ancestor(a, b, parent, depth):
    """The innermost graph enclosing both (they are in the same tree)."""
    while depth[id(a)] > depth[id(b)]:
        a = parent[id(a)]
    while depth[id(b)] > depth[id(a)]:
        b = parent[id(b)]
    while a is not b:
        a, b = parent[id(a)], parent[id(b)]
    return a


def _write_order(entry: tuple[int, gs.Constant]) -> tuple:
    """Initializers read from a file keep their place in it (unchanged models come back byte for
    byte); the others follow in first-use order, as gs orders all of them."""
    index, t = entry
    position = home_of(t)[1]
    return (0, *position) if position is not None else (1, 0, index)


def tensor_map(g: gs.Graph) -> dict:
    """gs's Graph.tensors(): name -> tensor in first-use order (last one of a name wins), no empty names."""
    out: dict = {}
    for t in g.inputs:
        out[t.name] = t
    for node in g.nodes:
        for t in node.inputs:
            out[t.name] = t
        for t in node.outputs:
            out[t.name] = t
    for t in g.outputs:
        out[t.name] = t
    out.pop("", None)
    return out
