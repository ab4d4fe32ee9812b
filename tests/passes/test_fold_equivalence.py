"""FoldConstants + Cleanup give what graphsurgeon's `fold_constants().cleanup()` gives, and the same bytes
run after run: generated, example, subgraph and real models, compared node by node, tensor by tensor,
and through ONNX Runtime.

Where graphsurgeon is wrong (a multi-output `If` it inlines leaves outputs without producers), the
result is compared with the input model through ONNX Runtime instead.
"""

import sys
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from helpers import F, assert_numerically_equal, make_model, node, run_ort, value
from onnx import TensorProto, helper, numpy_helper, shape_inference
from realmodels import real_model

from graphdsl.onnxio import read_model, write_model
from graphdsl.passes.cleanup import Cleanup
from graphdsl.passes.fold_constants import FoldConstants
from graphdsl.passes.gs_log import captured_gs_log
from graphdsl.pipeline import PassContext

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
from models import make_bert_like  # noqa: E402


def ours(model: onnx.ModelProto, **options) -> tuple[gs.Graph, PassContext]:
    graph, ctx = gs.import_onnx(model), PassContext()
    FoldConstants(**options).apply(graph, ctx)
    Cleanup().apply(graph, ctx)
    return graph, ctx


def graphsurgeons(model: onnx.ModelProto) -> gs.Graph:
    graph = gs.import_onnx(model)
    with captured_gs_log():
        graph.fold_constants().cleanup()
    return graph


def structure(graph: gs.Graph) -> list:
    """Every node of every graph (op, name, inputs, outputs, plain attributes), in order, then the
    Constants they read by name with their values, dtypes and shapes."""
    rows, constants, stack = [], {}, [("", graph)]
    while stack:
        where, g = stack.pop()
        for n in g.nodes:
            plain = {k: v for k, v in n.attrs.items() if not isinstance(v, (gs.Graph, gs.Tensor))}
            rows.append((where, n.op, n.name, [t.name for t in n.inputs], [t.name for t in n.outputs], plain))
            stack.extend((f"{where}/{n.name}.{k}", v) for k, v in n.attrs.items() if isinstance(v, gs.Graph))
            constants.update((t.name, t) for t in n.inputs if isinstance(t, gs.Constant))
        constants.update((t.name, t) for t in g.outputs if isinstance(t, gs.Constant))
    values = {k: (str(t.values.dtype), t.values.shape, t.values.tobytes()) for k, t in constants.items()}
    return rows + sorted(values.items())


def assert_same_as_graphsurgeon(model: onnx.ModelProto, feeds: dict | None = None) -> gs.Graph:
    mine, ctx = ours(model)
    theirs = graphsurgeons(model)
    assert structure(mine) == structure(theirs)
    assert [t.name for t in mine.inputs] == [t.name for t in theirs.inputs]
    assert [t.name for t in mine.outputs] == [t.name for t in theirs.outputs]
    assert not [d for d in ctx.diagnostics if d.code == "GDS326"]
    folded = gs.export_onnx(mine)
    assert folded.SerializeToString() == gs.export_onnx(theirs).SerializeToString()
    assert_numerically_equal(model, folded, feeds)
    return mine


def static_inferred(model: onnx.ModelProto, shape: list[int]) -> onnx.ModelProto:
    """The model with a static first input and inferred value-infos, so that shapes fold."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for dim, size in zip(model.graph.input[0].type.tensor_type.shape.dim, shape):
        dim.Clear()
        dim.dim_value = size
    del model.graph.value_info[:]
    return shape_inference.infer_shapes(model, data_prop=True)


def test_quickstart_example():
    assert_same_as_graphsurgeon(onnx.load(REPO / "examples" / "models" / "quickstart.onnx"))


def test_gs_05_fold_example(tmp_path):
    import runpy
    import shutil

    # the example's model is generated, not committed: make it in a scratch copy of the folder
    shutil.copy(REPO / "examples" / "gs_05_fold" / "generate.py", tmp_path / "generate.py")
    runpy.run_path(str(tmp_path / "generate.py"), run_name="__main__")
    assert_same_as_graphsurgeon(onnx.load(tmp_path / "model.onnx"))


@pytest.mark.parametrize("static", [False, True])
def test_bert_like(static):
    model = make_bert_like(2, 32, batch=2 if static else "batch", seq=8 if static else "sequence", vocab=50)
    feeds = {"input_ids": np.arange(16).reshape(2, 8) % 50, "attention_mask": np.ones((2, 8), np.int64)}
    mine = assert_same_as_graphsurgeon(model, feeds)
    assert not any(n.op == "Constant" for n in mine.nodes)
    if static:
        inferred = shape_inference.infer_shapes(model)
        mine = assert_same_as_graphsurgeon(inferred, feeds)
        assert not any(n.op in ("Shape", "Concat") for n in mine.nodes)  # every reshape target folded


def if_model(cond_is_constant: bool) -> onnx.ModelProto:
    """y = If(cond) then x * (a + b) else x - Sqrt(four); the branches fold inside either way."""
    then_branch = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["ab"], name="then_add"),
         helper.make_node("Mul", ["x", "ab"], ["then_out"], name="then_mul")],
        "then", [], [value("then_out", [3])])
    else_branch = helper.make_graph(
        [helper.make_node("Sqrt", ["four"], ["two"], name="else_sqrt"),
         helper.make_node("Sub", ["x", "two"], ["else_out"], name="else_sub")],
        "else", [], [value("else_out", [3])])
    cond = [node("Greater", ["s", "zero"] if not cond_is_constant else ["four", "zero"], ["cond"])]
    inputs = [value("x", [3])] + ([] if cond_is_constant else [value("s", [], F)])
    return make_model(cond + [helper.make_node("If", ["cond"], ["y"], name="if", then_branch=then_branch,
                                               else_branch=else_branch)],
                      inputs, [value("y", [3])],
                      {"a": np.array([2.0, 3, 4], np.float32), "b": np.ones(3, np.float32),
                       "four": np.array(4, np.float32), "zero": np.array(0, np.float32)})


@pytest.mark.parametrize("cond_is_constant", [False, True])
def test_if_subgraphs(cond_is_constant):
    model = if_model(cond_is_constant)
    feeds = {"x": np.array([1.0, -2, 3], np.float32), "s": np.array(1, np.float32)}
    mine = assert_same_as_graphsurgeon(model, feeds)
    if cond_is_constant:  # a > b: the then branch is inlined, renamed as graphsurgeon renames it
        assert [n.op for n in mine.nodes] == ["Mul"]
        assert mine.nodes[0].inputs[1].name.endswith("_subg_1_then")
    else:
        branches = next(n for n in mine.nodes if n.op == "If").attrs
        ops = {b: [n.op for n in branches[b].nodes] for b in ("then_branch", "else_branch")}
        assert ops == {"then_branch": ["Mul"], "else_branch": ["Sub"]}


def loop_model() -> onnx.ModelProto:
    """A Loop whose body adds Sqrt(four) (an outer constant, folded inside) to the carried value."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"], name="keep_going"),
         helper.make_node("Sqrt", ["four"], ["two"], name="sqrt"),
         helper.make_node("Add", ["acc_in", "two"], ["acc_out"], name="add")],
        "body",
        [value("i", [], TensorProto.INT64), value("cond_in", [], TensorProto.BOOL), value("acc_in", [3])],
        [value("cond_out", [], TensorProto.BOOL), value("acc_out", [3])])
    return make_model([helper.make_node("Loop", ["trips", "", "x"], ["y"], name="loop", body=body)],
                      [value("x", [3])], [value("y", [3])],
                      {"trips": np.array(3, np.int64), "four": np.array(4, np.float32)})


def test_loop_body():
    mine = assert_same_as_graphsurgeon(loop_model(), {"x": np.zeros(3, np.float32)})
    assert [n.op for n in mine.nodes[0].attrs["body"].nodes] == ["Identity", "Add"]


def function_model() -> onnx.ModelProto:
    opsets = [helper.make_opsetid("", 17)]
    scale = helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array(4, np.float32)))
    fn = helper.make_function("local", "Scale", ["a"], ["b"],
                              [scale, helper.make_node("Sqrt", ["c"], ["s"]),
                               helper.make_node("Mul", ["a", "s"], ["b"])],
                              opsets)
    return make_model([node("Scale", ["x"], ["y"], domain="local")], [value("x", [3])], [value("y", [3])],
                      functions=[fn], extra_opsets=[helper.make_opsetid("local", 1)])


def test_local_function():
    """Folded inside (graphsurgeon tries too, but its export of the function body fails, so it only
    turns the Constant node into a tensor)."""
    model = function_model()
    mine, ctx = ours(model)
    assert [n.op for n in mine.functions[0].nodes] == ["Mul"] and not ctx.diagnostics
    assert [n.op for n in graphsurgeons(model).functions[0].nodes] == ["Sqrt", "Mul"]
    assert_numerically_equal(model, gs.export_onnx(mine))


def test_multi_output_if_is_inlined_whole():
    """graphsurgeon rebinds only every other output of an inlined If (it edits the list it walks)."""
    branch = helper.make_graph([helper.make_node("Neg", ["x"], ["n"], name="neg"),
                                helper.make_node("Abs", ["x"], ["m"], name="abs")],
                               "then", [], [value("n", [3]), value("m", [3])])
    other = helper.make_graph([helper.make_node("Identity", ["x"], ["i"], name="id"),
                               helper.make_node("Identity", ["x"], ["j"], name="id2")],
                              "else", [], [value("i", [3]), value("j", [3])])
    model = make_model([helper.make_node("If", ["yes"], ["p", "q"], name="if", then_branch=branch,
                                         else_branch=other),
                        node("Add", ["p", "q"], ["y"])],
                       [value("x", [3])], [value("y", [3])], {"yes": np.array(True)})
    mine, _ = ours(model)
    assert [n.op for n in mine.nodes] == ["Neg", "Abs", "Add"]
    onnx.checker.check_model(gs.export_onnx(mine), full_check=True)
    assert_numerically_equal(model, gs.export_onnx(mine))
    theirs = graphsurgeons(model)
    q_producer = theirs.nodes[-1].inputs[1].inputs[0]
    assert q_producer.op == "If" and all(n is not q_producer for n in theirs.nodes)  # q dangles


def test_branch_returning_outer_tensor_or_constant():
    """A taken branch that returns an outer tensor as is (ONNX allows it, ONNX Runtime does not) and a
    value it computes from outer constants (a Constant once folded): an Identity and a Constant."""
    branch = helper.make_graph([helper.make_node("Add", ["a", "a"], ["k"], name="double")], "then", [],
                               [value("x", [3]), value("k", [3])])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["nx"]),
                               helper.make_node("Abs", ["x"], ["nx2"])],
                              "else", [], [value("nx", [3]), value("nx2", [3])])
    model = make_model([helper.make_node("If", ["yes"], ["p", "q"], name="if", then_branch=branch,
                                         else_branch=other),
                        node("Mul", ["p", "q"], ["y"])],
                       [value("x", [3])], [value("y", [3])],
                       {"yes": np.array([True]), "a": np.full(3, 2.5, np.float32)})
    mine, ctx = ours(model)
    assert [n.op for n in mine.nodes] == ["Identity", "Mul"] and not ctx.diagnostics
    assert isinstance(mine.nodes[1].inputs[1], gs.Constant)
    folded = gs.export_onnx(mine)
    onnx.checker.check_model(folded, full_check=True)
    x = np.array([1, -2, 3], np.float32)
    np.testing.assert_array_equal(run_ort(folded, {"x": x})["y"], x * 5)


@pytest.mark.realmodel
@pytest.mark.parametrize("name,shape", [("ppocrv4_det", [1, 3, 64, 64]), ("nudenet_320n", [1, 3, 320, 320])])
def test_real_models(name, shape):
    model = onnx.load(real_model(name))
    image = {model.graph.input[0].name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    assert_same_as_graphsurgeon(model, image)
    static = static_inferred(model, shape)
    mine = assert_same_as_graphsurgeon(static, image)
    assert len(mine.nodes) < len(static.graph.node)


@pytest.mark.realmodel
def test_real_model_with_subgraphs_runs_as_before():
    """silero_vad: 50 nested graphs, a constant-condition If with two outputs (see above)."""
    model = onnx.load(real_model("silero_vad"))
    mine, ctx = ours(model)
    assert len(mine.nodes) < len(model.graph.node) and not ctx.diagnostics
    folded = gs.export_onnx(mine)
    onnx.checker.check_model(folded)
    feeds = {"input": np.random.default_rng(0).standard_normal((1, 512)).astype(np.float32),
             "state": np.zeros((2, 1, 128), np.float32), "sr": np.array(16000, np.int64)}
    for name, got in run_ort(folded, feeds).items():
        np.testing.assert_allclose(got, run_ort(model, feeds)[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["quickstart", "silero_vad", "bert"])
def test_written_bytes_are_deterministic(name, tmp_path):
    if name == "quickstart":
        src = REPO / "examples" / "models" / "quickstart.onnx"
    elif name == "bert":
        src = tmp_path / "bert.onnx"
        onnx.save(shape_inference.infer_shapes(make_bert_like(2, 32, batch=2, seq=8, vocab=50)), src)
    else:
        src = real_model(name)
    written = []
    for i in range(2):
        loaded = read_model(src)
        ctx = PassContext()
        FoldConstants().apply(loaded.graph, ctx)
        Cleanup().apply(loaded.graph, ctx)
        write_model(loaded.graph, tmp_path / f"out{i}.onnx", loaded.meta)
        written.append((tmp_path / f"out{i}.onnx").read_bytes())
    assert written[0] == written[1]
