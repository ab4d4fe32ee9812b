"""DynamicBatch: dim 0 of inputs/outputs made dynamic and batch-leading Reshape targets fixed (gs example 10)."""

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from helpers import apply, export, make_model, node, run_ort, value

from graphdsl.passes.dynamic_batch import DynamicBatch


def conv_model(target=(1, 144)):
    """images[1,3,8,8] -> Conv -> [1,4,6,6] -> Reshape(target) -> MatMul -> [1,5], shapes inferred."""
    rng = np.random.default_rng(0)
    model = make_model([node("Conv", ["images", "w"], ["conv_out"]), node("Reshape", ["conv_out", "target"], ["flat"]),
                        node("MatMul", ["flat", "fc"], ["logits"])],
                       [value("images", [1, 3, 8, 8])], [value("logits", [1, 5])],
                       {"w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
                        "target": np.array(target, np.int64), "fc": rng.standard_normal((144, 5)).astype(np.float32)})
    return onnx.shape_inference.infer_shapes(model)


def batched_equals_per_sample(before, after, batch=3):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, 3, 8, 8)).astype(np.float32)
    got = run_ort(after, {"images": x})["logits"]
    expected = np.concatenate([run_ort(before, {"images": x[i:i + 1]})["logits"] for i in range(batch)])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_makes_batch_dynamic_and_fixes_reshape():
    before = conv_model()
    graph, result, ctx = apply(DynamicBatch("N"), before)
    assert graph.inputs[0].shape == ["N", 3, 8, 8] and graph.outputs[0].shape == ["N", 5]
    assert list(graph.nodes[1].inputs[1].values) == [-1, 144]
    assert result.counts == {"inputs": 1, "outputs": 1, "reshapes": 1, "shapes_dropped": 2}
    assert not ctx.diagnostics
    after = export(graph)
    batched_equals_per_sample(before, after)


def test_target_with_minus_one_gets_zero():
    before = conv_model(target=(1, -1))
    graph, _, _ = apply(DynamicBatch(), before)
    assert list(graph.nodes[1].inputs[1].values) == [0, -1] and graph.inputs[0].shape[0] == "batch"
    batched_equals_per_sample(before, export(graph))


def test_fixed_batch():
    graph, _, _ = apply(DynamicBatch(4), conv_model())
    assert graph.inputs[0].shape == [4, 3, 8, 8] and list(graph.nodes[1].inputs[1].values) == [-1, 144]
    export(graph)


def test_shared_target_is_copied_and_weights_left_alone():
    before = conv_model()
    graph = gs.import_onnx(before)
    target = graph.nodes[1].inputs[1]
    weight = gs.Constant("weight_1d", np.ones(144, np.float32))
    reshaped = gs.Variable("weight_2d", np.float32, [1, 144])
    graph.nodes.append(gs.Node("Reshape", "weight_reshape", inputs=[weight, target], outputs=[reshaped]))
    graph.nodes.append(gs.Node("Add", "use", inputs=[graph.nodes[1].outputs[0], reshaped],
                               outputs=[gs.Variable("flat2", np.float32)]))
    graph.nodes[2].inputs[0] = graph.nodes[-1].outputs[0]
    graph.toposort()
    reference = export(graph)
    graph, result, _ = apply(DynamicBatch("N"), gs.import_onnx(reference))
    by_name = {n.name: n for n in graph.nodes}
    assert list(by_name["weight_reshape"].inputs[1].values) == [1, 144]
    assert list(by_name["flat"].inputs[1].values) == [-1, 144]
    assert by_name["flat"].inputs[1].name == "target_dynamic_batch"
    batched_equals_per_sample(reference, export(graph))


def test_reshape_of_a_non_batch_tensor_warns_and_stays():
    model = make_model([node("Transpose", ["x"], ["t"], perm=[1, 0, 2]), node("Reshape", ["t", "target"], ["y"])],
                       [value("x", [1, 4, 36])], [value("y", [1, 144])], {"target": np.array([1, 144], np.int64)})
    graph, result, ctx = apply(DynamicBatch(), onnx.shape_inference.infer_shapes(model))
    assert list(graph.nodes[1].inputs[1].values) == [1, 144] and "reshapes" not in result.counts
    assert [d.code for d in ctx.diagnostics] == ["GDS323"] and "dim 0 = 4" in ctx.diagnostics[0].message


def test_computed_target_asks_for_folding_first():
    model = make_model([node("Concat", ["one", "rest"], ["target"], axis=0), node("Reshape", ["x", "target"], ["y"])],
                       [value("x", [1, 2, 3])], [value("y", [1, 6])],
                       {"one": np.array([1], np.int64), "rest": np.array([6], np.int64)})
    _, result, ctx = apply(DynamicBatch(), model)
    assert "reshapes" not in result.counts
    assert [d.code for d in ctx.diagnostics] == ["GDS323"] and "fold constants" in ctx.diagnostics[0].hints[0]


def test_renames_an_existing_symbolic_batch():
    model = make_model([node("Relu", ["x"], ["y"])], [value("x", ["b", 3])], [value("y", ["b", 3]), ])
    graph, result, _ = apply(DynamicBatch("N"), model)
    assert graph.inputs[0].shape == ["N", 3] and graph.outputs[0].shape == ["N", 3]


def test_inputs_already_dynamic_warns_about_batch_one_targets():
    graph = gs.import_onnx(conv_model())
    graph.inputs[0].shape = ["N", 3, 8, 8]
    graph, result, ctx = apply(DynamicBatch("B"), graph)
    assert list(graph.nodes[1].inputs[1].values) == [1, 144] and "reshapes" not in result.counts
    assert [d.code for d in ctx.diagnostics] == ["GDS323"] and "no static batch" in ctx.diagnostics[0].message
