"""BERT-like ONNX models of any size, generated with onnx.helper, for benchmarks and stress tests.

The node pattern follows what `torch.onnx.export` makes of a Hugging Face BERT encoder: Q/K/V
projections, the Shape/Gather/Unsqueeze/Concat chains that compute reshape targets, scalar `Constant`
nodes (the attention scale, GELU's 1/sqrt(2)), LayerNorm and GELU decomposed into elementwise ops. So a
generated model exercises what real exports contain: many small nodes, constant-foldable shape
arithmetic (when the input shape is static), and a few large weights held as initializers.

    model = make_bert_like(num_layers=12, hidden=768)          # BERT-base sized, about 440 MB
    model = make_bert_like_nodes(100_000, hidden=32)           # about 100k nodes, small weights
    model = make_bert_like_nodes(10_000, torchscript=True)     # embeddings, mask as TorchScript spells them

With `torchscript=True` the model follows TorchScript's export of Hugging Face's BertModel more closely:
the head count and head size of the reshape targets are separate Constants, and around the layers come
word + token-type + position embeddings (the position ids sliced from the
`position_ids` buffer), and the extended attention mask `(1 - mask[:, None, None, :].float()) * -10000`
as Unsqueeze, Unsqueeze, Cast, Sub, Mul. Those are the spellings onnxruntime's transformer optimizer
recognises (EmbedLayerNormalization, Attention); the layers are the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper

NODES_PER_LAYER = 68  # counted from `_Builder.layer`; `make_bert_like_nodes` relies on it
NODES_PER_LAYER_TORCHSCRIPT = 69  # the head count and size are two Constants
_FIXED_NODES = 35  # embeddings, attention mask and pooler around the layers
_FIXED_NODES_TORCHSCRIPT = 42  # the same with token types, the position-id slice and two Unsqueezes


@dataclass
class _Builder:
    """Accumulates nodes and initializers; hands out unique names like an exporter would."""

    hidden: int
    heads: int
    intermediate: int
    rng: np.random.Generator
    nodes: list
    initializers: list
    counter: int = 0
    torchscript: bool = False  # reshape targets with the head count and size as separate Constants
    opset: int = 17  # from 18 on, ReduceMean takes its axes as an input

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_{self.counter}"

    def op(self, op_type: str, inputs: list[str], prefix: str = "", out: str = "", **attrs) -> str:
        out = out or self.name(f"/{prefix or op_type}/output")
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.name(f"/{prefix or op_type}"),
                                           **attrs))
        return out

    def weight(self, prefix: str, shape: tuple[int, ...], scale: float = 0.02) -> str:
        # Drawn in float32 directly: generating a BERT-base model must not double its memory in float64.
        values = self.rng.standard_normal(shape, dtype=np.float32)
        values *= scale
        name = self.name(prefix)
        self.initializers.append(_raw_tensor(name, values))
        return name

    def constant(self, value, dtype=np.float32) -> str:
        """A scalar or 1-D `Constant` node, as torch.onnx emits for Python literals."""
        arr = np.asarray(value, dtype=dtype)
        out = self.name("/Constant/output")
        self.nodes.append(helper.make_node("Constant", [], [out], name=self.name("/Constant"),
                                           value=_raw_tensor("", arr)))
        return out

    def linear(self, x: str, n_in: int, n_out: int, prefix: str) -> str:
        w = self.weight(f"{prefix}.weight", (n_in, n_out))
        b = self.weight(f"{prefix}.bias", (n_out,))
        return self.op("Add", [self.op("MatMul", [x, w], f"{prefix}/MatMul"), b], f"{prefix}/Add")

    def layer_norm(self, x: str, prefix: str) -> str:
        mean = self.reduce_mean(x, f"{prefix}/ReduceMean")
        centered = self.op("Sub", [x, mean], f"{prefix}/Sub")
        var = self.reduce_mean(self.op("Pow", [centered, self.constant(2.0)], f"{prefix}/Pow"),
                               f"{prefix}/ReduceMean_1")
        var_eps = self.op("Add", [var, self.constant(1e-12)], f"{prefix}/Add")
        std = self.op("Sqrt", [var_eps], f"{prefix}/Sqrt")
        normed = self.op("Div", [centered, std], f"{prefix}/Div")
        gamma = self.weight(f"{prefix}.weight", (self.hidden,))
        beta = self.weight(f"{prefix}.bias", (self.hidden,))
        return self.op("Add", [self.op("Mul", [normed, gamma], f"{prefix}/Mul"), beta], f"{prefix}/Add_1")

    def reduce_mean(self, x: str, prefix: str) -> str:
        """Mean over the last axis, keeping it: `axes` an attribute before opset 18, a Constant input after."""
        if self.opset >= 18:
            return self.op("ReduceMean", [x, self.constant([-1], np.int64)], prefix, keepdims=1)
        return self.op("ReduceMean", [x], prefix, axes=[-1], keepdims=1)

    def gelu(self, x: str, prefix: str) -> str:
        scaled = self.op("Div", [x, self.constant(1.4142135)], f"{prefix}/Div")
        erf = self.op("Erf", [scaled], f"{prefix}/Erf")
        gate = self.op("Add", [erf, self.constant(1.0)], f"{prefix}/Add")
        gated = self.op("Mul", [x, gate], f"{prefix}/Mul")
        return self.op("Mul", [gated, self.constant(0.5)], f"{prefix}/Mul_1")

    def head_shapes(self, x: str, prefix: str) -> tuple[str, str]:
        """The two reshape targets of an attention block: [b, l, heads, hd] and [b, l, hidden]."""
        shape = self.op("Shape", [x], f"{prefix}/Shape")
        batch = self.op("Gather", [shape, self.constant(0, np.int64)], f"{prefix}/Gather", axis=0)
        length = self.op("Gather", [shape, self.constant(1, np.int64)], f"{prefix}/Gather_1", axis=0)
        axes = self.constant([0], np.int64)
        ub = self.op("Unsqueeze", [batch, axes], f"{prefix}/Unsqueeze")
        ul = self.op("Unsqueeze", [length, axes], f"{prefix}/Unsqueeze_1")
        if self.torchscript:  # x.size()[:-1] + (heads, head_size): each a 1-element Constant
            heads = [self.constant([self.heads], np.int64),
                     self.constant([self.hidden // self.heads], np.int64)]
        else:
            heads = [self.constant([self.heads, self.hidden // self.heads], np.int64)]
        split = self.op("Concat", [ub, ul, *heads], f"{prefix}/Concat", axis=0)
        width = self.constant([self.hidden], np.int64)
        merged = self.op("Concat", [ub, ul, width], f"{prefix}/Concat_1", axis=0)
        return split, merged

    def attention(self, x: str, mask: str, prefix: str) -> str:
        split, merged = self.head_shapes(x, prefix)
        q, k, v = (self.linear(x, self.hidden, self.hidden, f"{prefix}.{n}")
                   for n in ("query", "key", "value"))
        q = self.op("Transpose", [self.op("Reshape", [q, split], f"{prefix}/Reshape")], perm=[0, 2, 1, 3])
        k = self.op("Transpose", [self.op("Reshape", [k, split], f"{prefix}/Reshape_1")], perm=[0, 2, 3, 1])
        v = self.op("Transpose", [self.op("Reshape", [v, split], f"{prefix}/Reshape_2")], perm=[0, 2, 1, 3])
        scale = self.constant(float(np.sqrt(self.hidden // self.heads)))
        scores = self.op("Add", [self.op("Div", [self.op("MatMul", [q, k]), scale]), mask])
        context = self.op("MatMul", [self.op("Softmax", [scores], axis=-1), v])
        context = self.op("Reshape", [self.op("Transpose", [context], perm=[0, 2, 1, 3]), merged])
        return self.linear(context, self.hidden, self.hidden, f"{prefix}.output.dense")

    def layer(self, x: str, mask: str, index: int) -> str:
        prefix = f"encoder.layer.{index}"
        x = self.layer_norm(self.op("Add", [self.attention(x, mask, f"{prefix}.attention"), x]),
                            f"{prefix}.attention.LayerNorm")
        hidden = self.gelu(self.linear(x, self.hidden, self.intermediate, f"{prefix}.intermediate.dense"),
                           f"{prefix}.intermediate")
        out = self.linear(hidden, self.intermediate, self.hidden, f"{prefix}.output.dense")
        return self.layer_norm(self.op("Add", [out, x]), f"{prefix}.output.LayerNorm")


def _raw_tensor(name: str, values: np.ndarray) -> TensorProto:
    # raw_data, as exporters write it; numpy_helper.from_array would do the same, with more checks.
    data_type = helper.np_dtype_to_tensor_dtype(values.dtype)
    tensor = TensorProto(name=name, data_type=data_type, dims=values.shape)
    tensor.raw_data = values.tobytes()
    return tensor


def make_bert_like(num_layers: int, hidden: int, *, heads: int | None = None, intermediate: int | None = None,
                   vocab: int = 30522, max_positions: int = 512, batch: int | str = "batch",
                   seq: int | str = "sequence", opset: int = 17, seed: int = 0,
                   torchscript: bool = False) -> onnx.ModelProto:
    """A BERT-like encoder with embedded (initializer) weights.

    Args:
        num_layers: Number of encoder layers; each adds `NODES_PER_LAYER` nodes.
        hidden: Hidden size (768 for BERT-base).
        heads: Attention heads; defaults to hidden // 64, at least 1.
        intermediate: FFN width; defaults to 4 * hidden.
        vocab: Rows of the word embedding.
        max_positions: Rows of the position embedding.
        batch: Batch dimension of the inputs: an int for a static shape, a string for a symbolic one.
        seq: Sequence dimension, likewise. Static shapes make the Shape chains constant-foldable.
        opset: ONNX opset of the model (from 18 on, ReduceMean's axes are a Constant input).
        seed: Seed of the weight generator, so the same arguments give the same bytes.
        torchscript: Embeddings (with token types, a third input `token_type_ids`) and the attention mask as
            TorchScript exports Hugging Face's BertModel; see the module's docstring.

    Returns:
        The model, checked by `onnx.checker.check_model` in tests, runnable by onnxruntime.
    """
    heads = heads or max(1, hidden // 64)
    b = _Builder(hidden, heads, intermediate or 4 * hidden, np.random.default_rng(seed), [], [],
                 torchscript=torchscript, opset=opset)
    x, mask = (_torchscript_embeddings if torchscript else _embeddings)(b, vocab, max_positions)
    for index in range(num_layers):
        x = b.layer(x, mask, index)
    x = b.op("Identity", [x], out="last_hidden_state")
    first = b.op("Gather", [x, b.constant(0, np.int64)], axis=1)
    b.op("Tanh", [b.linear(first, hidden, hidden, "pooler.dense")], out="pooler_output")
    names = ("input_ids", "attention_mask") + (("token_type_ids",) if torchscript else ())
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, [batch, seq]) for n in names]
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [batch, seq, hidden]),
               helper.make_tensor_value_info("pooler_output", TensorProto.FLOAT, [batch, hidden])]
    graph = helper.make_graph(b.nodes, "bert_like", inputs, outputs, b.initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             producer_name="graphdsl-bench", ir_version=min(onnx.IR_VERSION, 10))


def _embeddings(b: _Builder, vocab: int, max_positions: int) -> tuple[str, str]:
    words = b.op("Gather", [b.weight("embeddings.word_embeddings.weight", (vocab, b.hidden)), "input_ids"])
    ids = b.op("Shape", ["input_ids"])
    length = b.op("Gather", [ids, b.constant(1, np.int64)], axis=0)
    positions = b.op("Range", [b.constant(0, np.int64), length, b.constant(1, np.int64)])
    table = b.weight("embeddings.position_embeddings.weight", (max_positions, b.hidden))
    pos = b.op("Gather", [table, positions])
    x = b.layer_norm(b.op("Add", [words, pos]), "embeddings.LayerNorm")
    mask = b.op("Unsqueeze", ["attention_mask", b.constant([1, 2], np.int64)])
    mask = b.op("Cast", [mask], to=TensorProto.FLOAT)
    mask = b.op("Mul", [b.op("Sub", [b.constant(1.0), mask]), b.constant(-10000.0)])
    return x, mask


def _torchscript_embeddings(b: _Builder, vocab: int, max_positions: int) -> tuple[str, str]:
    """BertEmbeddings and get_extended_attention_mask as TorchScript exports them (opset 13+ Unsqueeze)."""
    words = b.op("Gather", [b.weight("embeddings.word_embeddings.weight", (vocab, b.hidden)), "input_ids"])
    type_table = b.weight("embeddings.token_type_embeddings.weight", (2, b.hidden))
    types = b.op("Gather", [type_table, "token_type_ids"])
    length = b.op("Gather", [b.op("Shape", ["input_ids"]), b.constant(1, np.int64)], axis=0)
    end = b.op("Unsqueeze", [length, b.constant([0], np.int64)])
    buffer = b.name("embeddings.position_ids")
    b.initializers.append(_raw_tensor(buffer, np.arange(max_positions, dtype=np.int64).reshape(1, -1)))
    position_ids = b.op("Slice", [buffer, b.constant([0], np.int64), end, b.constant([1], np.int64),
                                  b.constant([1], np.int64)])
    table = b.weight("embeddings.position_embeddings.weight", (max_positions, b.hidden))
    pos = b.op("Gather", [table, position_ids])
    x = b.layer_norm(b.op("Add", [b.op("Add", [words, types]), pos]), "embeddings.LayerNorm")
    mask = b.op("Unsqueeze", ["attention_mask", b.constant([1], np.int64)])
    mask = b.op("Unsqueeze", [mask, b.constant([2], np.int64)])
    mask = b.op("Cast", [mask], to=TensorProto.FLOAT)
    mask = b.op("Mul", [b.op("Sub", [b.constant(1.0), mask]), b.constant(-10000.0)])
    return x, mask


def make_bert_like_nodes(num_nodes: int, hidden: int = 32, **kwargs) -> onnx.ModelProto:
    """A BERT-like model with about `num_nodes` nodes (within one layer's worth).

    Args:
        num_nodes: Target node count; the result has the nearest whole number of layers.
        hidden: Hidden size; small by default so node handling, not weight bytes, dominates.
        **kwargs: Passed on to `make_bert_like` (vocab, batch, seq, torchscript, ...).

    Returns:
        The model.
    """
    kwargs.setdefault("vocab", 1000)
    torchscript, axes_inputs = kwargs.get("torchscript", False), kwargs.get("opset", 17) >= 18
    fixed = (_FIXED_NODES_TORCHSCRIPT if torchscript else _FIXED_NODES) + 2 * axes_inputs  # one LayerNorm
    per_layer = (NODES_PER_LAYER_TORCHSCRIPT if torchscript else NODES_PER_LAYER) + 4 * axes_inputs  # two
    layers = max(1, round((num_nodes - fixed) / per_layer))
    return make_bert_like(layers, hidden, **kwargs)


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of raw initializer data: the floor any reader must hold or map."""
    return sum(len(t.raw_data) for t in model.graph.initializer)
