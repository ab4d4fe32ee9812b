"""snapshot/diff on hand-made edits, subgraph bodies included; constant values are never loaded."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphdsl.report import diff, model_summary, snapshot


def chain_graph() -> gs.Graph:
    """x -> Add(w) -> Relu -> Transpose(perm) -> Mul(s) -> y"""
    x = gs.Variable("x", np.float32, [2, 4])
    w, s = gs.Constant("w", np.ones([4], np.float32)), gs.Constant("s", np.array(2.0, np.float32))
    a, r, t, y = (gs.Variable(n, np.float32, None) for n in ("a", "r", "t", "y"))
    nodes = [gs.Node("Add", "add", inputs=[x, w], outputs=[a]),
             gs.Node("Relu", "relu", inputs=[a], outputs=[r]),
             gs.Node("Transpose", "tr", attrs={"perm": [1, 0]}, inputs=[r], outputs=[t]),
             gs.Node("Mul", "mul", inputs=[t, s], outputs=[y])]
    return gs.Graph(nodes=nodes, inputs=[x], outputs=[y])


def node(graph: gs.Graph, name: str) -> gs.Node:
    return next(n for n in graph.nodes if n.name == name)


def counts(d) -> tuple[int, ...]:
    c = d.counts()
    return (c["nodes_added"], c["nodes_removed"], c["nodes_changed"], c["initializers_added"],
            c["initializers_removed"], c["initializers_changed"])


def test_no_edit_no_change():
    g = chain_graph()
    d = diff(snapshot(g), snapshot(g))
    assert d.empty and counts(d) == (0,) * 6 and d.op_delta == {}


def test_node_added():
    g = chain_graph()
    before = snapshot(g)
    y2 = gs.Variable("y2", np.float32, None)
    g.nodes.append(gs.Node("Neg", "neg", inputs=[g.outputs[0]], outputs=[y2]))
    d = diff(before, snapshot(g))
    assert counts(d) == (1, 0, 0, 0, 0, 0) and [n.name for n in d.added] == ["neg"]
    assert d.op_delta == {"Neg": 1}


def test_node_removed_and_its_consumer_rewired():
    g = chain_graph()
    before = snapshot(g)
    relu, tr = node(g, "relu"), node(g, "tr")
    tr.inputs[0] = relu.inputs[0]
    g.nodes.remove(relu)
    d = diff(before, snapshot(g))
    assert counts(d) == (0, 1, 1, 0, 0, 0)
    assert [n.name for n in d.removed] == ["relu"] and [n.name for n in d.changed] == ["tr"]
    assert d.op_delta == {"Relu": -1}


def test_attribute_changed():
    g = chain_graph()
    before = snapshot(g)
    node(g, "tr").attrs["perm"] = [0, 1]
    d = diff(before, snapshot(g))
    assert counts(d) == (0, 0, 1, 0, 0, 0) and d.op_delta == {}


def test_op_changed_in_place():
    g = chain_graph()
    before = snapshot(g)
    node(g, "relu").op = "Sigmoid"
    d = diff(before, snapshot(g))
    assert counts(d) == (0, 0, 1, 0, 0, 0) and d.op_delta == {"Relu": -1, "Sigmoid": 1}


def test_extra_input_changes_the_node():
    g = chain_graph()
    before = snapshot(g)
    node(g, "relu").inputs.append(gs.Variable("extra", np.float32, None))
    d = diff(before, snapshot(g))
    assert [n.name for n in d.changed] == ["relu"]


def test_initializer_replaced_under_the_same_name():
    g = chain_graph()
    before = snapshot(g)
    node(g, "add").inputs[1] = gs.Constant("w", np.zeros([4], np.float32))
    d = diff(before, snapshot(g))
    # the node now reads another tensor object, and the constant itself is new
    assert counts(d) == (0, 0, 1, 0, 0, 1) and [c.name for c in d.initializers_changed] == ["w"]


def test_initializer_added_and_removed():
    g = chain_graph()
    before = snapshot(g)
    node(g, "mul").inputs[1] = gs.Constant("s2", np.array(3.0, np.float32))
    d = diff(before, snapshot(g))
    assert counts(d) == (0, 0, 1, 1, 1, 0)
    assert [c.name for c in d.initializers_added] == ["s2"]
    assert [c.name for c in d.initializers_removed] == ["s"]


def test_constant_values_reassigned():
    g = chain_graph()
    before = snapshot(g)
    node(g, "add").inputs[1].values = np.full([4], 3.0, np.float32)
    d = diff(before, snapshot(g))
    assert counts(d) == (0, 0, 0, 0, 0, 1)


def test_rebuilt_node_with_same_op_and_name_pairs_up():
    g = chain_graph()
    before = snapshot(g)
    old = node(g, "tr")
    same = gs.Node("Transpose", "tr", attrs={"perm": [1, 0]}, inputs=list(old.inputs),
                   outputs=list(old.outputs))
    g.nodes[g.nodes.index(old)] = same
    assert diff(before, snapshot(g)).empty
    middle = snapshot(g)
    other = gs.Node("Transpose", "tr", attrs={"perm": [0, 1]}, inputs=list(same.inputs),
                    outputs=list(same.outputs))
    g.nodes[g.nodes.index(same)] = other
    d = diff(middle, snapshot(g))
    assert counts(d) == (0, 0, 1, 0, 0, 0) and d.changed == [other]


def test_reordering_is_not_a_change():
    g = chain_graph()
    before = snapshot(g)
    g.nodes.reverse()
    assert diff(before, snapshot(g)).empty


def test_removal_and_later_edit_together():
    """Positions shift after a removal: the later edit must still be found (the general path)."""
    g = chain_graph()
    before = snapshot(g)
    relu, tr = node(g, "relu"), node(g, "tr")
    g.nodes.remove(relu)
    tr.inputs[0] = relu.inputs[0]
    node(g, "mul").attrs["note"] = 1
    d = diff(before, snapshot(g))
    assert counts(d) == (0, 1, 2, 0, 0, 0) and sorted(n.name for n in d.changed) == ["mul", "tr"]


def test_count_change_and_later_edits_line_up():
    """A node with one more input, an edit after it and a removal before it, all in one diff."""
    g = chain_graph()
    before = snapshot(g)
    relu, tr, mul = node(g, "relu"), node(g, "tr"), node(g, "mul")
    tr.inputs[0] = relu.inputs[0]
    g.nodes.remove(relu)
    tr.inputs.append(gs.Variable("extra", np.float32, None))
    mul.outputs[0].name = "renamed"  # in place: invisible by design
    mul.attrs["note"] = 1
    d = diff(before, snapshot(g))
    assert [n.name for n in d.removed] == ["relu"] and sorted(n.name for n in d.changed) == ["mul", "tr"]


def if_graph() -> gs.Graph:
    """y = If(c) then Relu(x) else Neg(Add(x, k)); k a constant read inside the else branch."""
    x = gs.Variable("x", np.float32, [2])
    c = gs.Variable("c", np.bool_, [])
    k = gs.Constant("k", np.ones([2], np.float32))
    t_out, e_mid, e_out = (gs.Variable(n, np.float32, [2]) for n in ("t_out", "e_mid", "e_out"))
    then = gs.Graph(nodes=[gs.Node("Relu", "then_relu", inputs=[x], outputs=[t_out])], outputs=[t_out],
                    name="then")
    other = gs.Graph(nodes=[gs.Node("Add", "else_add", inputs=[x, k], outputs=[e_mid]),
                            gs.Node("Neg", "else_neg", inputs=[e_mid], outputs=[e_out])],
                     outputs=[e_out], name="else")
    y = gs.Variable("y", np.float32, [2])
    cond = gs.Node("If", "branch", attrs={"then_branch": then, "else_branch": other}, inputs=[c], outputs=[y])
    return gs.Graph(nodes=[cond], inputs=[x, c], outputs=[y])


def test_subgraph_nodes_are_counted_and_diffed():
    g = if_graph()
    before = snapshot(g)
    assert len(before.nodes) == 4 and before.ops == {"If": 1, "Relu": 1, "Add": 1, "Neg": 1}
    assert [c.name for c in before.constants] == ["k"]
    other = g.nodes[0].attrs["else_branch"]
    neg = other.nodes[1]
    other.nodes.remove(neg)
    other.outputs = [other.nodes[0].outputs[0]]
    then = g.nodes[0].attrs["then_branch"]
    then.nodes[0].attrs["alpha"] = 0.5
    d = diff(before, snapshot(g))
    assert counts(d) == (0, 1, 1, 0, 0, 0)
    assert [n.name for n in d.removed] == ["else_neg"] and [n.name for n in d.changed] == ["then_relu"]
    assert d.op_delta == {"Neg": -1}


def test_to_json_keys_and_sorted_names():
    g = chain_graph()
    before = snapshot(g)
    g.nodes.append(gs.Node("Neg", "", inputs=[g.outputs[0]], outputs=[gs.Variable("z", np.float32, None)]))
    node(g, "tr").attrs["perm"] = [0, 1]
    j = diff(before, snapshot(g)).to_json()
    assert list(j) == ["nodes_added", "nodes_removed", "nodes_changed", "initializers_added",
                       "initializers_removed", "initializers_changed", "op_delta", "nodes", "initializers"]
    assert j["nodes"] == {"added": ["<Neg>"], "removed": [], "changed": ["tr"]}
    assert j["op_delta"] == {"Neg": 1}


def lazy_model() -> onnx.ModelProto:
    """A Loop-free model whose initializers gs imports lazily (large enough), one inside an If branch."""
    big = numpy_helper.from_array(np.ones([64, 64], np.float32), "big")
    inner = numpy_helper.from_array(np.ones([64], np.float16), "inner")
    then = helper.make_graph([helper.make_node("Identity", ["inner"], ["t"], name="then_id")], "then", [],
                             [helper.make_tensor_value_info("t", TensorProto.FLOAT16, [64])], [inner])
    other = helper.make_graph([helper.make_node("Identity", ["inner"], ["e"], name="else_id")], "else", [],
                              [helper.make_tensor_value_info("e", TensorProto.FLOAT16, [64])])
    nodes = [helper.make_node("MatMul", ["x", "big"], ["y"], name="mm"),
             helper.make_node("If", ["c"], ["z"], name="branch", then_branch=then, else_branch=other)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 64]),
                                           helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 64]),
                               helper.make_tensor_value_info("z", TensorProto.FLOAT16, [64])], [big])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_lazy_constants_stay_lazy():
    g = gs.import_onnx(lazy_model())
    constants = [c for c in g.tensors().values() if isinstance(c, gs.Constant)]
    assert constants and all(isinstance(c._values, gs.ir.tensor.LazyValues) for c in constants)
    before = snapshot(g)
    diff(before, snapshot(g))
    summary = model_summary(g)
    assert all(isinstance(c._values, gs.ir.tensor.LazyValues) for c in constants)
    assert summary.parameter_count == 64 * 64 + 64 and summary.parameter_bytes == 64 * 64 * 4 + 64 * 2


def test_reimported_graph_pairs_nodes_by_name():
    g = gs.import_onnx(lazy_model())
    before = snapshot(g)
    again = gs.import_onnx(gs.export_onnx(g))
    d = diff(before, snapshot(again))
    # nodes pair up by op and name; constants are new objects, so they count as changed
    assert counts(d) == (0, 0, 0, 0, 0, 2) and d.op_delta == {}


@pytest.mark.parametrize("value", [np.arange(3), gs.Constant("attr_t", np.ones(2, np.float32))])
def test_unusual_attribute_values(value):
    g = chain_graph()
    node(g, "relu").attrs["odd"] = value
    before = snapshot(g)
    assert diff(before, snapshot(g)).empty
    node(g, "relu").attrs["odd"] = np.arange(4)
    assert [n.name for n in diff(before, snapshot(g)).changed] == ["relu"]
