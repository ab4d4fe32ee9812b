"""RemoveNodes: bypass nodes (graphsurgeon example 06), keeping graph output names where possible."""

import numpy as np
import pytest
from helpers import (apply, assert_numerically_equal, codes, export, io_names, make_model, node, op_types,
                     static_check, value)

from graphdsl.diagnostics import ModelError, SourceFile, Span
from graphdsl.passes.remove_node import RemoveNodes
from graphdsl.syntax.names import Name


def chain_model():
    """x -> Relu -> a -> Identity(debug) -> b -> Neg -> y"""
    return make_model([node("Relu", ["x"], ["a"], name="relu"), node("Identity", ["a"], ["b"], name="debug"),
                       node("Neg", ["b"], ["y"], name="neg")], [value("x", [2, 3])], [value("y", [2, 3])])


def test_bypass_keeps_the_removed_nodes_output_name():
    model = chain_model()
    graph, result, ctx = apply(RemoveNodes(["debug"]), model)
    assert op_types(graph) == ["Relu", "Neg"] and result.counts == {"removed": 1}
    relu, neg = graph.nodes
    assert relu.outputs[0].name == "b" and neg.inputs[0] is relu.outputs[0]  # the producer writes `b`
    assert "a" not in graph.tensors() and not ctx.diagnostics
    assert_numerically_equal(model, export(graph))


def test_every_reader_of_the_input_follows():
    model = make_model([node("Relu", ["x"], ["a"]), node("Identity", ["a"], ["b"], name="debug"),
                        node("Neg", ["b"], ["y"]), node("Abs", ["a"], ["z"])],
                       [value("x", [2])], [value("y", [2]), value("z", [2])])
    graph, _, _ = apply(RemoveNodes(["debug"]), model)
    assert_numerically_equal(model, export(graph))


def test_graph_output_keeps_its_name_when_the_input_has_a_producer():
    model = make_model([node("Relu", ["x"], ["a"]), node("Cast", ["a"], ["y"], name="cast", to=10)],
                       [value("x", [2])], [value("y", [2], 10)])
    graph, _, ctx = apply(RemoveNodes(["cast"]), model)
    assert io_names(graph) == (["x"], ["y"]) and op_types(graph) == ["Relu"]
    assert graph.outputs[0].dtype == np.float32  # the output now holds what Relu writes
    assert not ctx.renames
    export(graph)


def test_graph_output_fed_by_a_graph_input_is_renamed_and_recorded():
    model = make_model([node("Identity", ["x"], ["y"], name="id")], [value("x", [2])], [value("y", [2])])
    graph, _, ctx = apply(RemoveNodes(["id"]), model)
    assert io_names(graph) == (["x"], ["x"]) and graph.nodes == []
    assert ctx.renames == {"x": "y"} and [d.code for d in ctx.diagnostics] == ["GDS328"]
    assert_numerically_equal(model, export(graph), renames=ctx.renames)


def test_input_index_picks_another_input():
    model = make_model([node("Add", ["x", "c"], ["s"], name="add"), node("Neg", ["s"], ["y"])],
                       [value("x", [2]), value("c", [2])], [value("y", [2])])
    graph, _, _ = apply(RemoveNodes(["add"], input_index=1), model)
    assert graph.nodes[0].inputs[0].name == "c"


def test_unused_extra_outputs_are_allowed_used_ones_refused():
    dropout = make_model([node("Dropout", ["x"], ["d", "mask"], name="drop"), node("Neg", ["d"], ["y"])],
                         [value("x", [2])], [value("y", [2])])
    graph, _, _ = apply(RemoveNodes(["drop"]), dropout)
    assert op_types(graph) == ["Neg"]
    assert_numerically_equal(dropout, export(graph))
    split = make_model([node("Split", ["x"], ["p", "q"], name="split", num_outputs=2),
                        node("Add", ["p", "q"], ["y"])], [value("x", [4])], [value("y", [2])], opset=18)
    with pytest.raises(ModelError) as e:
        apply(RemoveNodes(["split"]), split)
    assert codes(e.value) == ["GDS313"] and "p, q" in e.value.diagnostics[0].message


def test_bad_input_index():
    with pytest.raises(ModelError) as e:
        apply(RemoveNodes(["debug"], input_index=2), chain_model())
    assert codes(e.value) == ["GDS314"] and "has 1 inputs" in e.value.diagnostics[0].hints[0]


def test_unknown_node_points_at_the_name_and_changes_nothing():
    span = Span(SourceFile("t.gds", "remove node debgu\n"), 1, 13, 1, 18)
    import onnx_graphsurgeon as gs

    graph = gs.import_onnx(chain_model())
    with pytest.raises(ModelError) as e:
        apply(RemoveNodes(["debug", Name("debgu", span)]), graph)
    d = e.value.diagnostics[0]
    assert d.code == "GDS105" and d.span == span and "did you mean `debug`" in d.label
    assert len(graph.nodes) == 3


def test_static_check_requires_and_forgets_the_node():
    model = chain_model()
    scope = static_check(RemoveNodes(["debug", "nope"]), model)
    assert [d.code for d in scope.diagnostics] == ["GDS105"] and "debug" not in scope.nodes


def test_removes_a_chain_and_refuses_before_changing_anything():
    model = make_model([node("Relu", ["x"], ["a"]), node("Identity", ["a"], ["b"], name="id1"),
                        node("Identity", ["b"], ["c"], name="id2"), node("Neg", ["c"], ["y"])],
                       [value("x", [2])], [value("y", [2])])
    graph, result, _ = apply(RemoveNodes(["id1", "id2"]), model)
    assert op_types(graph) == ["Relu", "Neg"] and result.counts == {"removed": 2}
    assert graph.nodes[0].outputs[0].name == "c"
    assert_numerically_equal(model, export(graph))
    import onnx_graphsurgeon as gs

    model = make_model([node("Add", ["x", "z"], ["a"], name="add"), node("Identity", ["a"], ["b"], name="id"),
                        node("Neg", ["b"], ["y"])], [value("x", [2]), value("z", [2])], [value("y", [2])])
    graph = gs.import_onnx(model)
    with pytest.raises(ModelError) as e:
        apply(RemoveNodes(["add", "id"], input_index=1), graph)  # `add` has an input 1, `id` has not
    assert "`id`" in e.value.diagnostics[0].message
    assert op_types(graph) == ["Add", "Identity", "Neg"] and graph.nodes[0].inputs[1].name == "z"
