"""The IR version written: what the installed onnxruntime reads, never too old for the opsets."""

import onnx
import onnxio_builders as builders
import onnxruntime as ort
import pytest
from onnx import helper

from graphdsl.onnxio import default_ir_version, export_model, import_model, write_model


def loads(model: onnx.ModelProto) -> bool:
    try:
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return True
    except Exception:  # noqa: BLE001 - any refusal
        return False


def test_default_is_the_newest_version_onnxruntime_loads():
    version = default_ir_version()
    assert 7 <= version <= onnx.IR_VERSION
    model, _ = builders.mlp()
    model.ir_version = version
    assert loads(model)
    if version < onnx.IR_VERSION:
        model.ir_version = version + 1
        assert not loads(model)


def test_written_version_is_capped_at_the_runtime(tmp_path):
    model, _ = builders.mlp()
    model.ir_version = onnx.IR_VERSION
    out = export_model(import_model(model).graph)
    assert out.ir_version == min(onnx.IR_VERSION, default_ir_version())
    assert loads(out)


def test_older_versions_are_kept():
    model, _ = builders.mlp()
    assert model.ir_version == 8
    assert export_model(import_model(model).graph).ir_version == 8


def test_explicit_version_is_raised_to_what_the_opsets_need(tmp_path):
    model, _ = builders.mlp()  # opset 17 needs IR 8
    graph = import_model(model).graph
    assert export_model(graph, ir_version=10).ir_version == 10
    assert export_model(graph, ir_version=3).ir_version == helper.find_min_ir_version_for(model.opset_import)
    result = write_model(graph, tmp_path / "o.onnx", ir_version=3)
    assert result.ir_version == 8 and result.notes and "IR" in result.notes[0]
    assert onnx.load(tmp_path / "o.onnx").ir_version == 8


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_opset_change_is_written(opset):
    model, _ = builders.mlp()
    graph = import_model(model).graph
    graph.opset = opset
    out = export_model(graph)
    assert [(o.domain, o.version) for o in out.opset_import] == [("", opset)]
