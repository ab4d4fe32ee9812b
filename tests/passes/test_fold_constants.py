"""FoldConstants: what depends only on constants, evaluated by ONNX Runtime, then cleaned up."""

import numpy as np
import onnx_graphsurgeon as gs
from helpers import (F, apply, assert_numerically_equal, export, make_model, node, op_types, static_check,
                     value)
from onnx import TensorProto, helper

from graphdsl.passes.fold_constants import FoldConstants

INT64 = TensorProto.INT64


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
    graph, _, _ = apply(FoldConstants(fold_shapes=False), shape_model())
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
    graph = gs.import_onnx(model)
    graph.nodes.reverse()
    graph, _, _ = apply(FoldConstants(), graph)
    assert op_types(graph) == ["Reshape", "Mul"]


def test_check_turns_scope_uncertain():
    assert static_check(FoldConstants(), shape_model()).uncertain




def test_random_ops_are_not_folded():
    """A folded sample would be one fixed draw; graphsurgeon folds them, graphdsl does not."""
    model = make_model([node("RandomNormal", [], ["r"], shape=[3], seed=1.0), node("Add", ["x", "r"], ["s"]),
                        node("RandomUniformLike", ["c"], ["u"]), node("Add", ["s", "u"], ["y"])],
                       [value("x", [3])], [value("y", [3])], {"c": np.ones(3, np.float32)})
    graph, result, _ = apply(FoldConstants(), model)
    assert op_types(graph) == ["RandomNormal", "Add", "RandomUniformLike", "Add"] and not result.changed


def test_constant_node_attributes_keep_onnx_types():
    model = make_model([helper.make_node("Constant", [], ["half"], value_float=0.5),
                        helper.make_node("Constant", [], ["dims"], value_ints=[3, 1]),
                        node("Reshape", ["x", "dims"], ["r"]), node("Mul", ["r", "half"], ["y"])],
                       [value("x", [3])], [value("y", [3, 1])])
    graph, result, _ = apply(FoldConstants(), model)
    assert op_types(graph) == ["Reshape", "Mul"] and result.counts == {"folded": 2}
    assert graph.nodes[1].inputs[1].values.dtype == np.float32  # graphsurgeon makes it float64
    assert graph.nodes[0].inputs[1].values.dtype == np.int64
    assert_numerically_equal(model, export(graph))


def shape_ops_model(x_shape):
    return make_model([node("Shape", ["x"], ["tail"], start=1), node("Size", ["x"], ["n"]),
                       node("Shape", ["x"], ["s"]), node("Gather", ["s", "one"], ["d1"], axis=0),
                       node("Slice", ["s", "one1", "three"], ["d12"]),
                       node("Cast", ["tail"], ["tail_f"], to=F), node("Cast", ["n"], ["n_f"], to=F),
                       node("Cast", ["d1"], ["d1_f"], to=F), node("Cast", ["d12"], ["d12_f"], to=F),
                       node("Concat", ["tail_f", "d12_f"], ["c"], axis=0), node("Add", ["c", "n_f"], ["c2"]),
                       node("Mul", ["c2", "d1_f"], ["y"])],
                      [value("x", x_shape)], [value("y", [4])],
                      {"one": np.array(1, np.int64), "one1": np.array([1], np.int64),
                       "three": np.array([3], np.int64)})


def test_shape_size_gather_slice_of_static_dims():
    model = shape_ops_model([2, 3, 4])
    graph, _, _ = apply(FoldConstants(), model)
    assert op_types(graph) == [] and np.array_equal(graph.outputs[0].values, [81, 84, 81, 84])
    # (Shape(x, start=1) ++ Slice(Shape(x), 1, 3) + Size(x)) * Gather(Shape(x), 1): ([3,4,3,4] + 24) * 3
    graph, _, _ = apply(FoldConstants(), shape_ops_model(["N", 3, 4]))
    remaining = op_types(graph)  # what depends on the dynamic N stays; dims 1 and 2 fold
    assert "Gather" not in remaining and "Slice" not in remaining and "Size" in remaining
    feeds = {"x": np.zeros((5, 3, 4), np.float32)}
    assert_numerically_equal(shape_ops_model(["N", 3, 4]), export(graph), feeds)


def test_fold_shapes_off_leaves_dynamic_shape_arithmetic():
    graph, _, _ = apply(FoldConstants(fold_shapes=False), shape_ops_model([2, 3, 4]))
    assert {"Shape", "Size", "Gather", "Slice"} <= set(op_types(graph))


def test_partitioning_names_the_skipped_node_and_folds_everything_else():
    chain = [node("Sqrt", ["four"], ["v0"])]
    chain += [node("Add", [f"v{i}", "four"], [f"v{i + 1}"]) for i in range(40)]
    model = make_model(chain + [node("Foo", ["v20"], ["bad"], name="the_foo", domain="custom"),
                                node("Neg", ["bad"], ["bad2"]),
                                node("Add", ["x", "bad2"], ["t"]), node("Mul", ["t", "v40"], ["y"])],
                       [value("x", [1])], [value("y", [1])], {"four": np.array([4], np.float32)},
                       extra_opsets=[helper.make_opsetid("custom", 1)])
    graph, _, ctx = apply(FoldConstants(partitioning=True), model)
    assert op_types(graph) == ["Foo", "Neg", "Add", "Mul"]
    assert graph.nodes[0].inputs[0].values.tolist() == [82.0]  # Foo reads a constant now
    assert graph.nodes[-1].inputs[1].values.tolist() == [162.0]
    messages = [d.message for d in ctx.diagnostics]
    assert len(messages) == 2 and all(d.code == "GDS326" for d in ctx.diagnostics)
    assert messages[0].startswith("constant folding skipped node 'the_foo' (custom:Foo): ")
    assert messages[1] == "constant folding skipped 1 more nodes that depend on the skipped ones"


def test_size_threshold_known_from_the_declared_shape_skips_evaluation():
    model = make_model([node("Tile", ["c", "reps"], ["big"]), node("Add", ["x", "big"], ["y"])],
                       [value("x", [1000])], [value("y", [1000])],
                       {"c": np.ones(10, np.float32), "reps": np.array([100])})
    model.graph.value_info.append(value("big", [1000]))
    graph, result, ctx = apply(FoldConstants(size_threshold=1024, partitioning=True), model)
    assert op_types(graph) == ["Tile", "Add"] and not result.changed and not ctx.diagnostics


def test_a_node_folded_in_part_keeps_its_other_outputs_in_place():
    """TopK of a constant: values (1200 bytes) fold, indices (2400 bytes) are over the threshold."""
    model = make_model([node("TopK", ["c", "k"], ["vals", "idx"], axis=0), node("Add", ["x", "vals"], ["y"]),
                        node("Add", ["i", "idx"], ["j"])],
                       [value("x", [300]), value("i", [300], TensorProto.INT64)],
                       [value("y", [300]), value("j", [300], TensorProto.INT64)],
                       {"c": np.arange(300, dtype=np.float32), "k": np.array([300])})
    graph, _, _ = apply(FoldConstants(size_threshold=2000), model)
    topk = graph.nodes[0]
    assert topk.op == "TopK" and [t.name for t in topk.outputs] == ["vals__unused", "idx"]
    assert isinstance(graph.nodes[1].inputs[1], gs.Constant)
    assert_numerically_equal(model, export(graph))


def test_large_results_are_reported():
    model = make_model([node("Tile", ["c", "reps"], ["big"]), node("Add", ["x", "big"], ["y"])],
                       [value("x", [300_000])], [value("y", [300_000])],
                       {"c": np.ones(10, np.float32), "reps": np.array([30_000])})
    _, result, ctx = apply(FoldConstants(), model)
    assert result.counts == {"folded": 1}
    assert [d.message for d in ctx.diagnostics] == ["constant folding made large tensors: big (1 MiB)"]


def test_shape_cast_elision_keeps_values():
    """Cast(int->float) -> Div(2.0) -> Cast(float->int) becomes an integer Div (graphsurgeon's elision);
    a Mul by 0.5 is not elided (graphsurgeon's would compute x * 0 on the ints)."""
    model = make_model([node("Shape", ["x"], ["s"]), node("Cast", ["s"], ["sf"], to=F),
                        node("Div", ["sf", "two"], ["half"]), node("Cast", ["half"], ["h"], to=INT64),
                        node("Mul", ["sf", "point5"], ["m"]), node("Cast", ["m"], ["mi"], to=INT64),
                        node("Slice", ["h", "zero", "one"], ["h0"]),
                        node("Concat", ["h0", "eight"], ["target"], axis=0),
                        node("Reshape", ["x", "target"], ["y"])],
                       [value("x", ["N", 4])], [value("y", ["M", 8]), value("mi", [2], TensorProto.INT64)],
                       {"two": np.array([2.0], np.float32), "point5": np.array([0.5], np.float32),
                        "zero": np.array([0]), "one": np.array([1]), "eight": np.array([8])})
    model.graph.value_info.append(value("s", [2], TensorProto.INT64))  # the elision needs the int type
    graph, _, _ = apply(FoldConstants(), model)
    div = next(n for n in graph.nodes if n.op == "Div")
    assert div.inputs[0].name == "s" and div.inputs[1].values.dtype == np.int64 and div.outputs[0].name == "h"
    assert "Mul" in op_types(graph)
    feeds = {"x": np.arange(24, dtype=np.float32).reshape(6, 4)}
    assert_numerically_equal(model, export(graph), feeds)


def nested_ifs(depth: int) -> gs.Graph:
    """`depth` Ifs, each in the then-branch of the one above; the innermost computes x + Sqrt(c)."""
    x, c = gs.Variable("x", np.float32, [1]), gs.Constant("c", np.array([4.0], np.float32))
    cond = gs.Variable("cond", np.bool_, [])
    out = gs.Variable(f"y{depth}", np.float32, [1])
    inner = gs.Graph(nodes=[gs.Node("Sqrt", inputs=[c], outputs=[gs.Variable("root", np.float32, [1])])],
                     name="innermost")
    inner.nodes.append(gs.Node("Add", inputs=[x, inner.nodes[0].outputs[0]], outputs=[out]))
    inner.outputs = [out]
    for level in reversed(range(depth)):
        result = gs.Variable(f"y{level}", np.float32, [1])
        passthrough = gs.Node("Identity", inputs=[x], outputs=[gs.Variable(f"e{level}", np.float32, [1])])
        other = gs.Graph(nodes=[passthrough], name=f"else{level}")
        other.outputs = other.nodes[0].outputs
        holder = gs.Node("If", name=f"if{level}", inputs=[cond], outputs=[result],
                         attrs={"then_branch": inner, "else_branch": other})
        inner = gs.Graph(outputs=[result], name=f"then{level}")
        inner.nodes = [holder]  # set after construction: Graph() walks every nested graph (quadratic here)
    return gs.Graph(nodes=inner.nodes, inputs=[x, cond], outputs=inner.outputs, opset=17)


def test_deeply_nested_subgraphs_fold_without_recursion():
    depth = 1500  # beyond Python's recursion limit
    graph = nested_ifs(depth)
    _, _, ctx = apply(FoldConstants(), graph)
    g = graph
    for _ in range(depth):
        g = g.nodes[0].attrs["then_branch"]
    assert [n.op for n in g.nodes] == ["Add"] and isinstance(g.nodes[0].inputs[1], gs.Constant)
    assert not ctx.diagnostics


def test_long_unsorted_chain_folds_in_one_evaluation():
    n = 3000  # deeper than graphsurgeon's recursive toposort can go
    model = make_model([node("Add", [f"v{i}", "one"], [f"v{i + 1}"]) for i in range(n)]
                       + [node("Mul", ["x", f"v{n}"], ["y"])],
                       [value("x", [1])], [value("y", [1])],
                       {"v0": np.zeros(1, np.float32), "one": np.ones(1, np.float32)})
    graph = gs.import_onnx(model)
    graph.nodes.reverse()
    graph, result, _ = apply(FoldConstants(), graph)
    assert op_types(graph) == ["Mul"] and result.counts == {"folded": n}
    assert graph.nodes[0].inputs[1].values.tolist() == [float(n)]


def test_failure_inside_a_subgraph_names_the_graph():
    branch = helper.make_graph([helper.make_node("Foo", ["a"], ["b"], domain="custom"),
                                helper.make_node("Add", ["x", "b"], ["out"])],
                               "then", [], [value("out", [2])])
    other = helper.make_graph([helper.make_node("Identity", ["x"], ["out2"])],
                              "else", [], [value("out2", [2])])
    model = make_model([helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=other)],
                       [value("x", [2]), value("cond", [], TensorProto.BOOL)], [value("y", [2])],
                       {"a": np.ones(2, np.float32)}, extra_opsets=[helper.make_opsetid("custom", 1)])
    _, _, ctx = apply(FoldConstants(), model)
    assert [d.code for d in ctx.diagnostics] == ["GDS326"]
    assert "in graph 'then'" in ctx.diagnostics[0].message and "custom:Foo" in ctx.diagnostics[0].message


def constant_if_model():
    then = helper.make_graph([helper.make_node("Neg", ["x"], ["n"])], "then", [], [value("n", [2])])
    other = helper.make_graph([helper.make_node("Abs", ["x"], ["a"])], "else", [], [value("a", [2])])
    return make_model([node("Greater", ["one", "zero"], ["cond"]),
                       helper.make_node("If", ["cond"], ["y"], name="if", then_branch=then,
                                        else_branch=other)],
                      [value("x", [2])], [value("y", [2])],
                      {"one": np.array(1, np.float32), "zero": np.array(0, np.float32)})


def test_flatten_subgraphs_inlines_the_branch_taken():
    model = constant_if_model()
    graph, result, _ = apply(FoldConstants(), model)
    assert op_types(graph) == ["Neg"] and result.counts == {"folded": 1}  # Greater and If go, Neg comes in
    assert_numerically_equal(model, export(graph))
    graph, _, _ = apply(FoldConstants(flatten_subgraphs=False), model)
    assert op_types(graph) == ["If"] and isinstance(graph.nodes[0].inputs[0], gs.Constant)


def test_inlined_if_outputs_read_by_range_become_scalars():
    """ONNX's AffineGrid function body: Split pieces of shape [1] leave an If and feed Range, which needs
    scalars; inference let it pass only while the If hid their shapes. Inlined, they are reshaped."""
    then = helper.make_graph([node("Split", ["size"], ["n", "w"], num_outputs=2),
                              node("Identity", ["one_1d"], ["d"])], "then", [], [
                                  helper.make_empty_tensor_value_info(t) for t in ("n", "w", "d")])
    other = helper.make_graph([node("Split", ["size"], ["n2", "w2", "d2"], num_outputs=3)], "else", [], [
        helper.make_empty_tensor_value_info(t) for t in ("n2", "w2", "d2")])
    model = make_model([node("Size", ["size"], ["count"]), node("Equal", ["count", "two"], ["is_2d"]),
                        helper.make_node("If", ["is_2d"], ["N", "W", "D"], name="if", then_branch=then,
                                         else_branch=other),
                        node("Range", ["zero", "W", "step"], ["steps"]),
                        node("Range", ["zero", "D", "step"], ["depth"]), node("Add", ["N", "W"], ["nw"])],
                       [value("size", [2], INT64)],
                       [value("steps", [None], INT64), value("depth", [None], INT64), value("nw", [1], INT64)],
                       {"two": np.array(2), "zero": np.array(0), "step": np.array(1), "one_1d": np.array([1])},
                       opset=18)
    graph, _, _ = apply(FoldConstants(), model)
    assert "If" not in op_types(graph) and op_types(graph).count("Reshape") == 1
    limits = [n.inputs[1] for n in graph.nodes if n.op == "Range"]
    assert [t.name for t in limits] == ["W_scalar", "D_scalar"] and limits[1].values.shape == ()
    assert graph.nodes[-1].inputs[1].name == "W"  # the Add still reads the [1]-shaped piece
    feeds = {"size": np.array([3, 5])}
    assert_numerically_equal(model, export(graph), feeds=feeds)
