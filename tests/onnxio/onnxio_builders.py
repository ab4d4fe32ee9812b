"""Small ONNX models that exercise what the reader and writer must handle, built with onnx.helper.

Each builder returns (model, feeds): feeds are inputs for an ONNX Runtime session, so a test can
check that a round trip computes exactly what the original did.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
OPSET = [helper.make_opsetid("", 17)]


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _model(graph: onnx.GraphProto, opsets=OPSET, **kw) -> onnx.ModelProto:
    kw.setdefault("ir_version", 8)
    return helper.make_model(graph, opset_imports=opsets, producer_name="onnxio-tests", **kw)


def mlp(hidden: int = 64) -> tuple[onnx.ModelProto, dict]:
    """Initializers big and small, value_info, doc strings, metadata, a node with an omitted input."""
    rng = _rng()
    w1 = numpy_helper.from_array(rng.standard_normal((16, hidden)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.standard_normal(hidden).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((hidden, 4)).astype(np.float32), "w2")
    lo = numpy_helper.from_array(np.array(-1.0, np.float32), "lo")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1", doc_string="first layer"),
        helper.make_node("Add", ["h", "b1"], ["hb"], name="add1"),
        helper.make_node("Clip", ["hb", "lo", ""], ["hc"], name="clip"),  # "" = omitted optional max
        helper.make_node("MatMul", ["hc", "w2"], ["y0"], name="mm2"),
        helper.make_node("Softmax", ["y0"], ["y"], name="softmax", axis=-1),
    ]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", F, ["n", 16])],
                              [helper.make_tensor_value_info("y", F, ["n", 4])], [w1, b1, w2, lo],
                              doc_string="a small MLP",
                              value_info=[helper.make_tensor_value_info("h", F, ["n", hidden])])
    model = _model(graph, doc_string="model doc", domain="ai.graphdsl.tests", model_version=3)
    helper.set_model_props(model, {"author": "tests", "purpose": "round trip"})
    return model, {"x": rng.standard_normal((2, 16)).astype(np.float32)}


def constant_weights() -> tuple[onnx.ModelProto, dict]:
    """Weights in Constant nodes (as PaddlePaddle exports them), plus value_float/value_ints forms."""
    rng = _rng(1)
    w = rng.standard_normal((8, 8)).astype(np.float32)
    nodes = [
        helper.make_node("Constant", [], ["w"], name="cw", value=numpy_helper.from_array(w, "w_value")),
        # gs folds value_float to a float64 array: the Cast keeps the folded model well-typed
        helper.make_node("Constant", [], ["s64"], name="cs", value_float=0.5),
        helper.make_node("Cast", ["s64"], ["s"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Constant", [], ["shape"], name="cshape", value_ints=[2, 32]),
        helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
        helper.make_node("Mul", ["m", "s"], ["ms"], name="mul"),
        helper.make_node("Reshape", ["ms", "shape"], ["y"], name="reshape"),
    ]
    graph = helper.make_graph(nodes, "constants", [helper.make_tensor_value_info("x", F, [8, 8])],
                              [helper.make_tensor_value_info("y", F, [2, 32])])
    return _model(graph), {"x": rng.standard_normal((8, 8)).astype(np.float32)}


def if_outer_scope() -> tuple[onnx.ModelProto, dict]:
    """An If whose branches use tensors of the enclosing graph by name (w, xs), one branch nested."""
    rng = _rng(2)
    w = numpy_helper.from_array(rng.standard_normal((4, 4)).astype(np.float32), "w")
    then_inner = helper.make_graph([helper.make_node("Neg", ["xs"], ["inner_out"])], "then_inner", [],
                                   [helper.make_tensor_value_info("inner_out", F, [2, 4])])
    then_branch = helper.make_graph(
        [helper.make_node("MatMul", ["xs", "w"], ["t0"]),
         helper.make_node("If", ["cond"], ["t1"], then_branch=then_inner, else_branch=then_inner),
         helper.make_node("Add", ["t0", "t1"], ["then_out"])],
        "then", [], [helper.make_tensor_value_info("then_out", F, [2, 4])])
    else_branch = helper.make_graph([helper.make_node("Sub", ["xs", "xs"], ["else_out"])], "else", [],
                                    [helper.make_tensor_value_info("else_out", F, [2, 4])])
    nodes = [helper.make_node("Relu", ["x"], ["xs"], name="relu"),
             helper.make_node("If", ["cond"], ["y"], name="if", then_branch=then_branch,
                              else_branch=else_branch)]
    inputs = [helper.make_tensor_value_info("x", F, [2, 4]),
              helper.make_tensor_value_info("cond", TensorProto.BOOL, [])]
    graph = helper.make_graph(nodes, "if_model", inputs, [helper.make_tensor_value_info("y", F, [2, 4])], [w])
    feeds = {"x": rng.standard_normal((2, 4)).astype(np.float32), "cond": np.array(True)}
    return _model(graph), feeds


def loop_outer_scope() -> tuple[onnx.ModelProto, dict]:
    """A Loop that accumulates with a loop-carried value and reads an outer tensor (`step`)."""
    step = numpy_helper.from_array(np.full((3,), 0.5, np.float32), "step")
    body = helper.make_graph(
        [helper.make_node("Add", ["acc_in", "step"], ["acc_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Identity", ["acc_out"], ["scan_out"])],
        "body",
        [helper.make_tensor_value_info("iter", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", F, [3])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", F, [3]),
         helper.make_tensor_value_info("scan_out", F, [3])])
    nodes = [helper.make_node("Loop", ["trip", "", "x"], ["acc", "all"], name="loop", body=body)]
    inputs = [helper.make_tensor_value_info("trip", TensorProto.INT64, []),
              helper.make_tensor_value_info("x", F, [3])]
    graph = helper.make_graph(nodes, "loop_model", inputs,
                              [helper.make_tensor_value_info("acc", F, [3]),
                               helper.make_tensor_value_info("all", F, [None, 3])], [step])
    return _model(graph), {"trip": np.array(4, np.int64), "x": np.arange(3, dtype=np.float32)}


def with_function() -> tuple[onnx.ModelProto, dict]:
    """A model-local function with a required attribute (ref_attr_name) and a defaulted one."""
    alpha_ref = helper.make_attribute_ref("alpha", onnx.AttributeProto.FLOAT)
    fn_nodes = [helper.make_node("LeakyRelu", ["a"], ["t"]), helper.make_node("Mul", ["t", "b"], ["out"])]
    fn_nodes[0].attribute.append(alpha_ref)
    func = helper.make_function("custom.fn", "ScaledLeaky", ["a", "b"], ["out"], fn_nodes,
                                [helper.make_opsetid("", 17)], attributes=["alpha"],
                                attribute_protos=[helper.make_attribute("unused", 3)], doc_string="fn doc")
    nodes = [helper.make_node("ScaledLeaky", ["x", "s"], ["y"], name="call", domain="custom.fn", alpha=0.2)]
    s = numpy_helper.from_array(np.array([2.0], np.float32), "s")
    graph = helper.make_graph(nodes, "fn_model", [helper.make_tensor_value_info("x", F, [4])],
                              [helper.make_tensor_value_info("y", F, [4])], [s])
    model = _model(graph, opsets=OPSET + [helper.make_opsetid("custom.fn", 1)], functions=[func])
    return model, {"x": np.array([-2.0, -1.0, 1.0, 2.0], np.float32)}


def many_domains() -> tuple[onnx.ModelProto, dict]:
    """Nodes in several custom domains that the model does not import: the writer must add them,
    in an order that does not depend on PYTHONHASHSEED."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu")]
    prev = "r"
    for i, domain in enumerate(["zeta.ops", "alpha.ops", "mid.ops", "beta.ops", "omega.ops", "kappa.ops"]):
        nodes.append(helper.make_node("Custom", [prev], [f"c{i}"], name=f"custom{i}", domain=domain))
        prev = f"c{i}"
    graph = helper.make_graph(nodes, "domains", [helper.make_tensor_value_info("x", F, [2])],
                              [helper.make_tensor_value_info(prev, F, [2])])
    return _model(graph), {}


def nested_ifs(depth: int) -> onnx.ModelProto:
    """`depth` If nodes, each inside the then-branch of the one before; the innermost adds 1."""
    inner = helper.make_graph([helper.make_node("Add", ["x", "one"], [f"out{depth}"])], f"g{depth}", [],
                              [helper.make_tensor_value_info(f"out{depth}", F, [1])])
    for level in range(depth - 1, -1, -1):
        other = helper.make_graph([helper.make_node("Identity", ["x"], [f"else{level}"])], f"e{level}", [],
                                  [helper.make_tensor_value_info(f"else{level}", F, [1])])
        inner = helper.make_graph(
            [helper.make_node("If", ["cond"], [f"out{level}"], then_branch=inner, else_branch=other)],
            f"g{level}", [], [helper.make_tensor_value_info(f"out{level}", F, [1])])
    one = numpy_helper.from_array(np.ones(1, np.float32), "one")
    inputs = [helper.make_tensor_value_info("x", F, [1]),
              helper.make_tensor_value_info("cond", TensorProto.BOOL, [])]
    outputs = [helper.make_tensor_value_info("out0", F, [1])]
    outer = helper.make_graph(inner.node, "nested", inputs, outputs, [one])
    return _model(outer)


def chain(length: int) -> onnx.ModelProto:
    """A linear chain of `length` Relu nodes (a graph deep enough to break anything recursive)."""
    nodes = [onnx.NodeProto(op_type="Relu", input=[f"t{i}"], output=[f"t{i + 1}"], name=f"n{i}")
             for i in range(length)]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("t0", F, [1])],
                              [helper.make_tensor_value_info(f"t{length}", F, [1])])
    return _model(graph)


ALL = {"mlp": mlp, "constant_weights": constant_weights, "if_outer_scope": if_outer_scope,
       "loop_outer_scope": loop_outer_scope, "with_function": with_function}


def save_external(model: onnx.ModelProto, path, location: str, size_threshold: int = 1024) -> None:
    """onnx.save with external data, leaving `model` as it was (onnx.save rewrites the proto it gets)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    onnx.save(copy, path, save_as_external_data=True, location=location, size_threshold=size_threshold)
