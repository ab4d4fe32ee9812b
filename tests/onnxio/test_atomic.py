"""Writes are atomic: a failure leaves no temporary file and never a half-written output; the input
model is never modified."""

import hashlib

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxio_builders as builders
import pytest

from graphdsl.onnxio import atomic_write, read_model, write_model


def test_atomic_write_replaces_whole(tmp_path):
    target = tmp_path / "report.json"
    target.write_bytes(b"old")
    with atomic_write(target) as f:
        f.write(b"new contents")
        assert target.read_bytes() == b"old"  # nothing visible until the block succeeds
    assert target.read_bytes() == b"new contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_atomic_write_error_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "report.json"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write(b"half")
            raise RuntimeError("disk full, say")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_new_file_gets_the_usual_permissions(tmp_path):
    with atomic_write(tmp_path / "x.bin") as f:
        f.write(b"x")
    import os
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "x.bin").stat().st_mode & 0o777 == 0o666 & ~umask


class Exploding(np.ndarray):
    """An array whose data cannot be exported (what a buggy pass might leave behind)."""

    @property
    def flags(self):
        raise RuntimeError("boom while exporting")


def test_failed_model_write_leaves_nothing(tmp_path):
    model, _ = builders.mlp()
    onnx.save(model, tmp_path / "m.onnx")
    before = hashlib.sha256((tmp_path / "m.onnx").read_bytes()).hexdigest()
    loaded = read_model(tmp_path / "m.onnx")
    (tmp_path / "out.onnx").write_bytes(b"previous output")
    loaded.graph.tensors()["b1"].values = np.zeros(64, np.float32).view(Exploding)
    with pytest.raises(RuntimeError, match="boom"):
        write_model(loaded.graph, tmp_path / "out.onnx", loaded.meta, external_data="out.data")
    assert (tmp_path / "out.onnx").read_bytes() == b"previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "out.onnx"]
    assert hashlib.sha256((tmp_path / "m.onnx").read_bytes()).hexdigest() == before


def test_input_is_never_modified(tmp_path):
    """Weights changed in place through the mapping, the graph rewritten, outputs written next to it:
    the input file and its external data stay byte for byte what they were."""
    model, _ = builders.mlp(hidden=128)
    builders.save_external(model, tmp_path / "m.onnx", "m.data", size_threshold=256)
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    loaded = read_model(tmp_path / "m.onnx")
    for t in loaded.graph.tensors().values():
        if isinstance(t, gs.Constant):
            t.values[...] = 7  # in place: copy-on-write mappings keep this from the files
    loaded.graph.fold_constants().cleanup()
    write_model(loaded.graph, tmp_path / "out.onnx", loaded.meta, external_data="out.data")
    write_model(loaded.graph, tmp_path / "embedded.onnx", loaded.meta)
    assert {name: (tmp_path / name).read_bytes() for name in files} == files
    assert onnx.load(tmp_path / "m.onnx").graph.initializer[0].raw_data != bytes(
        onnx.load(tmp_path / "out.onnx").graph.initializer[0].raw_data)


def test_external_data_written_with_the_model(tmp_path):
    model, _ = builders.mlp(hidden=128)
    onnx.save(model, tmp_path / "m.onnx")
    loaded = read_model(tmp_path / "m.onnx")
    result = write_model(loaded.graph, tmp_path / "o.onnx", loaded.meta, external_data="o.data",
                         size_threshold=1024)
    assert result.external_data == tmp_path / "o.data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "o.data", "o.onnx"]
