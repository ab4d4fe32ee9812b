"""graphsurgeon's examples 03, 04, 05, 06 and 10 as .gds scripts, run through the CLI's pipeline.

Each example folder's generate.py writes the same model graphsurgeon's example builds; the script must
produce the graph graphsurgeon's example produces (tests/passes/test_gs_examples.py holds the
graphsurgeon side of the comparison for the passes themselves).
"""

import runpy
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import graphdsl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(folder: str, script: str, tmp_path: Path) -> tuple[graphdsl.Result, onnx.ModelProto]:
    work = tmp_path / folder
    shutil.copytree(EXAMPLES / folder, work, ignore=shutil.ignore_patterns("out", "*.onnx"))
    runpy.run_path(str(work / "generate.py"), run_name="__main__")
    result = graphdsl.compile(work / script).run()
    assert result.passed, result.report.to_json()
    (written,) = result.written
    return result, onnx.load(written)


def ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


def io_names(model: onnx.ModelProto) -> tuple[list[str], list[str]]:
    return [i.name for i in model.graph.input], [o.name for o in model.graph.output]


def test_03_isolate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result, model = run_example("gs_03_isolate", "isolate.gds", tmp_path)
    assert ops(model) == ["Mul", "Add"] and io_names(model) == (["x1"], ["add_out"])
    assert result.verification.outputs[0].max_abs == 0


def test_04_modify(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, model = run_example("gs_04_modify", "modify.gds", tmp_path)
    assert ops(model) == ["Mul", "LeakyRelu", "Identity"]
    assert io_names(model) == (["x1"], ["identity_out"])
    leaky = model.graph.node[1]
    assert list(leaky.input) == ["mul_out"] and onnx.helper.get_attribute_value(leaky.attribute[0]) == \
        pytest.approx(0.02)


def test_05_fold(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, model = run_example("gs_05_fold", "fold.gds", tmp_path)
    assert ops(model) == ["Add"]
    (init,) = model.graph.initializer
    assert np.all(onnx.numpy_helper.to_array(init) == 3)


def test_06_remove(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result, model = run_example("gs_06_remove", "remove.gds", tmp_path)
    assert ops(model) == ["Identity", "Identity"] and io_names(model) == (["x"], ["y"])
    assert result.verification is None  # `verify off`: the input model has an op no runtime runs


def test_10_dynamic_batch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, model = run_example("gs_10_dynamic_batch", "dynamic_batch.gds", tmp_path)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((4, 3, 28, 28)).astype(np.float32)
    assert session.run(None, {"input_1": x})[0].shape[0] == 4
