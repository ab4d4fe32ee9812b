"""SetAttributes: attribute names and types checked against the op's schema; ints widen to floats."""

import numpy as np
import pytest
from helpers import apply, assert_numerically_equal, codes, export, make_model, node, static_check, value
from onnx import helper

from graphdsl.diagnostics import ModelError, ScriptError, SourceFile, Span
from graphdsl.passes.set_attributes import SetAttributes
from graphdsl.syntax.names import Name


def model():
    return make_model([node("LeakyRelu", ["x"], ["y"], name="act", alpha=0.1)], [value("x", [4])], [value("y", [4])])


def test_sets_and_widens_int_to_float():
    before = model()
    graph, result, _ = apply(SetAttributes("act", {"alpha": 1}), before)
    assert graph.nodes[0].attrs["alpha"] == 1.0 and isinstance(graph.nodes[0].attrs["alpha"], float)
    assert result.changed and result.counts == {"attributes_set": 1}
    x = np.array([-2, -1, 0, 3], np.float32)
    from helpers import run_ort

    np.testing.assert_allclose(run_ort(export(graph), {"x": x})["y"], x)


def test_same_value_is_unchanged():
    before = model()
    graph, result, _ = apply(SetAttributes("act", {"alpha": 0.1}), before)
    assert not result.changed
    assert_numerically_equal(before, export(graph))


def test_float_lists_widen():
    m = make_model([node("Resize", ["x", "", "scales"], ["y"], name="resize", mode="nearest")],
                   [value("x", [1, 1, 2, 2])], [value("y", [1, 1, 4, 4])], {"scales": np.array([1, 1, 2, 2], np.float32)})
    graph, _, _ = apply(SetAttributes("resize", {"mode": "linear"}), m)
    assert graph.nodes[0].attrs["mode"] == "linear"
    conv = make_model([node("Conv", ["x", "w"], ["y"], name="conv")], [value("x", [1, 1, 3, 3])],
                      [value("y", [1, 1, 3, 3])], {"w": np.ones((1, 1, 3, 3), np.float32)})
    graph, _, _ = apply(SetAttributes("conv", {"pads": (1, 1, 1, 1)}), conv)
    assert graph.nodes[0].attrs["pads"] == [1, 1, 1, 1]
    export(graph)


def test_unknown_attribute_suggests_and_points_at_it():
    span = Span(SourceFile("t.gds", "set node act alpah = 1\n"), 1, 14, 1, 19)
    with pytest.raises(ScriptError) as e:
        apply(SetAttributes("act", {Name("alpah", span): 1}), model())
    d = e.value.diagnostics[0]
    assert d.code == "GDS102" and d.span == span and "did you mean `alpha`" in d.label


def test_wrong_type_is_refused():
    with pytest.raises(ScriptError) as e:
        apply(SetAttributes("act", {"alpha": "big"}), model())
    assert codes(e.value) == ["GDS108"] and "a number" in e.value.diagnostics[0].message


def test_unknown_node():
    with pytest.raises(ModelError) as e:
        apply(SetAttributes("akt", {"alpha": 1}), model())
    assert codes(e.value) == ["GDS105"] and "`act`" in e.value.diagnostics[0].label


def test_custom_op_takes_any_attribute():
    m = make_model([node("Plugin", ["x"], ["y"], name="p", domain="trt")], [value("x", [4])], [value("y", [4])],
                   extra_opsets=[helper.make_opsetid("trt", 1)])
    graph, _, _ = apply(SetAttributes("p", {"plugin_version": "1", "scale": 2}), m)
    assert graph.nodes[0].attrs == {"plugin_version": "1", "scale": 2}
    assert not static_check(SetAttributes("p", {"anything": 1}), m).diagnostics


def test_static_check_uses_the_models_opset():
    m = model()
    assert [d.code for d in static_check(SetAttributes("act", {"beta": 1}), m).diagnostics] == ["GDS102"]
    assert [d.code for d in static_check(SetAttributes("act", {"alpha": [1]}), m).diagnostics] == ["GDS108"]
    assert [d.code for d in static_check(SetAttributes("nope", {"alpha": 1}), m).diagnostics] == ["GDS105"]
    assert not static_check(SetAttributes("act", {"alpha": 2}), m).diagnostics
