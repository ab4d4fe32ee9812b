"""Verification data for inputs whose dims the model leaves open without naming them (`-1`, missing).

Exporters write such dims as `dim_value: -1` (Paddle2ONNX) or leave them empty; random data of shape -1
crashed numpy (an internal error), and `verify shape` could only size named dims.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper, numpy_helper

import graphdsl


def conv_model(dims) -> onnx.ModelProto:
    """A 3x3 Conv (so spatial dims of 1 fail) on an input declared with `dims`."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, None)
    x.type.tensor_type.shape.SetInParent()
    for d in dims:
        dim = x.type.tensor_type.shape.dim.add()
        if isinstance(d, int):
            dim.dim_value = d
        elif isinstance(d, str):
            dim.dim_param = d
    w = numpy_helper.from_array(__import__("numpy").ones((2, 3, 3, 3), "float32"), "w")
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], "g", [x], [y], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def run(tmp_path, dims, verify: str):
    path = tmp_path / "m.onnx"
    onnx.save(conv_model(dims), path)
    return graphdsl.compile(f"cleanup\n{verify}\n").run(path, quiet=True)


def test_negative_and_unnamed_dims_sized_by_position(tmp_path):
    result = run(tmp_path, [-1, 3, None, None], "verify shape x [2, 3, 8, 5]")
    assert result.passed and result.verification.outputs[0].shape == [2, 2, 6, 3]


def test_named_dims_still_sized_by_name(tmp_path):
    result = run(tmp_path, ["n", 3, "h", "w"], "verify shape x [1, 3, 4, 4]")
    assert result.passed and result.verification.outputs[0].shape == [1, 2, 2, 2]


def test_static_dims_are_kept(tmp_path):
    result = run(tmp_path, [1, 3, 5, 5], "verify shape x [1, 3, 5, 5]")
    assert result.passed and result.verification.outputs[0].shape == [1, 2, 3, 3]


def test_negative_dim_without_verify_shape_is_not_a_crash(tmp_path):
    """Open dims default to 1: the 3x3 Conv cannot run on 1x1, which is a diagnostic (GDS402), not numpy's
    "negative dimensions are not allowed"."""
    path = tmp_path / "m.onnx"
    onnx.save(conv_model([-1, 3, -1, -1]), path)
    try:
        graphdsl.compile("cleanup\n").run(path, quiet=True)
    except graphdsl.GraphdslError as e:
        assert e.diagnostics[0].code == "GDS402"
