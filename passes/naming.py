"""Names for the nodes that onnx's converter and inliner create without one.

Unnamed nodes cannot be addressed by later statements (`remove node`, `set node`) nor told apart in
reports, so passes that build a graph through onnx name them: `<prefix>/<Op>_<n>`, unique in the graph.
"""

from __future__ import annotations

import itertools

import onnx_graphsurgeon as gs


def name_unnamed_nodes(graph: gs.Graph, prefix: str) -> int:
    """Give every unnamed node of the graph (not of subgraphs) a unique name; returns how many."""
    taken = {n.name for n in graph.nodes if n.name}
    counter = itertools.count()
    named = 0
    for node in graph.nodes:
        if node.name:
            continue
        node.name = next(name for name in (f"{prefix}/{node.op}_{i}" for i in counter) if name not in taken)
        taken.add(node.name)
        named += 1
    return named


__all__ = ["name_unnamed_nodes"]
