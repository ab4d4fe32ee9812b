"""Writes examples/models/quickstart.onnx: a small classifier in the shape exporters leave models in.

It has what a deployment engineer cleans up first: a fixed batch of 1, constant subexpressions left
unfolded (a Reshape target built by Concat, a scale computed by Sqrt), a debugging Identity node, and an
output name nobody chose. Deterministic: the same bytes every run (seeded weights, fixed names).
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def make_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)

    def const(name, array):
        return helper.make_node("Constant", [], [name], name=f"const_{name}",
                                value=numpy_helper.from_array(np.asarray(array), name))

    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.2
    b = rng.standard_normal(8).astype(np.float32) * 0.1
    fc_w = rng.standard_normal((10, 8 * 16 * 16)).astype(np.float32) * 0.05
    fc_b = np.zeros(10, dtype=np.float32)
    nodes = [
        helper.make_node("Conv", ["images", "conv.weight", "conv.bias"], ["conv_out"], name="conv",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv_out"], ["relu_out"], name="relu"),
        helper.make_node("MaxPool", ["relu_out"], ["pool_out"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Identity", ["pool_out"], ["debug_out"], name="debug_identity"),
        const("batch", np.array([1], dtype=np.int64)),
        const("flat", np.array([8 * 16 * 16], dtype=np.int64)),
        helper.make_node("Concat", ["batch", "flat"], ["flat_shape"], name="flat_shape", axis=0),
        helper.make_node("Reshape", ["debug_out", "flat_shape"], ["flat_out"], name="flatten"),
        helper.make_node("Gemm", ["flat_out", "fc.weight", "fc.bias"], ["fc_out"], name="fc", transB=1),
        const("four", np.array(4.0, dtype=np.float32)),
        helper.make_node("Sqrt", ["four"], ["two"], name="sqrt_scale"),
        helper.make_node("Div", ["fc_out", "two"], ["onnx::Div_17"], name="scale"),
    ]
    graph = helper.make_graph(
        nodes, "quickstart",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("onnx::Div_17", TensorProto.FLOAT, [1, 10])],
        initializer=[numpy_helper.from_array(a, n) for n, a in
                     (("conv.weight", w), ("conv.bias", b), ("fc.weight", fc_w), ("fc.bias", fc_b))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="graphdsl-examples")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


if __name__ == "__main__":
    out = Path(__file__).with_name("quickstart.onnx")
    onnx.save(make_model(), out)
    print(f"wrote {out}")
