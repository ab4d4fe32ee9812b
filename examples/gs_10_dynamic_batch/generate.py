"""Writes model.onnx here: Conv -> Reshape [1, 21632] -> MatMul, onnx-graphsurgeon's example 10 model.

input_1: float32[1, 3, 28, 28]; a 32x3x3x3 convolution of ones, a Reshape whose constant target holds
the static batch 1, and a 21632x10 MatMul of ones; shapes inferred. Built with onnx.helper so that
every run writes the same bytes.
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def make_model() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Conv", ["input_1", "conv_weight"], ["conv_out"], name="conv",
                         dilations=[1, 1], group=1, kernel_shape=[3, 3], strides=[1, 1]),
        helper.make_node("Reshape", ["conv_out", "reshape_shape"], ["reshape_out"], name="reshape"),
        helper.make_node("MatMul", ["reshape_out", "matmul_weight"], ["matmul_out"], name="matmul"),
    ]
    initializers = [
        numpy_helper.from_array(np.ones((32, 3, 3, 3), dtype=np.float32), "conv_weight"),
        numpy_helper.from_array(np.array([1, 21632], dtype=np.int64), "reshape_shape"),
        numpy_helper.from_array(np.ones((21632, 10), dtype=np.float32), "matmul_weight"),
    ]
    graph = helper.make_graph(
        nodes, "dynamic_batch",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, [1, 3, 28, 28])],
        [helper.make_tensor_value_info("matmul_out", TensorProto.FLOAT, None)],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)],
                              producer_name="graphdsl-examples")
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model, full_check=True)
    return model


if __name__ == "__main__":
    out = Path(__file__).with_name("model.onnx")
    onnx.save(make_model(), out)
    print(f"wrote {out}")
