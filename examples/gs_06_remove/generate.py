"""Writes model.onnx here: x -> Identity -> FakeNodeToRemove -> Identity -> y (graphsurgeon example 06).

`FakeNodeToRemove` is no real op: neither onnx.checker nor ONNX Runtime accepts the model until the
node is removed, which is the point of the example. Shapes are inferred as far as ONNX can (up to the
fake node). Built with onnx.helper so that every run writes the same bytes.
"""

from pathlib import Path

import onnx
from onnx import TensorProto, helper


def make_model() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Identity", ["x"], ["i0"], name="identity_in"),
        helper.make_node("FakeNodeToRemove", ["i0"], ["i1"], name="fake"),
        helper.make_node("Identity", ["i1"], ["y"], name="identity_out"),
    ]
    graph = helper.make_graph(
        nodes, "remove",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)],
                              producer_name="graphdsl-examples")
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model)


if __name__ == "__main__":
    out = Path(__file__).with_name("model.onnx")
    onnx.save(make_model(), out)
    print(f"wrote {out}")
