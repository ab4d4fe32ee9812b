"""std/swish.gds: SiLU and Paddle's swish become ONNX's Swish (opset 24), checked with onnx.checker, strict
inference and ONNX Runtime (which runs Swish at opset 24 by expanding its function body)."""

from stdkit import apply_std, attr, const, model, node, ops


def test_silu_to_swish():
    nodes = [node("Sigmoid", ["x"], "s"), node("Mul", ["s", "x"], "y")]
    after, outcome = apply_std("swish", model(nodes, {"x": [2, 4, 3, 3]}, {"y": [2, 4, 3, 3]}, opset=24))
    assert ops(after) == ["Swish"] and attr(after, "Swish", "alpha") == 1.0
    assert outcome.counts == {"silu": 1}


def test_paddles_swish_with_beta():
    nodes = [const("beta", [1.5]), node("Mul", ["x", "beta"], "xb"), node("Sigmoid", ["xb"], "s"),
             node("Mul", ["x", "s"], "y")]
    after, outcome = apply_std("swish", model(nodes, {"x": [2, 4]}, {"y": [2, 4]}, opset=24))
    assert ops(after) == ["Swish"] and attr(after, "Swish", "alpha") == 1.5
    assert outcome.counts == {"swish_beta": 1}


def test_sigmoid_of_another_value_is_no_silu():
    nodes = [node("Sigmoid", ["z"], "s"), node("Mul", ["s", "x"], "y")]
    after, outcome = apply_std("swish", model(nodes, {"x": [2, 4], "z": [2, 4]}, {"y": [2, 4]}, opset=24))
    assert ops(after) == ["Sigmoid", "Mul"] and not outcome.counts


def test_below_opset_24_left_as_is():
    nodes = [node("Sigmoid", ["x"], "s"), node("Mul", ["s", "x"], "y")]
    after, outcome = apply_std("swish", model(nodes, {"x": [2, 4]}, {"y": [2, 4]}, opset=23))
    assert ops(after) == ["Sigmoid", "Mul"] and not outcome.counts
