"""Cleanup: dead nodes (in subgraphs too), unused inputs (on request) and unused local functions go."""

import numpy as np
import onnx_graphsurgeon as gs
from helpers import apply, assert_numerically_equal, export, io_names, make_model, node, op_types, static_check, value
from onnx import TensorProto, helper

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


def test_removed_nodes_stop_being_consumers():
    """The tensors left in the graph no longer list removed nodes (nor nodes inside their subgraphs)."""
    body = helper.make_graph([helper.make_node("Neg", ["x"], ["inner"])], "then", [],
                             [value("inner", [2, 3])])
    other = helper.make_graph([helper.make_node("Abs", ["x"], ["inner2"])], "else", [],
                              [value("inner2", [2, 3])])
    model = make_model([node("Relu", ["x"], ["y"]), node("Sigmoid", ["x"], ["dead"]),
                        helper.make_node("If", ["c"], ["dead_if"], name="if", then_branch=body,
                                         else_branch=other)],
                       [value("x", [2, 3]), value("c", [], TensorProto.BOOL)], [value("y", [2, 3])])
    graph, result, _ = apply(Cleanup(), model)
    x = graph.inputs[0]
    assert op_types(graph) == ["Relu"] and [n.op for n in x.outputs] == ["Relu"]
    assert result.counts == {"nodes_removed": 2, "tensors_removed": 2}


def test_a_subgraph_keeps_the_outer_nodes_it_reads_alive():
    body = helper.make_graph([helper.make_node("Mul", ["t", "t"], ["sq"])], "then", [], [value("sq", [2])])
    other = helper.make_graph([helper.make_node("Identity", ["x"], ["id"])], "else", [], [value("id", [2])])
    model = make_model([node("Neg", ["x"], ["t"]), node("Abs", ["x"], ["dead"]),
                        helper.make_node("If", ["c"], ["y"], name="if", then_branch=body, else_branch=other)],
                       [value("x", [2]), value("c", [], TensorProto.BOOL)], [value("y", [2])])
    graph, result, _ = apply(Cleanup(), model)
    assert op_types(graph) == ["Neg", "If"] and result.counts == {"nodes_removed": 1, "tensors_removed": 1}
    feeds = {"x": np.array([1, -2], np.float32), "c": np.array(True)}
    assert_numerically_equal(model, export(graph), feeds)


def test_dead_nodes_inside_subgraphs_go_and_their_inputs_stay():
    body = helper.make_graph([helper.make_node("Neg", ["i"], ["dead"]),
                              helper.make_node("Add", ["acc", "x"], ["out"]),
                              helper.make_node("Identity", ["go"], ["go_out"])],
                             "body", [value("i", [], TensorProto.INT64), value("go", [], TensorProto.BOOL),
                                      value("acc", [2])],
                             [value("go_out", [], TensorProto.BOOL), value("out", [2])])
    model = make_model([helper.make_node("Loop", ["n", "", "x"], ["y"], name="loop", body=body)],
                       [value("x", [2]), value("n", [], TensorProto.INT64)], [value("y", [2])])
    graph, _, _ = apply(Cleanup(remove_unused_graph_inputs=True), model)
    loop_body = graph.nodes[0].attrs["body"]
    assert [n.op for n in loop_body.nodes] == ["Add", "Identity"]
    assert [t.name for t in loop_body.inputs] == ["i", "go", "acc"]  # a body's signature is the Loop's
    feeds = {"x": np.array([1, 2], np.float32), "n": np.array(3, np.int64)}
    assert_numerically_equal(model, export(graph), feeds)


def test_deep_nesting_and_long_chains_need_no_recursion():
    depth = 1500
    inner = gs.Graph(nodes=[], name="innermost")
    x = gs.Variable("x", np.float32, [1])
    kept = gs.Variable("kept", np.float32, [1])
    inner.nodes = [gs.Node("Neg", inputs=[x], outputs=[gs.Variable("dead", np.float32, [1])]),
                   gs.Node("Abs", inputs=[x], outputs=[kept])]
    inner.outputs = [kept]
    for level in range(depth):
        result = gs.Variable(f"r{level}", np.float32, [1])
        holder = gs.Node("Loop", inputs=[], outputs=[result], attrs={"body": inner})
        inner = gs.Graph(name=f"g{level}", outputs=[result])
        inner.nodes = [holder]
    chain = [gs.Node("Neg", inputs=[x], outputs=[gs.Variable("c0", np.float32, [1])])]
    for i in range(5000):
        out = gs.Variable(f"c{i + 1}", np.float32, [1])
        chain.append(gs.Node("Neg", inputs=chain[-1].outputs, outputs=[out]))
    graph = gs.Graph(nodes=chain + inner.nodes, inputs=[x], outputs=inner.outputs)
    graph, result, _ = apply(Cleanup(), graph)
    assert result.counts["nodes_removed"] == 5001 and len(graph.nodes) == 1
    g = graph
    for _ in range(depth):
        g = g.nodes[0].attrs["body"]
    assert [n.op for n in g.nodes] == ["Abs"] and [n.op for n in x.outputs] == ["Abs"]


def test_unsorted_graph_keeps_every_live_node():
    """The backward sweep assumes producers come first; an unsorted graph falls back to a search."""
    model = make_model([node("Relu", ["x"], ["a"]), node("Neg", ["a"], ["b"]), node("Abs", ["b"], ["y"]),
                        node("Sigmoid", ["x"], ["dead"])],
                       [value("x", [2])], [value("y", [2])])
    graph = gs.import_onnx(model)
    graph.nodes.reverse()  # Sigmoid, Abs, Neg, Relu
    graph, result, _ = apply(Cleanup(), graph)
    assert sorted(op_types(graph)) == ["Abs", "Neg", "Relu"] and result.counts["nodes_removed"] == 1
