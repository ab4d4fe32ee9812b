"""Writes model.onnx here: x -> Identity -> Min(., 6) -> Max(., 0) -> Identity -> y (graphsurgeon example 08).

The example's generator clips its input to [0, 6] with a Min followed by a Max between two Identity
nodes, at opset 11; the same graph is built here with onnx.helper so that every run writes the same
bytes (graphsurgeon's layer API numbers its tensors as it goes: the names here are readable ones).
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def make_model() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Identity", ["input"], ["identity_out_0"], name="identity_in"),
        helper.make_node("Min", ["identity_out_0", "max_val"], ["min_out"], name="min"),
        helper.make_node("Max", ["min_out", "min_val"], ["max_out"], name="max"),
        helper.make_node("Identity", ["max_out"], ["output"], name="identity_out"),
    ]
    graph = helper.make_graph(
        nodes, "replace_subgraph",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [4, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [4, 4])],
        initializer=[numpy_helper.from_array(np.array(6, np.float32), "max_val"),
                     numpy_helper.from_array(np.array(0, np.float32), "min_val")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)],
                              producer_name="graphdsl-examples")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


if __name__ == "__main__":
    out = Path(__file__).with_name("model.onnx")
    onnx.save(make_model(), out)
    print(f"wrote {out}")
