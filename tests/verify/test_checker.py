"""check_model(): onnx.checker findings as GDS306 diagnostics that name the node or tensor."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from graphdsl import verify as verify_module
from graphdsl.diagnostics import render_text
from graphdsl.verify import check_model

X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])


def make(nodes, inits=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [X], [Y], list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def valid() -> onnx.ModelProto:
    return make([helper.make_node("Relu", ["x"], ["y"], name="r0")])


def test_valid_model_has_no_findings(tmp_path):
    assert check_model(valid()) == []
    onnx.save_model(valid(), tmp_path / "m.onnx")
    assert check_model(tmp_path / "m.onnx") == []


def test_unsorted_graph_names_the_node_and_suggests_cleanup():
    model = make([helper.make_node("Relu", ["t"], ["y"], name="r1"),
                  helper.make_node("Relu", ["x"], ["t"], name="r0")])
    (d,) = check_model(model)
    assert render_text(d) == (
        "error[GDS306]: the result is not a valid ONNX model: Nodes in a graph must be topologically sorted, "
        "however input 't' of node: name: r1 OpType: Relu is not output of any previous nodes.\n"
        " --> result: node 'r1' (Relu)\n"
        "  = help: a node reads a tensor that no earlier node produces: run `cleanup` (it sorts the graph) "
        "or check that the pass connected every input")


def test_strict_shape_inference_failure_names_the_node():
    model = make([helper.make_node("Add", ["x", "c"], ["y"], name="add0")],
                 [helper.make_tensor("c", TensorProto.INT64, [1], [1])])
    (d,) = check_model(model)
    assert d.code == "GDS306" and d.location == "result: node 'add0' (Add)"
    assert "inconsistent type" in d.message and "--verify-each" in d.hints[0]


def test_unknown_op_names_the_node():
    (d,) = check_model(make([helper.make_node("Foo", ["x"], ["y"], name="foo0")]))
    assert d.location == "result: node 'foo0' (Foo)" and "No Op registered for Foo" in d.message
    assert "spelling" in d.hints[0]


def test_path_label_is_the_file_name(tmp_path):
    path = tmp_path / "bad.onnx"
    onnx.save_model(make([helper.make_node("Foo", ["x"], ["y"], name="foo0")]), path)
    (d,) = check_model(path)
    assert d.message.startswith("the bad.onnx is not a valid ONNX model") is False
    assert d.message.startswith("bad.onnx is not a valid ONNX model") and d.location.startswith("bad.onnx: ")


def test_oversized_proto_is_checked_by_path(monkeypatch):
    monkeypatch.setattr(verify_module, "PROTO_LIMIT", 16)
    model = make([helper.make_node("Add", ["x", "c"], ["y"], name="add0")],
                 [helper.make_tensor("c", TensorProto.FLOAT, [4], [1.0] * 4)])
    before = model.SerializeToString()
    (d,) = check_model(model)
    assert "Incompatible dimensions" in d.message and d.location == "result: node 'add0' (Add)"
    assert model.SerializeToString() == before
