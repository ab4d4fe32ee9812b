"""Writes model.onnx here: four SelfAttention layers, each a call of a model-local function (graphsurgeon
example 11).

The function `SelfAttention` (domain `onnx_graphsurgeon`, as graphsurgeon names it) holds the default
implementation of a custom op: Q, K, V projections by weights passed as attributes (Wq, Wk, Wv), scores
Q K^T / sqrt_emb_dim (transposed by the `transpose_perm` attribute), softmax, times V. The main graph is
graphsurgeon's: out = x; four times out = out + Relu(SelfAttention(out)), opset 18, embeddings of 4.
Built with onnx.helper; the weights come from a seeded generator, so every run writes the same bytes.
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

OPSET, DOMAIN, EMB_DIM, LAYERS = 18, "onnx_graphsurgeon", 4, 4


def _ref(name: str, ref: str, kind: int) -> AttributeProto:
    """An attribute of a node in the function that takes the value of the call's attribute `ref`."""
    return AttributeProto(name=name, ref_attr_name=ref, type=kind)


def _node(op: str, inputs: list[str], output: str, *attributes: AttributeProto) -> onnx.NodeProto:
    node = helper.make_node(op, inputs, [output], name=output)
    node.attribute.extend(attributes)
    return node


def self_attention() -> onnx.FunctionProto:
    nodes = [_node("Constant", [], f"{w}_value", _ref("value", w, AttributeProto.TENSOR))
             for w in ("Wq", "Wk", "Wv")]
    nodes += [_node("MatMul", ["input", f"W{p}_value"], p.upper()) for p in "qkv"]
    nodes += [_node("Transpose", ["K"], "K_t", _ref("perm", "transpose_perm", AttributeProto.INTS)),
              _node("Constant", [], "scale", _ref("value_float", "sqrt_emb_dim", AttributeProto.FLOAT)),
              _node("MatMul", ["Q", "K_t"], "scores"), _node("Div", ["scores", "scale"], "scaled"),
              _node("Softmax", ["scaled"], "weights"), _node("MatMul", ["weights", "V"], "output")]
    defaults = [helper.make_attribute("transpose_perm", [0, 2, 1]),
                helper.make_attribute("sqrt_emb_dim", 1.0)]
    return helper.make_function(DOMAIN, "SelfAttention", ["input"], ["output"], nodes,
                                [helper.make_opsetid("", OPSET)], attributes=["Wq", "Wk", "Wv"],
                                attribute_protos=defaults)


def make_model() -> onnx.ModelProto:
    rng = np.random.default_rng(11)
    nodes, out = [], "input_embeds"
    for layer in range(LAYERS):
        weights = {w: numpy_helper.from_array(rng.standard_normal((EMB_DIM, EMB_DIM)).astype(np.float32), w)
                   for w in ("Wq", "Wk", "Wv")}
        call = helper.make_node("SelfAttention", [out], [f"attention_{layer}"], name=f"SelfAttention_{layer}",
                                domain=DOMAIN, sqrt_emb_dim=float(np.sqrt(EMB_DIM)), **weights)
        nodes += [call, helper.make_node("Relu", [call.output[0]], [f"relu_{layer}"], name=f"relu_{layer}"),
                  helper.make_node("Add", [out, f"relu_{layer}"], [f"add_{layer}"], name=f"add_{layer}")]
        out = f"add_{layer}"
    shape = ["batch", "seqlen", EMB_DIM]
    graph = helper.make_graph(nodes, "local_function",
                              [helper.make_tensor_value_info("input_embeds", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, shape)])
    model = helper.make_model(graph, functions=[self_attention()], producer_name="graphdsl-examples",
                              opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(DOMAIN, 1)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    return model


if __name__ == "__main__":
    path = Path(__file__).with_name("model.onnx")
    onnx.save(make_model(), path)
    print(f"wrote {path}")
