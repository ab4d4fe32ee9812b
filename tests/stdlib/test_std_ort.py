"""std/ort.gds: the same com.microsoft ops, with the same counts, as onnxruntime's transformer optimizer
(`optimize_model(..., model_type="bert")`) makes on the same BERT-like graphs; rule by rule on small
models; every result checked with onnx.checker (full), strict shape inference and ONNX Runtime."""

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from stdkit import MS, apply_std, const, model, ms_ops, node, ops

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from models import make_bert_like  # noqa: E402


def bert_feeds(m: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Token ids, token types, and a mask of 0s and 1s (as tokenizers write it: Attention assumes so)."""
    rng = np.random.default_rng(seed)
    feeds = {"input_ids": rng.integers(0, 50, (2, 7)),
             "attention_mask": (rng.random((2, 7)) > 0.3).astype(np.int64)}
    if any(i.name == "token_type_ids" for i in m.graph.input):
        feeds["token_type_ids"] = rng.integers(0, 2, (2, 7))
    return feeds


def ort_optimizer_ops(m: onnx.ModelProto, tmp_path: Path) -> dict[str, int]:
    """The com.microsoft ops of onnxruntime's own transformer optimizer (its Python fusions, opt_level 0)."""
    from onnxruntime.transformers.optimizer import optimize_model

    path = tmp_path / "bert.onnx"
    onnx.save(m, path)
    return ms_ops(optimize_model(str(path), model_type="bert", opt_level=0).model)


@pytest.mark.parametrize("torchscript", [True, False])
@pytest.mark.parametrize("layers", [1, 3])
def test_same_ops_and_counts_as_onnxruntimes_optimizer(torchscript, layers, tmp_path):
    m = make_bert_like(layers, 32, heads=2, vocab=50, torchscript=torchscript)
    expected = ort_optimizer_ops(m, tmp_path)
    after, outcome = apply_std("ort", m, feeds=bert_feeds(m), atol=1e-5, rtol=1e-4)
    assert ms_ops(after) == expected
    if torchscript:  # the spelling onnxruntime recognises everything in
        assert expected == {"EmbedLayerNormalization": 1, "Attention": layers,
                            "SkipLayerNormalization": 2 * layers,
                            "BiasGelu": layers}
    else:  # one Unsqueeze for the mask, a Range for the positions: no Attention, no EmbedLayerNormalization
        assert expected == {"SkipLayerNormalization": 2 * layers, "BiasGelu": layers}
        assert outcome.counts["ort_layernorm"] == 1  # the embeddings' LayerNorm, as onnxruntime leaves it
    assert any(o.domain == MS for o in after.opset_import)


def test_every_layers_attention_in_one_round_sharing_the_mask():
    """The layers' Attention matches share the mask's preparation, which no rewrite removes (every layer
    reads it): each match may use it, so 24 layers (BERT-large) fuse in the first round."""
    m = make_bert_like(24, 32, heads=2, vocab=50, torchscript=True)
    _, outcome = apply_std("ort", m, feeds=bert_feeds(m), atol=1e-5, rtol=1e-4)
    assert outcome.counts["attention"] == 24 and not outcome.at_bound and outcome.rounds <= 3


LN_INITS = {"g": np.linspace(0.5, 1.5, 8, dtype=np.float32), "beta": np.linspace(-1, 1, 8, dtype=np.float32),
            "eps": np.float32(1e-12), "two": np.float32(2), "bias": np.linspace(0, 1, 8, dtype=np.float32),
            "w": np.eye(8, dtype=np.float32)}


def spelled_layernorm(x: str, out: str) -> list:
    return [node("ReduceMean", [x], "mean", axes=[-1]), node("Sub", [x, "mean"], "d"),
            node("Pow", ["d", "two"], "sq"),
            node("ReduceMean", ["sq"], "var", axes=[-1]), node("Add", ["var", "eps"], "ve"),
            node("Sqrt", ["ve"], "std"),
            node("Div", ["d", "std"], "n"), node("Mul", ["n", "g"], "ng"), node("Add", ["ng", "beta"], out)]


@pytest.mark.parametrize("with_bias, rule", [(True, "skip_layernorm_bias"), (False, "skip_layernorm")])
def test_skip_layernorm_spelled_out(with_bias, rule):
    nodes = [node("MatMul", ["a", "w"], "mm")]
    nodes += [node("Add", ["mm", "bias"], "ab"), node("Add", ["ab", "r"], "s")] if with_bias else \
        [node("Add", ["mm", "r"], "s")]
    m = model(nodes + spelled_layernorm("s", "y"), {"a": [2, 3, 8], "r": [2, 3, 8]}, {"y": [2, 3, 8]},
              LN_INITS)
    after, outcome = apply_std("ort", m, atol=1e-5, rtol=1e-4)
    assert ops(after) == ["MatMul", "SkipLayerNormalization"] and outcome.counts == {rule: 1}
    assert len(after.graph.node[1].input) == (5 if with_bias else 4)


@pytest.mark.parametrize("with_bias, rule",
                         [(True, "skip_layernorm_fused_bias"), (False, "skip_layernorm_fused")])
def test_skip_layernorm_from_layernormalization(with_bias, rule):
    nodes = [node("MatMul", ["a", "w"], "mm")]
    nodes += [node("Add", ["mm", "bias"], "ab"), node("Add", ["r", "ab"], "s")] if with_bias else \
        [node("Add", ["r", "mm"], "s")]
    nodes.append(node("LayerNormalization", ["s", "g", "beta"], "y", axis=-1, epsilon=1e-5))
    m = model(nodes, {"a": [2, 3, 8], "r": [2, 3, 8]}, {"y": [2, 3, 8]}, LN_INITS)
    after, outcome = apply_std("ort", m, atol=1e-5, rtol=1e-4)
    assert ops(after) == ["MatMul", "SkipLayerNormalization"] and outcome.counts == {rule: 1}


def test_a_skip_that_would_widen_the_input_is_refused():
    # r broadcasts a over the batch: SkipLayerNormalization's output would have a's shape
    nodes = [node("Add", ["a", "r"], "s"), node("LayerNormalization", ["s", "g", "beta"], "y", axis=-1)]
    m = model(nodes, {"a": [1, 3, 8], "r": [2, 3, 8]}, {"y": [2, 3, 8]}, LN_INITS)
    after, outcome = apply_std("ort", m)
    assert ops(after) == ["Add", "LayerNormalization"] and not outcome.counts


def test_layernorm_without_residual_stays_standard():
    m = model(spelled_layernorm("x", "y"), {"x": [2, 3, 8]}, {"y": [2, 3, 8]}, LN_INITS)
    after, outcome = apply_std("ort", m, atol=1e-5, rtol=1e-4)
    assert ops(after) == ["LayerNormalization"] and outcome.counts == {"ort_layernorm": 1}


def gelu_nodes(x: str, tanh: bool) -> list:
    if tanh:
        return [node("Pow", [x, "three"], "x3"), node("Mul", ["x3", "k"], "kx3"),
                node("Add", [x, "kx3"], "i0"),
                node("Mul", ["i0", "s"], "i1"), node("Tanh", ["i1"], "t"), node("Add", ["t", "one"], "ga"),
                node("Mul", [x, "half"], "hx"), node("Mul", ["hx", "ga"], "y")]
    return [node("Div", [x, "sqrt2"], "d"), node("Erf", ["d"], "e"), node("Add", ["e", "one"], "ga"),
            node("Mul", [x, "ga"], "xa"), node("Mul", ["xa", "half"], "y")]


GELU_INITS = {"sqrt2": np.float32(1.4142135), "one": np.float32(1), "half": np.float32(0.5),
              "three": np.float32(3),
              "k": np.float32(0.044715), "s": np.float32(0.7978846), "w": np.eye(8, dtype=np.float32),
              "bias": np.linspace(0, 1, 8, dtype=np.float32)}


@pytest.mark.parametrize("tanh, fused, expected", [
    (False, False, ({"Gelu": 1}, {"ort_erf_gelu": 1})),
    (False, True, ({"BiasGelu": 1}, {"ort_erf_gelu": 1, "bias_gelu": 1})),
    (True, False, ({"FastGelu": 1}, {"ort_tanh_gelu_half_x": 1})),
    (True, True, ({"FastGelu": 1}, {"ort_tanh_gelu_half_x": 1, "bias_fast_gelu": 1})),
])
def test_gelu_and_its_bias(tanh, fused, expected):
    nodes = [node("MatMul", ["a", "w"], "mm")]
    if fused:
        nodes.append(node("Add", ["mm", "bias"], "h"))
    m = model(nodes + gelu_nodes("h" if fused else "mm", tanh), {"a": [2, 3, 8]}, {"y": [2, 3, 8]},
              GELU_INITS)
    after, outcome = apply_std("ort", m, atol=1e-4, rtol=1e-3)
    assert ms_ops(after) == expected[0] and outcome.counts == expected[1]
    if fused:
        assert len(next(n for n in after.graph.node if n.domain == MS).input) == 2


@pytest.mark.parametrize("approximate, op", [("none", "Gelu"), ("tanh", "FastGelu")])
def test_onnx_gelu_becomes_the_contrib_op(approximate, op):
    m = model([node("Gelu", ["x"], "y", approximate=approximate)], {"x": [2, 8]}, {"y": [2, 8]}, opset=20)
    after, _ = apply_std("ort", m, atol=1e-5, rtol=1e-4)
    assert ms_ops(after) == {op: 1}


def test_silu_and_swish_to_quickgelu():
    nodes = [node("Sigmoid", ["x"], "s"), node("Mul", ["s", "x"], "h"),
             const("beta", [1.702]), node("Mul", ["h", "beta"], "hb"), node("Sigmoid", ["hb"], "t"),
             node("Mul", ["h", "t"], "y")]
    after, outcome = apply_std("ort", model(nodes, {"x": [2, 8]}, {"y": [2, 8]}))
    assert ops(after) == ["QuickGelu", "QuickGelu"] and outcome.counts == {"ort_silu": 1, "ort_swish_beta": 1}
    alphas = [onnx.helper.get_attribute_value(n.attribute[0]) for n in after.graph.node]
    assert alphas == [1.0, pytest.approx(1.702)]


def test_double_silu_stays_spelled_out():
    """ONNX Runtime's CPU QuickGelu takes float32 only."""
    nodes = [node("Sigmoid", ["x"], "s"), node("Mul", ["s", "x"], "y")]
    after, outcome = apply_std("ort", model(nodes, {"x": [2, 8]}, {"y": [2, 8]}, dtype=onnx.TensorProto.DOUBLE))
    assert ops(after) == ["Sigmoid", "Mul"] and not outcome.counts


def test_chained_silus_all_fused():
    """The second SiLU reads the first's output, which inference cannot type once QuickGelu computes it:
    the engine keeps the type it had, so `dtype(x) == float32` still holds in the next round."""
    nodes = [node("Sigmoid", ["x"], "s"), node("Mul", ["s", "x"], "h"), node("Sigmoid", ["h"], "t"),
             node("Mul", ["h", "t"], "y")]
    after, outcome = apply_std("ort", model(nodes, {"x": [2, 8]}, {"y": [2, 8]}))
    assert ops(after) == ["QuickGelu", "QuickGelu"] and outcome.counts == {"ort_silu": 2}
