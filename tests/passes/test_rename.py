"""RenameTensor / RenameNode: new names only, clashes named, output renames recorded for verification."""

import pytest
from helpers import apply, assert_numerically_equal, codes, export, io_names, make_model, node, static_check, value

from graphdsl.diagnostics import ModelError, SourceFile, Span
from graphdsl.passes.rename import RenameNode, RenameTensor
from graphdsl.syntax.names import Name


def model():
    return make_model([node("Relu", ["x"], ["a"], name="relu"), node("Neg", ["a"], ["onnx::Neg_3"], name="neg")],
                      [value("x", [2])], [value("onnx::Neg_3", [2])])


def test_rename_output_is_recorded():
    before = model()
    graph, result, ctx = apply(RenameTensor("onnx::Neg_3", "logits"), before)
    assert io_names(graph) == (["x"], ["logits"]) and result.changed
    assert ctx.renames == {"logits": "onnx::Neg_3"}
    assert_numerically_equal(before, export(graph), renames=ctx.renames)


def test_rename_intermediate_and_chain():
    graph, _, ctx = apply(RenameTensor("a", "b"), model())
    _, _, ctx = apply(RenameTensor("b", "c"), graph, ctx)
    assert graph.nodes[1].inputs[0].name == "c" and ctx.renames == {"c": "a"}


def test_clash_is_refused_and_named():
    span = Span(SourceFile("t.gds", "rename tensor a to x\n"), 1, 20, 1, 21)
    with pytest.raises(ModelError) as e:
        apply(RenameTensor("a", Name("x", span)), model())
    d = e.value.diagnostics[0]
    assert d.code == "GDS312" and "`x`" in d.message and d.span == span


def test_unknown_tensor_suggests():
    with pytest.raises(ModelError) as e:
        apply(RenameTensor("onnx::Neg_4", "y"), model())
    assert codes(e.value) == ["GDS104"] and "onnx::Neg_3" in e.value.diagnostics[0].label


def test_rename_node():
    graph, result, _ = apply(RenameNode("relu", "act"), model())
    assert [n.name for n in graph.nodes] == ["act", "neg"] and result.changed
    with pytest.raises(ModelError) as e:
        apply(RenameNode("relu", "neg"), model())
    assert codes(e.value) == ["GDS312"]


def test_same_name_is_a_no_op():
    _, result, _ = apply(RenameTensor("a", "a"), model())
    assert not result.changed


def test_static_check_tracks_renames_and_clashes():
    m = model()
    scope = static_check(RenameTensor("a", "x"), m)
    assert [d.code for d in scope.diagnostics] == ["GDS312"]
    scope = static_check(RenameTensor("a", "b"), m)
    assert not scope.diagnostics and "b" in scope.tensors and "a" not in scope.tensors
    RenameTensor("a", "c").check(scope)  # `a` is gone now
    assert [d.code for d in scope.diagnostics] == ["GDS104"]
    scope = static_check(RenameNode("relu", "neg"), m)
    assert [d.code for d in scope.diagnostics] == ["GDS312"]
