"""Cleanup: dead nodes, unused inputs (on request) and unused local functions go."""

import numpy as np
from helpers import apply, assert_numerically_equal, export, io_names, make_model, node, op_types, static_check, value
from onnx import helper

from graphdsl.passes.cleanup import Cleanup


def dead_code_model():
    return make_model([node("Relu", ["x"], ["y"]), node("Neg", ["x"], ["dead"]), node("Abs", ["dead"], ["dead2"])],
                      [value("x", [2, 3]), value("unused", [1])], [value("y", [2, 3])],
                      {"w": np.ones(3, np.float32)})


def test_removes_dead_nodes_and_keeps_inputs_by_default():
    model = dead_code_model()
    graph, result, _ = apply(Cleanup(), model)
    assert op_types(graph) == ["Relu"] and io_names(graph) == (["x", "unused"], ["y"])
    assert result.counts == {"nodes_removed": 2, "tensors_removed": 2}
    assert_numerically_equal(model, export(graph))


def test_removes_unused_inputs_on_request():
    graph, result, _ = apply(Cleanup(remove_unused_graph_inputs=True), dead_code_model())
    assert io_names(graph) == (["x"], ["y"]) and result.counts["inputs_removed"] == 1


def test_nothing_to_do_is_unchanged():
    graph, result, _ = apply(Cleanup(), make_model([node("Relu", ["x"], ["y"])], [value("x", [2])], [value("y", [2])]))
    assert not result.changed and result.counts == {}


def functions_model():
    """`y = local::Outer(x)`; Outer calls Inner; Unused is called by nobody."""
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]
    inner = helper.make_function("local", "Inner", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])], opsets)
    outer = helper.make_function("local", "Outer", ["a"], ["b"],
                                 [helper.make_node("Inner", ["a"], ["t"], domain="local"),
                                  helper.make_node("Neg", ["t"], ["b"])], opsets)
    unused = helper.make_function("local", "Unused", ["a"], ["b"], [helper.make_node("Abs", ["a"], ["b"])], opsets)
    return make_model([node("Outer", ["x"], ["y"], domain="local")], [value("x", [4])], [value("y", [4])],
                      functions=[inner, outer, unused], extra_opsets=[helper.make_opsetid("local", 1)])


def test_removes_only_functions_nobody_calls():
    model = functions_model()
    graph, result, _ = apply(Cleanup(), model)
    assert sorted(f.name for f in graph.functions) == ["Inner", "Outer"]
    assert result.counts == {"functions_removed": 1}
    assert_numerically_equal(model, export(graph))
    graph, result, _ = apply(Cleanup(remove_unused_functions=False), model)
    assert len(graph.functions) == 3 and not result.changed


def test_check_turns_scope_uncertain():
    assert static_check(Cleanup(), dead_code_model()).uncertain
