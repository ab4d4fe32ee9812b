"""Test kit for the standard rule files (passes/std/*.gds): small models, and applying one file's rules
with every check a standard rule must pass.

`apply_std("fusions", model)` applies the rules of std/fusions.gds to the model and checks the result:
`onnx.checker` (full), strict ONNX shape inference, the graph outputs' names, and ONNX Runtime before and
after on the same random inputs (equal within the given tolerances).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from graphdsl.compile import std_library_dir
from graphdsl.match import apply_rules, compile_rules

F = TensorProto.FLOAT
MS = "com.microsoft"


@functools.cache
def std_rules(name: str) -> tuple:
    """The compiled rules of std/NAME.gds (a file of rule statements only)."""
    path = std_library_dir() / f"{name}.gds"
    return tuple(compile_rules(path.read_text(), str(path)))


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
          domains: dict[str, int] | None = None) -> onnx.ModelProto:
    """A checked model; `inputs`/`outputs` map names to shapes, or to (shape, element type)."""
    def info(name, spec):
        shape, elem = spec if isinstance(spec, tuple) else (spec, dtype)
        return helper.make_tensor_value_info(name, elem, shape)

    graph = helper.make_graph(
        list(nodes), "test", [info(k, v) for k, v in inputs.items()],
        [info(k, v) for k, v in outputs.items()],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()])
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d,
                                                 v in (domains or {}).items()]
    result = helper.make_model(graph, opset_imports=opsets)
    result.ir_version = 10
    onnx.checker.check_model(result, full_check=True)
    return result


def session(m: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(m.SerializeToString(), options, providers=["CPUExecutionProvider"])


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
    for got, want in zip(session(after).run(None, feeds), session(before).run(None, feeds)):
        assert got.shape == want.shape and got.dtype == want.dtype
        if want.dtype.kind in "fc":
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(got, want)


def apply_std(name: str, before: onnx.ModelProto, max_rounds: int = 16, **check_options):
    """Apply std/NAME.gds's rules; returns (rewritten model, outcome), checked against `before`."""
    graph = gs.import_onnx(before)
    outcome = apply_rules(graph, std_rules(name), max_rounds)
    after = gs.export_onnx(graph)
    check(before, after, **check_options)
    return after, outcome


def ops(m: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in m.graph.node]


def ms_ops(m: onnx.ModelProto) -> dict[str, int]:
    """How many nodes of each com.microsoft op the model has."""
    counts: dict[str, int] = {}
    for n in m.graph.node:
        if n.domain == MS:
            counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts


def attr(m: onnx.ModelProto, op: str, name: str):
    """The value of attribute `name` of the (only) node of `op`."""
    (found,) = [n for n in m.graph.node if n.op_type == op]
    return next(helper.get_attribute_value(a) for a in found.attribute if a.name == name)
