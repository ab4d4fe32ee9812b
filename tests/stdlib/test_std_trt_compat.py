"""std/trt_compat.gds, rule by rule: each op older TensorRT parsers lack is written out in ops they know,
checked with onnx.checker (full), strict shape inference and ONNX Runtime before/after."""

import numpy as np
import pytest
from stdkit import apply_std, model, node, ops


def test_hardswish_becomes_x_times_hardsigmoid():
    after, outcome = apply_std("trt_compat",
                               model([node("HardSwish", ["x"], "y")], {"x": [2, 8]}, {"y": [2, 8]},
                                                   opset=14))
    assert ops(after) == ["HardSigmoid", "Mul"] and outcome.counts == {"hardswish": 1}


@pytest.mark.parametrize("approximate, rule, left", [
    ("none", "gelu_erf", {"Erf"}), ("tanh", "gelu_tanh", {"Tanh", "Pow"})])
def test_gelu_written_out(approximate, rule, left):
    m = model([node("Gelu", ["x"], "y", approximate=approximate)], {"x": [3, 8]}, {"y": [3, 8]}, opset=20)
    after, outcome = apply_std("trt_compat", m, atol=1e-6, rtol=1e-5)
    assert "Gelu" not in ops(after) and left <= set(ops(after)) and outcome.counts == {rule: 1}


def test_mish_written_out():
    after, outcome = apply_std("trt_compat", model([node("Mish", ["x"], "y")], {"x": [3, 8]}, {"y": [3, 8]},
                                                   opset=18))
    assert ops(after) == ["Softplus", "Tanh", "Mul"] and outcome.counts == {"mish": 1}


@pytest.mark.parametrize("opset", [17, 18])
@pytest.mark.parametrize("bias, rule", [(True, "layernorm_affine"), (False, "layernorm_scale")])
def test_layernorm_written_out(opset, bias, rule):
    inits = {"g": np.linspace(0.5, 1.5, 8, dtype=np.float32), "b": np.linspace(-1, 1, 8, dtype=np.float32)}
    inputs = ["x", "g", "b"] if bias else ["x", "g"]
    m = model([node("LayerNormalization", inputs, "y", axis=-1, epsilon=1e-12)], {"x": [2, 3, 8]},
              {"y": [2, 3, 8]}, {k: v for k, v in inits.items() if k in inputs}, opset=opset)
    after, outcome = apply_std("trt_compat", m, atol=1e-5, rtol=1e-4)
    assert "LayerNormalization" not in ops(after) and ops(after).count("ReduceMean") == 2
    assert outcome.counts == {rule: 1}


def test_layernorm_over_other_axes_or_with_statistics_stays():
    inits = {"g": np.ones((3, 8), np.float32)}
    m = model([node("LayerNormalization", ["x", "g"], "y", axis=1)], {"x": [2, 3, 8]}, {"y": [2, 3, 8]},
              inits)
    after, outcome = apply_std("trt_compat", m)
    assert ops(after) == ["LayerNormalization"] and not outcome.counts
    m = model([node("LayerNormalization", ["x", "g"], ["y", "mean"], axis=-1)], {"x": [2, 3, 8]},
              {"y": [2, 3, 8], "mean": [2, 3, 1]}, {"g": np.ones(8, np.float32)})
    after, outcome = apply_std("trt_compat", m)
    assert ops(after) == ["LayerNormalization"] and not outcome.counts


def test_rmsnorm_written_out():
    m = model([node("RMSNormalization", ["x", "g"], "y", axis=-1, epsilon=1e-6)], {"x": [2, 8]},
              {"y": [2, 8]},
              {"g": np.linspace(0.5, 1.5, 8, dtype=np.float32)}, opset=23)
    after, outcome = apply_std("trt_compat", m, atol=1e-5, rtol=1e-4)
    assert "RMSNormalization" not in ops(after) and outcome.counts == {"rmsnorm": 1}


@pytest.mark.parametrize("alpha, rule, left", [(1.0, "swish_one", ["Sigmoid", "Mul"]),
                                               (1.702, "swish", ["Mul", "Sigmoid", "Mul"])])
def test_swish_written_out(alpha, rule, left):
    m = model([node("Swish", ["x"], "y", alpha=alpha)], {"x": [2, 8]}, {"y": [2, 8]}, opset=24)
    after, outcome = apply_std("trt_compat", m)
    assert ops(after) == left and outcome.counts == {rule: 1}


def test_fusions_then_trt_compat_round_trips():
    """std/fusions.gds fuses what std/trt_compat.gds writes out: GELU there and back computes the same."""
    m = model([node("Gelu", ["x"], "g"), node("HardSwish", ["g"], "y")], {"x": [2, 8]}, {"y": [2, 8]},
              opset=20)
    out, _ = apply_std("trt_compat", m, atol=1e-6)
    back, outcome = apply_std("fusions", out, atol=1e-6)
    assert outcome.counts == {"erf_gelu_half_x": 1} and ops(back) == ["Gelu", "HardSigmoid", "Mul"]
