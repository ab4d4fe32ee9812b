"""Writes model.onnx here: Y = x0 + (a * x1 + b), the model of onnx-graphsurgeon's example 03.

Same graph as the example's generator (constants a and b of ones, float32[1, 3, 224, 224] inputs),
built with onnx.helper so that every run writes the same bytes. Example 04 starts from this model too.
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SHAPE = [1, 3, 224, 224]


def make_model() -> onnx.ModelProto:
    ones = np.ones(SHAPE, dtype=np.float32)
    nodes = [
        helper.make_node("Mul", ["a", "x1"], ["mul_out"], name="mul"),
        helper.make_node("Add", ["mul_out", "b"], ["add_out"], name="add_b"),
        helper.make_node("Add", ["x0", "add_out"], ["Y"], name="add_x0"),
    ]
    graph = helper.make_graph(
        nodes, "isolate",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, SHAPE) for n in ("x0", "x1")],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, SHAPE)],
        initializer=[numpy_helper.from_array(ones, "a"), numpy_helper.from_array(ones, "b")],
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
