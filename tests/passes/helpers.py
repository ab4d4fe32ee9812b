"""Test helpers for passes: build small models, run passes on them, run ONNX Runtime before and after.

Imported by the tests beside it as `from helpers import ...` (pytest puts this folder on sys.path).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from graphdsl.check import ModelScope
from graphdsl.diagnostics import GraphdslError
from graphdsl.pipeline import Pass, PassContext, PassResult

F = TensorProto.FLOAT
OPSET = 17


def make_model(nodes: Sequence[onnx.NodeProto], inputs: Sequence[onnx.ValueInfoProto],
               outputs: Sequence[onnx.ValueInfoProto], initializers: dict[str, np.ndarray] | None = None,
               opset: int = OPSET, **kwargs) -> onnx.ModelProto:
    """A checked model from nodes, value infos and named numpy initializers."""
    graph = helper.make_graph(list(nodes), "test", list(inputs), list(outputs),
                              initializer=[numpy_helper.from_array(v, k) for k, v in (initializers or {}).items()])
    opsets = [helper.make_opsetid("", opset)] + kwargs.pop("extra_opsets", [])
    model = helper.make_model(graph, opset_imports=opsets, **kwargs)
    model.ir_version = 10
    return model


def value(name: str, shape: Sequence | None, dtype: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def node(op: str, inputs: Sequence[str], outputs: Sequence[str], name: str | None = None, **attrs):
    return helper.make_node(op, list(inputs), list(outputs), name=name or outputs[0], **attrs)


def apply(p: Pass, model: onnx.ModelProto | gs.Graph, ctx: PassContext | None = None
          ) -> tuple[gs.Graph, PassResult, PassContext]:
    """Run one pass on a model (imported fresh) and return the resulting graph, result and context."""
    graph = gs.import_onnx(model) if isinstance(model, onnx.ModelProto) else model
    ctx = ctx or PassContext()
    result = p.apply(graph, ctx)
    return (result.graph if result.graph is not None else graph), result, ctx


def export(graph: gs.Graph) -> onnx.ModelProto:
    """Export and check the model fully (types and shapes too)."""
    model = gs.export_onnx(graph)
    onnx.checker.check_model(model, full_check=True)
    return model


def static_check(p: Pass, model: onnx.ModelProto) -> ModelScope:
    scope = ModelScope.from_graph(gs.import_onnx(model))
    p.check(scope)
    return scope


def codes(error: GraphdslError) -> list[str]:
    return [d.code for d in error.diagnostics]


def run_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every graph output of the model for the feeds, by name, on ONNX Runtime's CPU provider."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    known = {i.name for i in session.get_inputs()}
    return dict(zip(names, session.run(names, {k: v for k, v in feeds.items() if k in known})))


def random_feeds(model: onnx.ModelProto, dims: dict[str, int] | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded data for every graph input that is not an initializer; symbolic/unknown dims from `dims` or 1."""
    rng = np.random.default_rng(seed)
    initializers = {i.name for i in model.graph.initializer}
    feeds = {}
    for info in model.graph.input:
        if info.name in initializers:
            continue
        tensor_type = info.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else (dims or {}).get(d.dim_param, 1)
                 for d in tensor_type.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        feeds[info.name] = (rng.standard_normal(shape) * 2).astype(dtype) if dtype.kind == "f" else \
            rng.integers(0, 4, shape).astype(dtype)
    return feeds


def assert_numerically_equal(before: onnx.ModelProto, after: onnx.ModelProto,
                             feeds: dict[str, np.ndarray] | None = None, renames: dict[str, str] | None = None,
                             rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Both models give the same outputs for the same inputs; `renames` maps new output names to old."""
    feeds = feeds if feeds is not None else random_feeds(before)
    expected = run_ort(before, feeds)
    actual = run_ort(after, feeds)
    renames = renames or {}
    assert sorted(renames.get(k, k) for k in actual) == sorted(expected), (list(actual), list(expected))
    for name, got in actual.items():
        np.testing.assert_allclose(got, expected[renames.get(name, name)], rtol=rtol, atol=atol, err_msg=name)


def op_types(graph: gs.Graph) -> list[str]:
    return [n.op for n in graph.nodes]


def io_names(graph: gs.Graph) -> tuple[list[str], list[str]]:
    return [t.name for t in graph.inputs], [t.name for t in graph.outputs]
