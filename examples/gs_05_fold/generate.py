"""Writes model.onnx here: output = input + ((a + b) + d), the model of onnx-graphsurgeon's example 05.

a, b and d are constants of ones, so everything but the last Add folds into one constant.
Built with onnx.helper so that every run writes the same bytes.
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SHAPE = [1, 3]


def make_model() -> onnx.ModelProto:
    ones = np.ones(SHAPE, dtype=np.float32)
    nodes = [
        helper.make_node("Add", ["a", "b"], ["c"], name="add_ab"),
        helper.make_node("Add", ["c", "d"], ["e"], name="add_d"),
        helper.make_node("Add", ["input", "e"], ["output"], name="add_input"),
    ]
    graph = helper.make_graph(
        nodes, "fold",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, SHAPE)],
        initializer=[numpy_helper.from_array(ones, name) for name in ("a", "b", "d")],
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
