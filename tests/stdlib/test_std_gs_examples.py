"""graphsurgeon's examples 08 (replace a subgraph) and 11 (a local function) as .gds scripts, run through
the pipeline (verified in ONNX Runtime); example 08 is compared with graphsurgeon's own replacement."""

import runpy
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort

import graphdsl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(folder: str, script: str, tmp_path: Path) -> tuple[graphdsl.Result, onnx.ModelProto, Path]:
    work = tmp_path / folder
    shutil.copytree(EXAMPLES / folder, work, ignore=shutil.ignore_patterns("out", "*.onnx"))
    runpy.run_path(str(work / "generate.py"), run_name="__main__")
    result = graphdsl.compile(work / script).run()
    assert result.passed, result.report.to_json()
    (written,) = result.written
    return result, onnx.load(written), work / "model.onnx"


def graphsurgeon_08(path: Path) -> onnx.ModelProto:
    """graphsurgeon's replace.py: detach the subgraph between named tensors, insert Clip, clean up."""
    graph = gs.import_onnx(onnx.load(path))
    tensors = graph.tensors()
    inputs = [tensors["identity_out_0"], tensors["min_val"], tensors["max_val"]]
    outputs = [tensors["max_out"]]
    for t in inputs:
        t.outputs.clear()
    for t in outputs:
        t.inputs.clear()
    graph.layer(op="Clip", inputs=inputs, outputs=outputs)
    graph.cleanup().toposort()
    return gs.export_onnx(graph)


def test_08_replace_subgraph(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result, model, source = run_example("gs_08_replace_subgraph", "replace.gds", tmp_path)
    assert [n.op_type for n in model.graph.node] == ["Identity", "Clip", "Identity"]
    clip = model.graph.node[1]
    assert list(clip.input) == ["identity_out_0", "min_val", "max_val"] and list(clip.output) == ["max_out"]
    (record,) = [p for p in result.report.passes if p.name == "apply_rules"]
    assert sum(record.counts.values()) == 1
    reference = graphsurgeon_08(source)
    assert [(n.op_type, list(n.input), list(n.output)) for n in reference.graph.node] == \
        [(n.op_type, list(n.input), list(n.output)) for n in model.graph.node]
    x = np.linspace(-4, 10, 16, dtype=np.float32).reshape(4, 4)
    ours, theirs = (ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
                    .run(None, {"input": x})[0] for m in (model, reference))
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours, np.clip(x, 0, 6))


def test_11_local_function_inlined(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result, model, source = run_example("gs_11_local_function", "inline.gds", tmp_path)
    original = onnx.load(source)
    assert len(original.functions) == 1
    assert [n.op_type for n in original.graph.node].count("SelfAttention") == 4
    assert not model.functions and "SelfAttention" not in {n.op_type for n in model.graph.node}
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MatMul") == 20 and ops.count("Softmax") == 4 and ops.count("Transpose") == 4
    assert all(o.max_abs <= 1e-5 for o in result.verification.outputs)
