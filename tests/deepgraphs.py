"""Graphs deeper than anything recursive survives, for tests of import, walking, export and the CLI."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs


def nested_if_graph(depth: int) -> gs.Graph:
    """`depth` If nodes, each in the then-branch of the one before, every body reading the outer `x`; the
    innermost adds 1. Built as gs objects: onnx.helper and protobuf stop at about 33 levels (a message
    nesting limit of 100), so such a model is written with graphdsl's streaming writer."""
    x, cond = gs.Variable("x", np.float32, [1]), gs.Variable("cond", np.bool_, [])
    out = gs.Variable(f"out{depth}", np.float32, [1])
    one = gs.Constant("one", np.ones(1, np.float32))
    inner = gs.Graph(nodes=[gs.Node("Add", inputs=[x, one], outputs=[out])], outputs=[out], name=f"g{depth}")
    for level in range(depth - 1, -1, -1):
        other_out = gs.Variable(f"else{level}", np.float32, [1])
        other = gs.Graph(nodes=[gs.Node("Identity", inputs=[x], outputs=[other_out])], outputs=[other_out],
                         name=f"e{level}")
        out = gs.Variable(f"out{level}", np.float32, [1])
        inner = gs.Graph(nodes=[gs.Node("If", inputs=[cond], outputs=[out], name=f"if{level}",
                                        attrs={"then_branch": inner, "else_branch": other})],
                         outputs=[out], name=f"g{level}")
    graph = gs.Graph(nodes=inner.nodes, inputs=[x, cond], outputs=inner.outputs, opset=17)
    graph.ir_version = 8
    return graph
