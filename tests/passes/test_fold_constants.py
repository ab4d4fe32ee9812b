"""FoldConstants: graphsurgeon's folding (ONNX Runtime) then cleanup; counts and warnings honest."""

import numpy as np
from helpers import apply, assert_numerically_equal, export, make_model, node, op_types, static_check, value
from onnx import helper

from graphdsl.passes.fold_constants import FoldConstants


def shape_model():
    """y = Reshape(x, Concat(Shape(x)[0:1], [12])) * Sqrt(4): a constant scale and a foldable shape."""
    return make_model([
        node("Shape", ["x"], ["s"]), node("Slice", ["s", "zero", "one"], ["s0"]),
        node("Concat", ["s0", "twelve"], ["target"], axis=0), node("Reshape", ["x", "target"], ["flat"]),
        node("Sqrt", ["four"], ["two"]), node("Mul", ["flat", "two"], ["y"]),
        node("Neg", ["x"], ["dead"]),
    ], [value("x", [2, 3, 4])], [value("y", [2, 12])],
        {"zero": np.array([0]), "one": np.array([1]), "twelve": np.array([12]), "four": np.array(4, np.float32)})


def test_folds_constants_and_static_shapes():
    model = shape_model()
    graph, result, ctx = apply(FoldConstants(), model)
    assert op_types(graph) == ["Reshape", "Mul"]
    assert result.counts == {"folded": 4, "dead_removed": 1} and not ctx.diagnostics
    assert np.array_equal(graph.nodes[0].inputs[1].values, [2, 12])
    assert_numerically_equal(model, export(graph))


def test_fold_shapes_off_keeps_shape_computation():
    graph, result, _ = apply(FoldConstants(fold_shapes=False), shape_model())
    assert "Shape" in op_types(graph) and "Sqrt" not in op_types(graph)


def test_size_threshold_keeps_large_constants_computed():
    model = make_model([node("Tile", ["c", "reps"], ["big"]), node("Add", ["x", "big"], ["y"])],
                       [value("x", [1000])], [value("y", [1000])],
                       {"c": np.ones(10, np.float32), "reps": np.array([100])})
    graph, result, _ = apply(FoldConstants(size_threshold=1024), model)
    assert op_types(graph) == ["Tile", "Add"] and not result.changed
    graph, result, _ = apply(FoldConstants(), model)
    assert op_types(graph) == ["Add"] and result.counts == {"folded": 1}


def test_inference_failure_is_a_warning_not_a_crash():
    model = make_model([node("Foo", ["a"], ["b"], domain="custom"), node("Add", ["x", "b"], ["y"])],
                       [value("x", [2])], [value("y", [2])], {"a": np.ones(2, np.float32)},
                       extra_opsets=[helper.make_opsetid("custom", 1)])
    graph, result, ctx = apply(FoldConstants(), model)
    assert not result.changed and op_types(graph) == ["Foo", "Add"]
    assert [d.code for d in ctx.diagnostics] == ["GDS326"]
    assert "custom:Foo" in ctx.diagnostics[0].message and "partitioning" in ctx.diagnostics[0].hints[0]


def test_partitioning_folds_around_the_failure():
    model = make_model([node("Foo", ["a"], ["b"], domain="custom"), node("Add", ["x", "b"], ["t"]),
                        node("Sqrt", ["four"], ["two"]), node("Mul", ["t", "two"], ["y"])],
                       [value("x", [2])], [value("y", [2])],
                       {"a": np.ones(2, np.float32), "four": np.array(4, np.float32)},
                       extra_opsets=[helper.make_opsetid("custom", 1)])
    graph, result, _ = apply(FoldConstants(partitioning=True), model)
    assert op_types(graph) == ["Foo", "Add", "Mul"] and result.counts == {"folded": 1}


def test_unsorted_graph_is_sorted_first():
    model = shape_model()
    import onnx_graphsurgeon as gs

    graph = gs.import_onnx(model)
    graph.nodes.reverse()
    graph, _, _ = apply(FoldConstants(), graph)
    assert op_types(graph) == ["Reshape", "Mul"]


def test_check_turns_scope_uncertain():
    assert static_check(FoldConstants(), shape_model()).uncertain


