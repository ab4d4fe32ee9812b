"""InlineFunctions: calls of model-local functions replaced by their bodies, graph I/O kept."""

import numpy as np
from helpers import apply, assert_numerically_equal, export, io_names, make_model, node, op_types, static_check, value
from onnx import helper

from graphdsl.passes.inline_functions import InlineFunctions

OPSETS = [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]


def gelu_model():
    """y = local::Gelu(x) * 2, Gelu = x * 0.5 * (1 + Erf(x / sqrt 2)) as a model-local function."""
    body = [helper.make_node("Constant", [], ["c"], value_float=1.41421356),
            helper.make_node("Div", ["x", "c"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
            helper.make_node("Constant", [], ["one"], value_float=1.0), helper.make_node("Add", ["e", "one"], ["f"]),
            helper.make_node("Mul", ["x", "f"], ["g"]), helper.make_node("Constant", [], ["half"], value_float=0.5),
            helper.make_node("Mul", ["g", "half"], ["y"])]
    gelu = helper.make_function("local", "Gelu", ["x"], ["y"], body, OPSETS)
    return make_model([node("Gelu", ["x"], ["g"], name="gelu", domain="local"), node("Mul", ["g", "two"], ["y"])],
                      [value("x", [2, 3])], [value("y", [2, 3])], {"two": np.array(2, np.float32)},
                      functions=[gelu], extra_opsets=[helper.make_opsetid("local", 1)])


def test_inlines_and_keeps_io():
    before = gelu_model()
    graph, result, _ = apply(InlineFunctions(), before)
    assert result.graph is graph and not graph.functions
    assert "Gelu" not in op_types(graph) and "Erf" in op_types(graph)
    assert io_names(graph) == (["x"], ["y"])
    assert result.counts == {"calls_inlined": 1, "functions_removed": 1}
    assert_numerically_equal(before, export(graph))


def test_without_functions_nothing_changes():
    _, result, _ = apply(InlineFunctions(), make_model([node("Relu", ["x"], ["y"])], [value("x", [1])], [value("y", [1])]))
    assert not result.changed and result.graph is None


def test_check_turns_scope_uncertain():
    assert static_check(InlineFunctions(), gelu_model()).uncertain
