"""std/cleanup.gds, rule by rule: each on a small model, checked with onnx.checker (full), strict shape
inference and ONNX Runtime before/after (stdkit.apply_std); and the near misses each must leave alone."""

import numpy as np
import pytest
from onnx import TensorProto
from stdkit import apply_std, attr, const, model, node, ops

D = TensorProto.DOUBLE
H = TensorProto.FLOAT16
I8, I32, I64 = TensorProto.INT8, TensorProto.INT32, TensorProto.INT64


# --- no-ops ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op, constant, rule", [("Add", 0.0, "add_zero"), ("Sub", 0.0, "sub_zero"),
                                                ("Mul", 1.0, "mul_one"), ("Div", 1.0, "div_one")])
@pytest.mark.parametrize("spelling", ["initializer", "constant_node", "rank_1"])
def test_arithmetic_identities(op, constant, rule, spelling):
    if spelling == "constant_node":
        nodes, inits = [const("k", constant)], {}
    else:
        nodes, inits = [], {"k": np.full([1] if spelling == "rank_1" else [], constant, np.float32)}
    nodes += [node(op, ["x", "k"], "a"), node("Relu", ["a"], "y")]
    after, outcome = apply_std("cleanup", model(nodes, {"x": [2, 3]}, {"y": [2, 3]}, inits))
    assert ops(after) == ["Relu"] and outcome.counts == {rule: 1}


def test_zero_first_is_matched_too():
    nodes = [node("Add", ["zero", "x"], "a"), node("Relu", ["a"], "y")]
    after, _ = apply_std("cleanup", model(nodes, {"x": [2, 3]}, {"y": [2, 3]}, {"zero": np.float32(0)}))
    assert ops(after) == ["Relu"]


def test_berts_epsilon_is_not_zero():
    nodes = [node("Add", ["x", "eps"], "a"), node("Relu", ["a"], "y")]
    after, outcome = apply_std("cleanup",
                               model(nodes, {"x": [2, 3]}, {"y": [2, 3]}, {"eps": np.float32(1e-12)}))
    assert ops(after) == ["Add", "Relu"] and not outcome.counts


@pytest.mark.parametrize("k, x_shape, y_shape", [
    (np.zeros([1, 1, 3], np.float32), [2, 3], [1, 2, 3]),  # the zero widens the rank
    (np.zeros([2, 3], np.float32), [2, 3], [2, 3]),  # several zeros: not a literal 0 (the rule takes scalars)
    (np.zeros([3], np.float32), [1], [3]),  # broadcasts x
])
def test_zero_that_changes_the_shape_or_is_not_scalar_stays(k, x_shape, y_shape):
    after, outcome = apply_std("cleanup",
                               model([node("Add", ["x", "k"], "y")], {"x": x_shape}, {"y": y_shape},
                                                {"k": k}))
    assert ops(after) == ["Add"] and not outcome.counts


def test_integer_zero():
    nodes = [node("Add", ["x", "k"], "a"), node("Neg", ["a"], "y")]
    after, _ = apply_std("cleanup", model(nodes, {"x": ([4], I32)}, {"y": ([4], I32)}, {"k": np.int32(0)}))
    assert ops(after) == ["Neg"]


def test_identity_chain_and_graph_output_names():
    nodes = [node("Identity", ["x"], "i1"), node("Relu", ["i1"], "r"), node("Identity", ["r"], "i2"),
             node("Identity", ["i2"], "y")]
    after, outcome = apply_std("cleanup", model(nodes, {"x": [2, 3]}, {"y": [2, 3]}))
    assert ops(after) == ["Relu"] and list(after.graph.node[0].output) == ["y"]
    assert outcome.counts == {"identity": 3}


def test_identity_from_input_to_output_stays():
    after, outcome = apply_std("cleanup", model([node("Identity", ["x"], "y")], {"x": [2]}, {"y": [2]}))
    assert ops(after) == ["Identity"] and outcome.refused == {"identity": 1}


@pytest.mark.parametrize("inputs, rule", [(["x"], "dropout"), (["x", "ratio"], "dropout_ratio"),
                                          (["x", "ratio", "training"], "dropout_inference")])
def test_dropout_at_inference(inputs, rule):
    inits = {"ratio": np.float32(0.3), "training": np.bool_(False)}
    nodes = [node("Dropout", inputs, "d"), node("Relu", ["d"], "y")]
    after, outcome = apply_std("cleanup", model(nodes, {"x": [2, 3]}, {"y": [2, 3]},
                                                {k: v for k, v in inits.items() if k in inputs}))
    assert ops(after) == ["Relu"] and outcome.counts == {rule: 1}


def test_dropout_in_training_mode_stays():
    nodes = [node("Dropout", ["x", "ratio", "training"], "d"), node("Relu", ["d"], "y")]
    inits = {"ratio": np.float32(0.0), "training": np.bool_(True)}  # ratio 0: ORT's output is still exact
    after, outcome = apply_std("cleanup", model(nodes, {"x": [2, 3]}, {"y": [2, 3]}, inits))
    assert ops(after) == ["Dropout", "Relu"] and not outcome.counts


def test_dropout_whose_mask_is_read_keeps_the_mask():
    nodes = [node("Dropout", ["x"], ["d", "mask"]), node("Relu", ["d"], "y"), node("Not", ["mask"], "z")]
    m = model(nodes, {"x": [2, 3]}, {"y": [2, 3], "z": ([2, 3], TensorProto.BOOL)})
    after, _ = apply_std("cleanup", m)
    assert ops(after) == ["Dropout", "Relu", "Not"] and after.graph.node[1].input == ["x"]


def test_cast_to_the_same_type():
    nodes = [node("Cast", ["x"], "c", to=TensorProto.FLOAT), node("CastLike", ["c", "x"], "cl"),
             node("Relu", ["cl"], "y")]
    after, outcome = apply_std("cleanup", model(nodes, {"x": [2, 3]}, {"y": [2, 3]}))
    assert ops(after) == ["Relu"] and outcome.counts == {"cast_same": 1, "castlike_same": 1}


# --- Cast chains --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("x_type, middle, out_type, left", [
    (TensorProto.FLOAT, D, TensorProto.FLOAT, ["Abs"]),  # exact round trip: no Cast left
    (H, TensorProto.FLOAT, H, ["Abs"]),
    (I8, I32, I8, ["Abs"]),
    (I8, TensorProto.FLOAT, I64, ["Cast", "Abs"]),  # exact first step: one Cast
    (TensorProto.FLOAT, D, H, ["Cast", "Abs"]),
    (TensorProto.UINT8, TensorProto.FLOAT, I32, ["Cast", "Abs"]),
])
def test_cast_chains_through_an_exact_type(x_type, middle, out_type, left):
    nodes = [node("Cast", ["x"], "c1", to=middle), node("Cast", ["c1"], "c2", to=out_type),
             node("Abs", ["c2"], "y")]
    after, outcome = apply_std("cleanup", model(nodes, {"x": ([2, 3], x_type)}, {"y": ([2, 3], out_type)}))
    assert ops(after) == left and outcome.counts["cast_chain"] == 1
    if len(left) == 2:
        assert list(after.graph.node[0].input) == ["x"] and attr(after, "Cast", "to") == out_type


def test_cast_chain_from_bool():
    nodes = [node("Cast", ["x"], "c1", to=TensorProto.FLOAT), node("Cast", ["c1"], "y", to=I32)]
    m = model(nodes, {"x": ([2, 3], TensorProto.BOOL)}, {"y": ([2, 3], I32)})
    after, _ = apply_std("cleanup", m)
    assert ops(after) == ["Cast"] and attr(after, "Cast", "to") == I32


@pytest.mark.parametrize("x_type, middle",
                         [(TensorProto.FLOAT, H), (TensorProto.FLOAT, I32), (I32, TensorProto.FLOAT),
                                            (I64, D), (D, TensorProto.FLOAT)])
def test_narrowing_cast_chains_stay(x_type, middle):
    nodes = [node("Cast", ["x"], "c1", to=middle), node("Cast", ["c1"], "y", to=x_type)]
    after, outcome = apply_std("cleanup", model(nodes, {"x": ([2, 3], x_type)}, {"y": ([2, 3], x_type)}))
    assert ops(after) == ["Cast", "Cast"] and not outcome.counts


def test_cast_chain_to_string_stays():
    nodes = [node("Cast", ["x"], "c1", to=D), node("Cast", ["c1"], "y", to=TensorProto.STRING)]
    m = model(nodes, {"x": [2]}, {"y": ([2], TensorProto.STRING)})
    after, _ = apply_std("cleanup", m)
    assert ops(after) == ["Cast", "Cast"]


# --- Reshape, Transpose, Squeeze/Unsqueeze ------------------------------------------------------------------


def test_reshape_chain():
    nodes = [node("Reshape", ["x", "s1"], "r1"), node("Reshape", ["r1", "s2"], "r2"),
             node("Relu", ["r2"], "y")]
    inits = {"s1": np.array([6, -1], np.int64), "s2": np.array([3, -1], np.int64)}
    after, outcome = apply_std("cleanup", model(nodes, {"x": [2, 6]}, {"y": [3, 4]}, inits))
    assert ops(after) == ["Reshape", "Relu"] and outcome.counts == {"reshape_chain": 1}


def test_reshape_chain_copying_a_dimension_stays():
    nodes = [node("Reshape", ["x", "s1"], "r1"), node("Reshape", ["r1", "s2"], "y")]
    inits = {"s1": np.array([4, 3], np.int64),
             "s2": np.array([0, 3, 1], np.int64)}  # 0 copies r1's 4, not x's 2
    after, outcome = apply_std("cleanup", model(nodes, {"x": [2, 6]}, {"y": [4, 3, 1]}, inits))
    assert ops(after) == ["Reshape", "Reshape"] and not outcome.counts


def test_reshape_to_its_own_shape():
    nodes = [node("Reshape", ["x", "s"], "r"), node("Relu", ["r"], "y")]
    after, outcome = apply_std("cleanup",
                               model(nodes, {"x": [2, 6]}, {"y": [2, 6]}, {"s": np.array([2, -1])}))
    assert ops(after) == ["Relu"] and outcome.counts == {"reshape_identity": 1}


def test_transposes():
    nodes = [node("Transpose", ["x"], "t1", perm=[0, 2, 3, 1]),
             node("Transpose", ["t1"], "t2", perm=[0, 3, 1, 2]),
             node("Relu", ["t2"], "r"), node("Transpose", ["r"], "t3", perm=[1, 0, 2, 3]),
             node("Transpose", ["t3"], "t4", perm=[0, 2, 1, 3]),
             node("Transpose", ["t4"], "y", perm=[0, 1, 2, 3])]
    after, outcome = apply_std("cleanup", model(nodes, {"x": [1, 2, 3, 4]}, {"y": [2, 3, 1, 4]}))
    assert ops(after) == ["Relu", "Transpose"] and attr(after, "Transpose", "perm") == [1, 2, 0, 3]
    assert outcome.counts == {"transpose_identity": 1, "transpose_inverse": 1, "transpose_chain": 1}


def test_transpose_without_perm_reverses_and_stays():
    after, _ = apply_std("cleanup", model([node("Transpose", ["x"], "y")], {"x": [2, 3]}, {"y": [3, 2]}))
    assert ops(after) == ["Transpose"]


@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze_unsqueeze_pairs(opset):
    if opset >= 13:
        nodes = [node("Unsqueeze", ["x", "ax"], "u"), node("Squeeze", ["u", "ax"], "s"),
                 node("Relu", ["s"], "r"),
                 node("Squeeze", ["r", "ax0"], "q"), node("Unsqueeze", ["q", "ax0"], "y")]
        inits = {"ax": np.array([1, -1], np.int64), "ax0": np.array([0], np.int64)}
    else:
        nodes = [node("Unsqueeze", ["x"], "u", axes=[1, -1]), node("Squeeze", ["u"], "s", axes=[1, -1]),
                 node("Relu", ["s"], "r"), node("Squeeze", ["r"], "q", axes=[0]),
                 node("Unsqueeze", ["q"], "y", axes=[0])]
        inits = {}
    after, outcome = apply_std("cleanup", model(nodes, {"x": [1, 3]}, {"y": [1, 3]}, inits, opset=opset))
    assert ops(after) == ["Relu"] and outcome.counts == {"unsqueeze_squeeze": 1, "squeeze_unsqueeze": 1}


def test_squeeze_unsqueeze_on_other_axes_stays():
    nodes = [node("Unsqueeze", ["x", "a"], "u"), node("Squeeze", ["u", "b"], "y")]
    inits = {"a": np.array([0], np.int64), "b": np.array([2], np.int64)}
    after, _ = apply_std("cleanup", model(nodes, {"x": [3, 1]}, {"y": [1, 3]}, inits))
    assert ops(after) == ["Unsqueeze", "Squeeze"]


# --- Min/Max -> Clip ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("order, rule", [("min_max", "min_max_clip"), ("max_min", "max_min_clip")])
@pytest.mark.parametrize("dtype, np_type", [(TensorProto.FLOAT, np.float32), (I32, np.int32)])
def test_min_max_to_clip(order, rule, dtype, np_type):
    inits = {"lo": np.array([0], np_type), "hi": np_type(6)}
    if order == "min_max":  # Min(Max(x, lo), hi)
        nodes = [node("Max", ["lo", "x"], "a"), node("Min", ["a", "hi"], "y")]
    else:  # Max(Min(x, hi), lo)
        nodes = [node("Min", ["x", "hi"], "a"), node("Max", ["lo", "a"], "y")]
    after, outcome = apply_std("cleanup", model(nodes, {"x": ([2, 5], dtype)}, {"y": ([2, 5], dtype)}, inits))
    assert ops(after) == ["Clip"] and outcome.counts == {rule: 1}


def test_max_min_with_crossed_bounds_stays():
    inits = {"lo": np.float32(6), "hi": np.float32(0)}  # max(min(x, 0), 6) is 6; Clip(x, 6, 0) would be 0
    nodes = [node("Min", ["x", "hi"], "a"), node("Max", ["a", "lo"], "y")]
    after, outcome = apply_std("cleanup", model(nodes, {"x": [5]}, {"y": [5]}, inits))
    assert ops(after) == ["Min", "Max"] and not outcome.counts


def test_min_max_of_a_tensor_bound_stays():
    nodes = [node("Max", ["x", "lo"], "a"), node("Min", ["a", "hi"], "y")]
    after, _ = apply_std("cleanup", model(nodes, {"x": [5], "lo": [5]}, {"y": [5]}, {"hi": np.float32(6)}))
    assert ops(after) == ["Max", "Min"]
