"""Verification of models that are odd at their edges: inputs whose dims are open without a name (`-1`,
missing), inputs declared too large for random data, and models nested deeper than protobuf parses.

Exporters write open dims as `dim_value: -1` (Paddle2ONNX) or leave them empty; random data of shape -1
crashed numpy (an internal error), and `verify shape` could only size named dims. An input of [2^62, 16]
crashed numpy too; a model of 50 nested If bodies failed the checker "newly" (the message named the
staged file, not the input) and crashed the comparison with protobuf's DecodeError.
"""

from __future__ import annotations

import hostile_models as hm
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphdsl
from graphdsl.diagnostics import GraphdslError


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
    w = numpy_helper.from_array(np.ones((2, 3, 3, 3), np.float32), "w")
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


def test_input_too_large_for_random_data_is_gds403(tmp_path):
    with pytest.raises(GraphdslError) as e:
        graphdsl.compile("cleanup\n").run(hm.huge_dims(tmp_path), quiet=True)
    assert e.value.diagnostics[0].code == "GDS403" and "verify shape" in e.value.diagnostics[0].hints[0]


def test_model_protobuf_cannot_parse(tmp_path):
    model = hm.nested_ifs(tmp_path, 50)
    with pytest.raises(GraphdslError) as e:
        graphdsl.compile("cleanup\n").run(model, output=tmp_path / "out.onnx", quiet=True)
    assert e.value.diagnostics[0].code == "GDS402" and "--no-verify" in e.value.diagnostics[0].hints[0]
    result = graphdsl.compile("cleanup\n").run(model, output=tmp_path / "out.onnx", no_verify=True,
                                                quiet=True)
    assert result.passed and result.written == [tmp_path / "out.onnx"]
    warning = next(d for d in result.report.diagnostics if d.code == "GDS306")
    assert warning.severity == "warning" and "input model already fails" in warning.message
