"""Test kit for rules: small models from a compact node list, and a rewrite that is always checked.

`rewrite(script, model)` compiles the script's rules, applies them to the model and checks the result
the way every rule test must: `onnx.checker` (full, with strict shape inference) and ONNX Runtime before
and after on the same random inputs.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from graphdsl.match import apply_rules, compile_rules

F = TensorProto.FLOAT
MS = "com.microsoft"


def node(op: str, inputs: Sequence[str], outputs: str | Sequence[str], name: str | None = None,
         domain: str = "", **attrs) -> onnx.NodeProto:
    outputs = [outputs] if isinstance(outputs, str) else list(outputs)
    return helper.make_node(op, list(inputs), outputs, name=name or outputs[0], domain=domain or None,
                            **attrs)


def const(name: str, value, dtype=np.float32) -> onnx.NodeProto:
    """A `Constant` node, as exporters write literals."""
    return helper.make_node("Constant", [], [name], name=name,
                            value=numpy_helper.from_array(np.asarray(value, dtype=dtype), ""))


def model(nodes: Sequence[onnx.NodeProto], inputs: dict[str, Sequence], outputs: dict[str, Sequence | None],
          initializers: dict[str, np.ndarray] | None = None, opset: int = 17, dtype: int = F,
          functions: Sequence[onnx.FunctionProto] = (),
          domains: dict[str, int] | None = None) -> onnx.ModelProto:
    """A checked model; `inputs`/`outputs` map names to shapes, or to (shape, element type)."""
    def info(name, spec):
        shape, elem = spec if isinstance(spec, tuple) else (spec, dtype)
        return helper.make_tensor_value_info(name, elem, shape)

    graph = helper.make_graph(
        list(nodes), "test", [info(k, v) for k, v in inputs.items()],
        [helper.make_tensor_value_info(k, dtype, v) for k, v in outputs.items()],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()])
    opsets = [helper.make_opsetid("", opset)]
    opsets += [helper.make_opsetid(d, v) for d, v in (domains or {}).items()]
    result = helper.make_model(graph, opset_imports=opsets, functions=list(functions))
    result.ir_version = 10
    onnx.checker.check_model(result, full_check=True)
    return result


def run(m: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    known = {i.name for i in session.get_inputs()}
    return session.run(None, {k: v for k, v in feeds.items() if k in known})


def feeds_for(m: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for info in m.graph.input:
        shape = [d.dim_value or 1 for d in info.type.tensor_type.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type)
        out[info.name] = (rng.standard_normal(shape) * 2).astype(dtype) if dtype.kind == "f" else \
            rng.integers(0, 4, shape).astype(dtype)
    return out


def check(before: onnx.ModelProto, after: onnx.ModelProto, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """The rewritten model is valid and computes what the original did."""
    onnx.checker.check_model(after, full_check=True)
    onnx.shape_inference.infer_shapes(after, strict_mode=True)
    feeds = feeds_for(before)
    assert [o.name for o in after.graph.output] == [o.name for o in before.graph.output]
    for got, want in zip(run(after, feeds), run(before, feeds)):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def rewrite(script: str, before: onnx.ModelProto, max_rounds: int = 16, **tolerances):
    """Apply the script's rules; returns (rewritten model, outcome, graph), checked against `before`."""
    graph = gs.import_onnx(before)
    outcome = apply_rules(graph, compile_rules(script), max_rounds)
    after = gs.export_onnx(graph)
    check(before, after, **tolerances)
    return after, outcome, graph


def ops(m: onnx.ModelProto | gs.Graph) -> list[str]:
    nodes = m.graph.node if isinstance(m, onnx.ModelProto) else m.nodes
    return [n.op_type if isinstance(m, onnx.ModelProto) else n.op for n in nodes]
