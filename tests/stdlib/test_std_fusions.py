"""std/fusions.gds, rule by rule: each on a small model that has what it fuses, checked with onnx.checker
(full), strict shape inference and ONNX Runtime before/after (stdkit.apply_std); and the near misses
each must leave alone."""

import numpy as np
import pytest
from onnx import TensorProto
from stdkit import apply_std, attr, const, model, node, ops

H = TensorProto.FLOAT16
RNG = np.random.default_rng(0)


def weights(*shape, low=-1.0, high=1.0, dtype=np.float32):
    return RNG.uniform(low, high, shape).astype(dtype)


# --- GELU ----------------------------------------------------------------------------------------------


def erf_gelu(grouping: str, divide: bool = True, sqrt2=1.4142135, opset: int = 20, dtype=np.float32):
    """x * 0.5 * (1 + erf(x / sqrt 2)) with the product grouped as asked, consts in `dtype`."""
    c = sqrt2 if divide else 1 / sqrt2
    nodes = [const("c", c, dtype), const("one", 1.0, dtype), const("half", 0.5, dtype),
             node("Div" if divide else "Mul", ["x", "c"], "d"), node("Erf", ["d"], "e"),
             node("Add", ["one", "e"], "a")]
    if grouping == "xa":  # (x * a) * 0.5, TorchScript and Paddle2ONNX
        nodes += [node("Mul", ["x", "a"], "m"), node("Mul", ["half", "m"], "y")]
    elif grouping == "x_half":  # (0.5 * x) * a
        nodes += [node("Mul", ["half", "x"], "m"), node("Mul", ["a", "m"], "y")]
    else:  # x * (a * 0.5)
        nodes += [node("Mul", ["a", "half"], "m"), node("Mul", ["x", "m"], "y")]
    elem = H if dtype == np.float16 else TensorProto.FLOAT
    return model(nodes + [node("Relu", ["y"], "out")], {"x": ([3, 8], elem)}, {"out": ([3, 8], elem)},
                 opset=opset)


@pytest.mark.parametrize("grouping, rule", [("xa", "erf_gelu"), ("x_half", "erf_gelu_half_x"),
                                            ("a_half", "erf_gelu_half_a")])
@pytest.mark.parametrize("divide", [True, False])
def test_erf_gelu_in_every_grouping(grouping, rule, divide):
    after, outcome = apply_std("fusions", erf_gelu(grouping, divide), atol=1e-5)
    assert ops(after) == ["Gelu", "Relu"]
    assert outcome.counts == {rule: 1}


def test_erf_gelu_float16_constants_within_the_stated_tolerance():
    after, outcome = apply_std("fusions", erf_gelu("xa", dtype=np.float16), rtol=2e-3, atol=2e-3)
    assert ops(after) == ["Gelu", "Relu"] and outcome.counts == {"erf_gelu": 1}


def test_erf_gelu_other_constant_is_left_alone():
    after, outcome = apply_std("fusions", erf_gelu("xa", sqrt2=1.5))
    assert "Gelu" not in ops(after) and not outcome.counts


def test_gelu_needs_opset_20_and_says_so():
    after, outcome = apply_std("fusions", erf_gelu("xa", opset=17))
    assert "Gelu" not in ops(after) and "opset" in outcome.unavailable["erf_gelu"]


def tanh_gelu(grouping: str, cube: str):
    nodes = [const("k", 0.044715), const("s", 0.7978846), const("one", 1.0), const("half", 0.5)]
    if cube == "pow":
        nodes += [const("three", 3.0), node("Pow", ["x", "three"], "x3")]
    else:
        nodes += [node("Mul", ["x", "x"], "x2"), node("Mul", ["x2", "x"], "x3")]
    nodes += [node("Mul", ["k", "x3"], "kx3"), node("Add", ["x", "kx3"], "inner0"),
              node("Mul", ["inner0", "s"], "inner"), node("Tanh", ["inner"], "t"),
              node("Add", ["t", "one"], "a")]
    if grouping == "x_half":  # 0.5 * x * a (Hugging Face's NewGELU)
        nodes += [node("Mul", ["half", "x"], "m"), node("Mul", ["m", "a"], "y")]
    elif grouping == "xa":
        nodes += [node("Mul", ["x", "a"], "m"), node("Mul", ["m", "half"], "y")]
    else:
        nodes += [node("Mul", ["a", "half"], "m"), node("Mul", ["m", "x"], "y")]
    return model(nodes, {"x": [4, 8]}, {"y": [4, 8]}, opset=20)


@pytest.mark.parametrize("grouping, rule", [("xa", "tanh_gelu"), ("x_half", "tanh_gelu_half_x"),
                                            ("a_half", "tanh_gelu_half_a")])
@pytest.mark.parametrize("cube", ["pow", "mul"])
def test_tanh_gelu(grouping, rule, cube):
    after, outcome = apply_std("fusions", tanh_gelu(grouping, cube), atol=1e-5)
    assert ops(after) == ["Gelu"] and attr(after, "Gelu", "approximate") == b"tanh"
    assert outcome.counts == {rule: 1}


# --- LayerNorm -----------------------------------------------------------------------------------------


def layernorm(square="pow", divide="div", affine="both", eps=1e-12, opset=17, axes=(-1,), last=8, root="sqrt",
              gamma_size=None):
    """LayerNorm as exporters spell it; `affine` is "both", "scale" or "none"."""
    by_input = opset >= 18
    reduce = {} if by_input else {"axes": list(axes)}
    extra = ["axes"] if by_input else []
    nodes = [node("ReduceMean", ["x"] + extra, "mean", **reduce), node("Sub", ["x", "mean"], "d")]
    nodes += [node("Pow", ["d", "two"], "sq")] if square == "pow" else [node("Mul", ["d", "d"], "sq")]
    nodes += [node("ReduceMean", ["sq"] + extra, "var", **reduce), node("Add", ["eps", "var"], "ve")]
    nodes += [node("Sqrt", ["ve"], "std")] if root == "sqrt" else [node("Pow", ["ve", "half"], "std")]
    if divide == "div":
        nodes.append(node("Div", ["d", "std"], "n"))
    else:
        nodes += [node("Reciprocal", ["std"], "r"), node("Mul", ["r", "d"], "n")]
    out = "n"
    if affine in ("both", "scale"):
        nodes.append(node("Mul", ["g", "n"], "ng"))
        out = "ng"
    if affine == "both":
        nodes.append(node("Add", ["ng", "b"], "y"))
        out = "y"
    nodes.append(node("Identity", [out], "out"))
    size = gamma_size or last
    inits = {"two": np.float32(2), "half": np.float32(0.5), "eps": np.float32(eps),
             "g": np.linspace(0.5, 1.5, size, dtype=np.float32),
             "b": np.linspace(-1, 1, size, dtype=np.float32)}
    if by_input:
        inits["axes"] = np.array(axes, dtype=np.int64)
    return model(nodes, {"x": [2, 3, last]}, {"out": [2, 3, last]}, inits, opset=opset)


@pytest.mark.parametrize("square", ["pow", "mul"])
@pytest.mark.parametrize("divide", ["div", "reciprocal"])
@pytest.mark.parametrize("affine, rule", [("both", "layernorm"), ("scale", "layernorm_scale"),
                                          ("none", "layernorm_plain")])
def test_layernorm_spellings(square, divide, affine, rule):
    after, outcome = apply_std("fusions", layernorm(square, divide, affine), atol=1e-4)
    assert ops(after) == ["LayerNormalization", "Identity"]
    assert outcome.counts == {rule: 1}


def test_layernorm_root_as_pow_half_and_positive_axis():
    after, outcome = apply_std("fusions", layernorm(root="pow", axes=(2,)), atol=1e-4)
    assert ops(after) == ["LayerNormalization", "Identity"] and outcome.counts == {"layernorm": 1}


def test_layernorm_keeps_berts_epsilon_exactly():
    after, _ = apply_std("fusions", layernorm(eps=1e-12), atol=1e-4)
    assert np.float32(attr(after, "LayerNormalization", "epsilon")) == np.float32(1e-12)


def test_layernorm_at_opset_18_with_axes_as_input():
    after, outcome = apply_std("fusions", layernorm(opset=18), atol=1e-4)
    assert ops(after) == ["LayerNormalization", "Identity"] and outcome.counts == {"layernorm": 1}


def test_layernorm_over_other_axes_is_left_alone():
    after, outcome = apply_std("fusions", layernorm(axes=(1,), last=3), atol=1e-4)
    assert "LayerNormalization" not in ops(after) and not outcome.counts


def test_layernorm_with_a_scalar_scale_keeps_the_scale_outside():
    # ONNX Runtime's LayerNormalization wants a scale of the normalized axis' size: the plain form is fused
    after, outcome = apply_std("fusions", layernorm(gamma_size=1), atol=1e-4)
    assert ops(after) == ["LayerNormalization", "Mul", "Add", "Identity"]
    assert outcome.counts == {"layernorm_plain": 1}


def test_layernorm_needs_opset_17():
    after, outcome = apply_std("fusions", layernorm(opset=16))
    assert "LayerNormalization" not in ops(after) and "opset" in outcome.unavailable["layernorm"]


# --- RMSNorm -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scaled, rule", [(True, "rmsnorm"), (False, "rmsnorm_plain")])
@pytest.mark.parametrize("divide", ["div", "reciprocal"])
def test_rmsnorm(scaled, rule, divide):
    nodes = [node("Pow", ["x", "two"], "p"), node("ReduceMean", ["p", "axes"], "ms"),
             node("Add", ["ms", "eps"], "a"),
             node("Sqrt", ["a"], "s")]
    if divide == "div":
        nodes.append(node("Div", ["x", "s"], "n"))
    else:
        nodes += [node("Reciprocal", ["s"], "r"), node("Mul", ["x", "r"], "n")]
    nodes.append(node("Mul", ["g", "n"], "y") if scaled else node("Relu", ["n"], "y"))
    inits = {"two": np.float32(2), "eps": np.float32(1e-6), "g": np.linspace(0.5, 1.5, 8, dtype=np.float32),
             "axes": np.array([-1], dtype=np.int64)}
    after, outcome = apply_std("fusions", model(nodes, {"x": [2, 8]}, {"y": [2, 8]}, inits, opset=23),
                               atol=1e-4)
    assert ops(after) == (["RMSNormalization"] if scaled else ["RMSNormalization", "Relu"])
    assert outcome.counts == {rule: 1}


# --- SiLU ----------------------------------------------------------------------------------------------


def test_silu_stays_spelled_out():
    """Swish is opt-in (std/swish.gds): ONNX Runtime and TensorRT's parser have no kernel for it."""
    nodes = [node("Sigmoid", ["x"], "s"), node("Mul", ["s", "x"], "y")]
    after, outcome = apply_std("fusions", model(nodes, {"x": [2, 4, 3, 3]}, {"y": [2, 4, 3, 3]}, opset=24))
    assert ops(after) == ["Sigmoid", "Mul"] and not outcome.counts


# --- Gemm ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias_shape", [(5,), (1, 5), ()])
def test_matmul_add_to_gemm(bias_shape):
    nodes = [node("MatMul", ["x", "w"], "m"), node("Add", ["b", "m"], "y")]
    inits = {"w": weights(4, 5), "b": weights(*bias_shape)}
    after, outcome = apply_std("fusions", model(nodes, {"x": [3, 4]}, {"y": [3, 5]}, inits))
    assert ops(after) == ["Gemm"] and outcome.counts == {"matmul_add_gemm": 1}


def test_matmul_add_with_symbolic_rows():
    nodes = [node("MatMul", ["x", "w"], "m"), node("Add", ["m", "b"], "y")]
    m = model(nodes, {"x": [None, 4]}, {"y": [None, 5]}, {"w": weights(4, 5), "b": weights(5)})
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "n"
    after, _ = apply_std("fusions", m)
    assert ops(after) == ["Gemm"]


@pytest.mark.parametrize("x_shape, bias_shape, y_shape", [
    ([2, 3, 4], (5,), [2, 3, 5]),  # 3-D input: Gemm is 2-D only
    ([3, 4], (3, 5), [3, 5]),  # a bias with rows: the rule takes 1-row biases only (never broadcasts)
    ([1, 4], (2, 5), [2, 5]),  # the Add broadcasts the product: not a Gemm
])
def test_matmul_add_left_alone(x_shape, bias_shape, y_shape):
    nodes = [node("MatMul", ["x", "w"], "m"), node("Add", ["m", "b"], "y")]
    after, outcome = apply_std("fusions", model(nodes, {"x": x_shape}, {"y": y_shape},
                                                {"w": weights(4, 5), "b": weights(*bias_shape)}))
    assert ops(after) == ["MatMul", "Add"] and not outcome.counts


def test_matmul_read_twice_stays():
    nodes = [node("MatMul", ["x", "w"], "m"), node("Add", ["m", "b"], "y"), node("Relu", ["m"], "z")]
    _, outcome = apply_std("fusions", model(nodes, {"x": [3, 4]}, {"y": [3, 5], "z": [3, 5]},
                                                {"w": weights(4, 5), "b": weights(5)}))
    assert not outcome.counts


# --- Conv + BatchNormalization, Conv + Add -----------------------------------------------------------------


CONV_ATTRS = {"dilations": [1, 1], "group": 1, "kernel_shape": [3, 3], "pads": [1, 1, 1, 1],
              "strides": [1, 1]}


def bn_inits(channels: int) -> dict:
    return {"s": weights(channels, low=0.5, high=2), "b": weights(channels), "m": weights(channels),
            "v": weights(channels, low=0.5, high=2)}


@pytest.mark.parametrize("with_bias, rule", [(True, "conv_bn"), (False, "conv_bn_nobias")])
def test_conv_batchnorm_folded_into_weights(with_bias, rule):
    inits = {"w": weights(4, 3, 3, 3), "bias": weights(4), **bn_inits(4)}
    conv_inputs = ["x", "w", "bias"] if with_bias else ["x", "w"]
    nodes = [node("Conv", conv_inputs, "c", **CONV_ATTRS),
             node("BatchNormalization", ["c", "s", "b", "m", "v"], "y", epsilon=1e-3)]
    before = model(nodes, {"x": [1, 3, 6, 6]}, {"y": [1, 4, 6, 6]}, inits)
    after, outcome = apply_std("fusions", before, atol=1e-4, rtol=1e-4)
    assert ops(after) == ["Conv"] and len(after.graph.node[0].input) == 3
    assert outcome.counts == {rule: 1}
    assert {i.data_type for i in after.graph.initializer} == {TensorProto.FLOAT}


def test_grouped_1d_conv_batchnorm():
    inits = {"w": weights(6, 1, 3), **bn_inits(6)}
    attrs = {"dilations": [2], "group": 6, "kernel_shape": [3], "pads": [2, 2], "strides": [1]}
    nodes = [node("Conv", ["x", "w"], "c", **attrs),
             node("BatchNormalization", ["c", "s", "b", "m", "v"], "y")]
    after, _ = apply_std("fusions", model(nodes, {"x": [2, 6, 10]}, {"y": [2, 6, 10]}, inits),
                               atol=1e-4, rtol=1e-4)
    assert ops(after) == ["Conv"] and attr(after, "Conv", "group") == 6
    assert attr(after, "Conv", "dilations") == [2]


def test_conv_read_twice_keeps_its_batchnorm():
    inits = {"w": weights(4, 3, 3, 3), **bn_inits(4)}
    nodes = [node("Conv", ["x", "w"], "c", **CONV_ATTRS),
             node("BatchNormalization", ["c", "s", "b", "m", "v"], "y"),
             node("Relu", ["c"], "z")]
    _, outcome = apply_std("fusions",
                           model(nodes, {"x": [1, 3, 6, 6]}, {"y": [1, 4, 6, 6], "z": [1, 4, 6, 6]},
                                                inits))
    assert not outcome.counts


@pytest.mark.parametrize("bias_shape", [(1, 4, 1, 1), (4, 1, 1)])
@pytest.mark.parametrize("with_bias, rule", [(True, "conv_add_bias"), (False, "conv_add_nobias")])
def test_conv_add_becomes_the_bias(bias_shape, with_bias, rule):
    inits = {"w": weights(4, 3, 3, 3), "bias": weights(4), "a": weights(*bias_shape)}
    conv_inputs = ["x", "w", "bias"] if with_bias else ["x", "w"]
    nodes = [node("Conv", conv_inputs, "c", **CONV_ATTRS), node("Add", ["a", "c"], "y")]
    after, outcome = apply_std("fusions", model(nodes, {"x": [1, 3, 5, 5]}, {"y": [1, 4, 5, 5]}, inits),
                               atol=1e-5)
    assert ops(after) == ["Conv"] and outcome.counts == {rule: 1}


@pytest.mark.parametrize("added", [(1, 1, 5, 5), (1, 4, 5, 5), (1, 1, 1, 1, 1)])
def test_conv_add_that_is_no_bias_is_left_alone(added):
    inits = {"w": weights(4, 3, 3, 3), "a": weights(*added)}
    nodes = [node("Conv", ["x", "w"], "c", **CONV_ATTRS), node("Add", ["c", "a"], "y")]
    out_shape = [1, 1, 4, 5, 5] if len(added) == 5 else [1, 4, 5, 5]
    after, outcome = apply_std("fusions", model(nodes, {"x": [1, 3, 5, 5]}, {"y": out_shape}, inits))
    assert ops(after) == ["Conv", "Add"] and not outcome.counts


@pytest.mark.parametrize("with_bias, rules", [(True, ("conv_bn_autopad", "conv_add_bias_autopad")),
                                              (False, ("conv_bn_nobias_autopad", "conv_add_nobias_autopad"))])
def test_conv_with_auto_pad_instead_of_pads(with_bias, rules):
    attrs = {"dilations": [1, 1], "group": 1, "kernel_shape": [2, 2], "strides": [1, 1],
             "auto_pad": "SAME_UPPER"}
    inits = {"w": weights(4, 3, 2, 2), "bias": weights(4), "a": weights(1, 4, 1, 1), **bn_inits(4)}
    conv_inputs = ["x", "w", "bias"] if with_bias else ["x", "w"]
    for rule, tail in zip(rules, ([node("BatchNormalization", ["c", "s", "b", "m", "v"], "y")],
                                  [node("Add", ["c", "a"], "y")])):
        m = model([node("Conv", conv_inputs, "c", **attrs), *tail], {"x": [1, 3, 5, 5]}, {"y": [1, 4, 5, 5]},
                  {k: v for k, v in inits.items() if k in conv_inputs + [i for n in tail for i in n.input]})
        after, outcome = apply_std("fusions", m, atol=1e-4, rtol=1e-4)
        assert ops(after) == ["Conv"] and outcome.counts == {rule: 1}
        assert attr(after, "Conv", "auto_pad") == b"SAME_UPPER"


def test_gelu_with_a_two_input_sum():
    """ONNX's own function body of Gelu adds with Sum."""
    nodes = [node("Div", ["x", "c"], "d"), node("Erf", ["d"], "e"), node("Sum", ["one", "e"], "a"),
             node("Mul", ["half", "x"], "m"), node("Mul", ["m", "a"], "y")]
    inits = {"c": np.float32(np.sqrt(2)), "one": np.float32(1), "half": np.float32(0.5)}
    after, outcome = apply_std("fusions", model(nodes, {"x": [2, 8]}, {"y": [2, 8]}, inits, opset=20),
                               atol=1e-5)
    assert ops(after) == ["Gelu"] and outcome.counts == {"erf_gelu_half_x": 1}
