"""Visiting every graph of a model (main graph, functions, If/Loop/Scan bodies) without recursion."""

from __future__ import annotations

from collections.abc import Iterator

import onnx_graphsurgeon as gs


def subgraphs_of(node: gs.Node) -> list[gs.Graph]:
    """The graphs a node holds in its attributes, in attribute order."""
    attrs = node.attrs
    return [v for v in attrs.values() if isinstance(v, gs.Graph)] if attrs else []


def all_graphs(graph: gs.Graph, functions: bool = True) -> list[gs.Graph]:
    """`graph`, its functions (if asked), and every graph nested in either, each once, parents first."""
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
        children = [sub for node in g.nodes if node.attrs for sub in subgraphs_of(node)]
        stack.extend(reversed(children))
    return order


def constants(graph: gs.Graph) -> Iterator[gs.Constant]:
    """Every Constant of every graph: initializers and Constant-node (attribute) tensors, each once."""
    seen: set[int] = set()
    for g in all_graphs(graph):
        for node in g.nodes:
            for t in node.inputs:
                if isinstance(t, gs.Constant) and id(t) not in seen:
                    seen.add(id(t))
                    yield t
            for value in node.attrs.values():
                if isinstance(value, gs.Constant) and id(value) not in seen:
                    seen.add(id(value))
                    yield value
        for t in g.outputs:
            if isinstance(t, gs.Constant) and id(t) not in seen:
                seen.add(id(t))
                yield t
