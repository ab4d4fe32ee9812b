"""Small models for rule tests, and the check every rewritten model must pass (tests/match, tests/stdlib).

`check(before, after)`: `onnx.checker` (full), strict ONNX shape inference, the graph outputs' names, and
ONNX Runtime before and after on the same random inputs (equal within the given tolerances).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

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
        [info(k, v) for k, v in outputs.items()],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()])
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in (domains or {}).items()]
    result = helper.make_model(graph, opset_imports=opsets, functions=list(functions))
    result.ir_version = 10
    onnx.checker.check_model(result, full_check=True)
    return result


def session(m: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(m.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run(m: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Every output of the model for the feeds it reads."""
    s = session(m)
    known = {i.name for i in s.get_inputs()}
    return s.run(None, {k: v for k, v in feeds.items() if k in known})


def feeds_for(m: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs: floats standard normal times 2, integers in [0, 4), booleans; symbolic dims are 2."""
    rng = np.random.default_rng(seed)
    out = {}
    for info in m.graph.input:
        shape = [d.dim_value if d.HasField("dim_value") else 2 for d in info.type.tensor_type.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type)
        if dtype.kind == "f":
            out[info.name] = (rng.standard_normal(shape) * 2).astype(dtype)
        elif dtype.kind == "b":
            out[info.name] = rng.integers(0, 2, shape).astype(bool)
        else:
            out[info.name] = rng.integers(0, 4, shape).astype(dtype)
    return out


def check(before: onnx.ModelProto, after: onnx.ModelProto, rtol: float = 1e-5, atol: float = 1e-6,
          feeds: dict[str, np.ndarray] | None = None) -> None:
    """The rewritten model is valid and computes what the original did (on `feeds`, else random inputs)."""
    onnx.checker.check_model(after, full_check=True)
    onnx.shape_inference.infer_shapes(after, strict_mode=True)
    assert [o.name for o in after.graph.output] == [o.name for o in before.graph.output]
    feeds = feeds if feeds is not None else feeds_for(before)
    for got, want in zip(run(after, feeds), run(before, feeds)):
        assert got.shape == want.shape and got.dtype == want.dtype
        if want.dtype.kind in "fc":
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(got, want)


def ops(m: onnx.ModelProto | gs.Graph) -> list[str]:
    """The op types of the main graph's nodes, in order."""
    nodes = m.graph.node if isinstance(m, onnx.ModelProto) else m.nodes
    return [n.op_type if isinstance(m, onnx.ModelProto) else n.op for n in nodes]
