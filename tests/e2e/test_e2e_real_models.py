"""Real models from PyPI wheels through real ONNX Runtime: the pipeline keeps what they compute.

PP-OCRv4 det (rapidocr-onnxruntime 1.4.4) keeps its weights in Constant nodes; nudenet 320n is a
YOLOv8n-like detector with initializers and a dynamic batch.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import graphdsl
from realmodels import real_model

pytestmark = pytest.mark.realmodel


def outputs(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def test_ppocrv4_det_fold_and_static_shape(tmp_path):
    src = real_model("ppocrv4_det")
    script = tmp_path / "det.gds"
    script.write_text(f'model "{src}"\n'
                      'fold constants\ncleanup\ntoposort\n'
                      'set input x shape [1, 3, 64, 64]\n'
                      'verify shape x [1, 3, 64, 64]\n'
                      'save "det.opt.onnx"\n')
    result = graphdsl.compile(script).run()
    assert result.passed, result.report.to_json()["verification"]
    before, after = result.report.before, result.report.after
    assert before.op_histogram.get("Constant", 0) > 100  # weights stored as Constant nodes
    assert after.op_histogram.get("Constant", 0) < before.op_histogram["Constant"]
    out = tmp_path / "det.opt.onnx"
    onnx.checker.check_model(str(out), full_check=True)
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    np.testing.assert_allclose(outputs(out, {"x": x})[0], outputs(src, {"x": x})[0], rtol=1e-4, atol=1e-5)


def test_nudenet_extract_backbone_and_rename(tmp_path):
    src = real_model("nudenet_320n")
    model = onnx.load(src)
    inner = next(n.output[0] for n in model.graph.node if n.op_type == "Concat")
    script = tmp_path / "yolo.gds"
    script.write_text(f'model "{src}"\n'
                      f'extract inputs images[1, 3, 320, 320]:float32 outputs "{inner}"\n'
                      f'rename tensor "{inner}" to features\n'
                      'fold constants\ncleanup\n'
                      'save "backbone.onnx"\n')
    result = graphdsl.compile(script).run()
    assert result.passed
    (check,) = result.verification.outputs
    assert check.name == "features" and check.reference_name == inner
    assert result.report.after.node_count < result.report.before.node_count
    loaded = onnx.load(tmp_path / "backbone.onnx")
    assert [o.name for o in loaded.graph.output] == ["features"]


def test_nudenet_dynamic_batch_pipeline_verifies(tmp_path):
    src = real_model("nudenet_320n")
    script = tmp_path / "yolo.gds"
    script.write_text(f'model "{src}"\nimport "std/tidy.gds"\nset batch N\n'
                      'verify samples 2 shape images [1, 3, 320, 320]\n')
    result = graphdsl.compile(script).run()
    assert result.passed and result.written == []
    assert all(o.cosine > 0.9999 for o in result.verification.outputs)
