"""ConvertOpset (onnx's version converter) and SetIRVersion (bounded by opsets, functions and onnx)."""

import numpy as np
import onnx
import pytest
from helpers import apply, assert_numerically_equal, codes, export, make_model, node, static_check, value
from onnx import helper

from graphdsl.diagnostics import ModelError, ScriptError
from graphdsl.passes.convert_version import ConvertOpset, SetIRVersion


def opset11_model():
    """Split and ReduceSum take their sizes/axes as attributes at opset 11 and as inputs at 13."""
    return make_model([node("Split", ["x"], ["p", "q"], name="split", axis=0, split=[1, 3]),
                       node("ReduceSum", ["q"], ["s"], name="sum", axes=[0], keepdims=1),
                       node("Add", ["p", "s"], ["y"], name="add")],
                      [value("x", [4, 3])], [value("y", [1, 3])], opset=11)


def test_converts_and_keeps_what_it_computes():
    before = opset11_model()
    graph, result, _ = apply(ConvertOpset(13), before)
    assert result.graph is graph and graph.opset == 13 and result.changed
    assert [n.name for n in graph.nodes] == ["opset13/Constant_0", "split", "opset13/Constant_1", "sum", "add"]
    by_name = {n.name: n for n in graph.nodes}
    assert len(by_name["split"].inputs) == 2 and len(by_name["sum"].inputs) == 2  # attributes became inputs
    assert_numerically_equal(before, export(graph))


def test_same_opset_is_unchanged():
    _, result, _ = apply(ConvertOpset(17), make_model([node("Relu", ["x"], ["y"])], [value("x", [1])], [value("y", [1])]))
    assert not result.changed and result.graph is None


def test_failure_names_the_op_and_node():
    model = make_model([node("LayerNormalization", ["x", "s", "b"], ["y"], name="ln")], [value("x", [2, 4])],
                       [value("y", [2, 4])], {"s": np.ones(4, np.float32), "b": np.zeros(4, np.float32)})
    with pytest.raises(ModelError) as e:
        apply(ConvertOpset(16), model)
    d = e.value.diagnostics[0]
    assert d.code == "GDS317" and "op LayerNormalization (node ln)" in d.message
    assert "No Previous Version of LayerNormalization" in d.message and d.location == "node 'ln'"


def test_opset_out_of_range():
    with pytest.raises(ScriptError) as e:
        apply(ConvertOpset(99), opset11_model())
    assert codes(e.value) == ["GDS319"]
    scope = static_check(ConvertOpset(99), opset11_model())
    assert [d.code for d in scope.diagnostics] == ["GDS319"]
    scope = static_check(ConvertOpset(13), opset11_model())
    assert scope.opset[""] == 13 and not scope.diagnostics


def test_set_ir_version():
    model = opset11_model()  # opset 11 needs IR 6
    graph, result, _ = apply(SetIRVersion(7), model)
    assert graph.ir_version == 7 and result.changed
    assert export(graph).ir_version == 7
    with pytest.raises(ModelError) as e:
        apply(SetIRVersion(5), model)
    assert codes(e.value) == ["GDS318"] and "need IR 6" in e.value.diagnostics[0].message
    with pytest.raises(ModelError) as e:
        apply(SetIRVersion(onnx.IR_VERSION + 1), model)
    assert codes(e.value) == ["GDS318"]
    assert [d.code for d in static_check(SetIRVersion(5), model).diagnostics] == ["GDS318"]


def test_functions_need_ir_8():
    opsets = [helper.make_opsetid("", 11), helper.make_opsetid("local", 1)]
    fn = helper.make_function("local", "F", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])], opsets)
    model = make_model([node("F", ["x"], ["y"], domain="local")], [value("x", [1])], [value("y", [1])], opset=11,
                       functions=[fn], extra_opsets=[helper.make_opsetid("local", 1)])
    with pytest.raises(ModelError) as e:
        apply(SetIRVersion(7), model)
    assert "model-local functions need IR 8" in e.value.diagnostics[0].message


def test_declared_io_shapes_survive_conversion():
    import onnx_graphsurgeon as gs

    graph = gs.import_onnx(make_model([node("Reshape", ["x", "t"], ["y"])], [value("x", ["N", 6])],
                                      [value("y", ["N", 2, 3])], {"t": np.array([1, 2, 3], np.int64)}))
    graph, _, _ = apply(ConvertOpset(18), graph)
    assert graph.inputs[0].shape == ["N", 6] and graph.outputs[0].shape == ["N", 2, 3]
