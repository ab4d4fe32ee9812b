"""Extract: cut the subgraph between tensors (graphsurgeon example 03), with types and dangling checks."""

import numpy as np
import pytest
from helpers import apply, codes, export, io_names, make_model, node, op_types, run_ort, static_check, value

from graphdsl.diagnostics import ModelError, SourceFile, Span
from graphdsl.passes.extract import Extract, TensorSpec
from graphdsl.syntax.names import Name

SHAPE = [1, 3, 4, 4]
SOURCE = SourceFile("t.gds", "extract inputs x1 outputs Y\n")


def isolate_model():
    """Y = x0 + (a * x1 + b), the model of graphsurgeon's example 03."""
    ones = np.ones(SHAPE, np.float32)
    return make_model([node("Mul", ["a", "x1"], ["mul_out"]), node("Add", ["mul_out", "b"], ["add_out"]),
                       node("Add", ["x0", "add_out"], ["Y"])],
                      [value("x0", SHAPE), value("x1", SHAPE)], [value("Y", SHAPE)], {"a": ones * 2, "b": ones})


def test_extract_keeps_only_the_subgraph_and_types_it():
    graph, result, _ = apply(Extract([TensorSpec("x1")], [TensorSpec("add_out")]), isolate_model())
    assert op_types(graph) == ["Mul", "Add"]
    assert io_names(graph) == (["x1"], ["add_out"])
    assert result.changed and result.counts == {"nodes_removed": 1}
    out = graph.outputs[0]
    assert out.dtype == np.float32 and list(out.shape) == SHAPE  # from shape inference
    x1 = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    got = run_ort(export(graph), {"x1": x1})["add_out"]
    np.testing.assert_allclose(got, 2 * x1 + 1, rtol=1e-6)


def test_plain_names_and_spec_types():
    spec = TensorSpec("x1", ["N", 3, 4, None], "float32")
    graph, _, _ = apply(Extract([spec], ["add_out"]), isolate_model())
    model = export(graph)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and dims[1].dim_value == 3 and not dims[3].HasField("dim_value")


def test_output_needing_a_tensor_outside_the_inputs_names_it():
    span = Span(SOURCE, 1, 27, 1, 28)
    with pytest.raises(ModelError) as e:
        apply(Extract(["x1"], [TensorSpec(Name("Y", span))]), isolate_model())
    d = e.value.diagnostics[0]
    assert d.code == "GDS310" and "`x0`" in d.message and "`Y`" in d.message and d.span == span
    assert "add `x0` to the inputs" in d.hints[0]


def test_graph_is_untouched_when_refused():
    graph, _, _ = apply(Extract([], []), isolate_model())  # nothing kept is allowed and empties the graph
    assert graph.nodes == []
    model = isolate_model()
    import onnx_graphsurgeon as gs
    graph = gs.import_onnx(model)
    with pytest.raises(ModelError):
        apply(Extract(["x1"], ["Y"]), graph)
    assert io_names(graph) == (["x0", "x1"], ["Y"]) and len(graph.nodes) == 3


def test_unknown_name_suggests_the_close_one():
    with pytest.raises(ModelError) as e:
        apply(Extract(["x1"], ["add_ot"]), isolate_model())
    assert codes(e.value) == ["GDS104"] and "did you mean `add_out`" in e.value.diagnostics[0].label


def test_unused_input_is_a_warning():
    _, _, ctx = apply(Extract(["x0", "x1"], ["add_out"]), isolate_model())
    assert [d.code for d in ctx.diagnostics] == ["GDS325"] and "x0" in ctx.diagnostics[0].message


def test_untyped_tensor_without_spec_is_an_error():
    # a custom op's output: neither the model nor shape inference knows its type
    from onnx import helper

    model = make_model([node("Foo", ["x"], ["t"], domain="custom"), node("Relu", ["t"], ["y"])],
                       [value("x", [2])], [value("y", [2])], extra_opsets=[helper.make_opsetid("custom", 1)])
    with pytest.raises(ModelError) as e:
        apply(Extract(["t"], ["y"]), model)
    assert codes(e.value) == ["GDS324"] and "`t`" in e.value.diagnostics[0].message
    graph, _, _ = apply(Extract([TensorSpec("t", [2], "float32")], ["y"]), model)
    assert op_types(graph) == ["Relu"]


def test_static_check_reports_names_then_turns_uncertain():
    scope = static_check(Extract(["x1", "nope"], ["add_out"]), isolate_model())
    assert [d.code for d in scope.diagnostics] == ["GDS104"] and scope.uncertain


def if_model():
    """y = If(cond) { then: Add(t, outer) } else { Neg(t) }, with t = Relu(x): the branches read outer tensors."""
    from onnx import TensorProto, helper

    then_branch = helper.make_graph([helper.make_node("Add", ["t", "outer"], ["r1"])], "then", [],
                                    [value("r1", [2])])
    else_branch = helper.make_graph([helper.make_node("Neg", ["t"], ["r2"])], "else", [], [value("r2", [2])])
    return make_model([node("Relu", ["x"], ["t"]), node("Abs", ["z"], ["outer"]),
                       node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch)],
                      [value("x", [2]), value("z", [2]), value("cond", [], TensorProto.BOOL)], [value("y", [2])])


def test_tensors_read_inside_subgraphs_count():
    with pytest.raises(ModelError) as e:
        apply(Extract(["t", "cond"], ["y"]), if_model())
    assert "`z`" in e.value.diagnostics[0].message  # read by the then-branch through `outer`
    graph, _, _ = apply(Extract(["t", "outer", "cond"], ["y"]), if_model())
    assert op_types(graph) == ["If"]
    t = np.array([1, -2], np.float32)
    feeds = {"t": t, "outer": np.ones(2, np.float32), "cond": np.array(True)}
    np.testing.assert_allclose(run_ort(export(graph), feeds)["y"], t + 1)
