"""Time snapshot + diff on a 100k-node graph (not a test: run `python tests/report/bench_snapshot.py`)."""

from __future__ import annotations

import time

import numpy as np
import onnx_graphsurgeon as gs

from graphdsl.report import diff, model_summary, snapshot


def chain(n: int) -> gs.Graph:
    """n nodes alternating Add (with a constant), Relu and Transpose (with an attribute)."""
    x = gs.Variable("x", np.float32, [1, 8])
    nodes, t = [], x
    for i in range(n):
        out = gs.Variable(f"t{i}", np.float32, [1, 8])
        kind = i % 3
        if kind == 0:
            c = gs.Constant(f"c{i}", np.ones([8], np.float32))
            nodes.append(gs.Node("Add", f"add{i}", inputs=[t, c], outputs=[out]))
        elif kind == 1:
            nodes.append(gs.Node("Relu", f"relu{i}", inputs=[t], outputs=[out]))
        else:
            nodes.append(gs.Node("Transpose", f"tr{i}", attrs={"perm": [0, 1]}, inputs=[t], outputs=[out]))
        t = out
    return gs.Graph(nodes=nodes, inputs=[x], outputs=[t])


def main(n: int = 100_000) -> None:
    graph = chain(n)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        before = snapshot(graph)
        graph.nodes[5].attrs["perm"] = [1, 0]
        after = snapshot(graph)
        d = diff(before, after)
        best = min(best, time.perf_counter() - start)
    print(f"{n} nodes: 2 snapshots + diff {best * 1000:.0f} ms (best of 5); changed {len(d.changed)}")
    start = time.perf_counter()
    model_summary(graph)
    print(f"model_summary {1000 * (time.perf_counter() - start):.0f} ms")


if __name__ == "__main__":
    main()
