"""Visiting every graph of a model (main graph, functions, If/Loop/Scan bodies) without recursion."""

from __future__ import annotations

from collections.abc import Iterator

import onnx_graphsurgeon as gs

from graphdsl.graphwalk import graph_tree, subgraphs_of

__all__ = ["all_graphs", "constants", "subgraphs_of"]


def all_graphs(graph: gs.Graph, functions: bool = True) -> list[gs.Graph]:
    """`graph`, its functions (if asked), and every graph nested in either, each once, parents first."""
    return graph_tree(graph, functions)


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
