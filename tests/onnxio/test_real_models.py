"""Real exported models (from PyPI wheels, cached in .cache/models): round trips keep what they compute."""

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort
import pytest
from realmodels import real_model

from graphdsl.onnxio import model_stats, read_model, write_model

pytestmark = pytest.mark.realmodel

INPUTS = {"ppocrv4_det": {"x": (1, 3, 64, 64)}, "ppocrv4_rec": {"x": (1, 3, 48, 64)},
          "nudenet_320n": {"images": (1, 3, 320, 320)}}


def run(path, name: str) -> list:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {k: rng.standard_normal(shape).astype(np.float32) for k, shape in INPUTS[name].items()}
    return session.run(None, feeds)


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_round_trip_is_byte_identical_and_runs(name, tmp_path):
    src = real_model(name)
    loaded = read_model(src)
    write_model(loaded.graph, tmp_path / "out.onnx", loaded.meta)
    original = onnx.load(src)
    canonical = original.SerializeToString()
    assert (tmp_path / "out.onnx").read_bytes() == canonical  # as onnx.save would write it
    assert model_stats(loaded.graph)["parameters"] > 100_000


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_fold_cleanup_matches_graphsurgeon(name, tmp_path):
    src = real_model(name)
    loaded = read_model(src)
    loaded.graph.fold_constants().cleanup().toposort()
    write_model(loaded.graph, tmp_path / "ours.onnx", loaded.meta)
    theirs = gs.import_onnx(onnx.load(src))
    theirs.fold_constants().cleanup().toposort()
    onnx.save(gs.export_onnx(theirs), tmp_path / "theirs.onnx")
    ours_model, theirs_model = onnx.load(tmp_path / "ours.onnx"), onnx.load(tmp_path / "theirs.onnx")
    assert [(n.op_type, list(n.input), list(n.output)) for n in ours_model.graph.node] == \
        [(n.op_type, list(n.input), list(n.output)) for n in theirs_model.graph.node]
    onnx.checker.check_model(ours_model, full_check=True)
    for a, b in zip(run(tmp_path / "ours.onnx", name), run(src, name)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
