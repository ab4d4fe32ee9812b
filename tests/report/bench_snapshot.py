"""Time snapshot and diff on a 100k-node graph: `python tests/report/bench_snapshot.py [nodes]`.

Not a test (too slow for the suite, and timing-dependent). The graph is imported from an ONNX proto,
as the runner's graphs are, so its objects sit in memory the way real ones do; cache misses, not
Python bytecode, dominate at this size.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx import TensorProto, helper, numpy_helper

from graphdsl.report import diff, model_summary, snapshot


def chain(n: int) -> onnx.ModelProto:
    """n nodes cycling through Add (with an initializer), Relu and Transpose (with an attribute)."""
    nodes, inits, t = [], [], "x"
    for i in range(n):
        out = f"t{i}"
        if i % 3 == 0:
            inits.append(numpy_helper.from_array(np.ones([8], np.float32), f"c{i}"))
            nodes.append(helper.make_node("Add", [t, f"c{i}"], [out], name=f"add{i}"))
        elif i % 3 == 1:
            nodes.append(helper.make_node("Relu", [t], [out], name=f"relu{i}"))
        else:
            nodes.append(helper.make_node("Transpose", [t], [out], name=f"tr{i}", perm=[0, 1]))
        t = out
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info(t, TensorProto.FLOAT, [1, 8])], inits)
    return helper.make_model(graph)


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(n: int) -> None:
    graph = gs.import_onnx(chain(n))
    before = snapshot(graph)
    print(f"{n} nodes")
    print(f"  snapshot              {best_of(5, lambda: snapshot(graph)) * 1000:6.0f} ms")
    graph.nodes[n // 2].attrs["perm"] = [1, 0]
    after = snapshot(graph)
    print(f"  diff, edit in place   {best_of(5, lambda: diff(before, after)) * 1000:6.0f} ms")
    victim = graph.nodes[n // 3 + 1]  # a Relu: rewire its consumer, drop it
    victim.outputs[0].outputs[0].inputs[0] = victim.inputs[0]
    graph.nodes.remove(victim)
    after = snapshot(graph)
    d = diff(before, after)
    print(f"  diff, node removed    {best_of(5, lambda: diff(before, after)) * 1000:6.0f} ms  {d.counts()}")
    print(f"  model_summary         {best_of(3, lambda: model_summary(graph)) * 1000:6.0f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
