"""Weights are viewed in the mapped file, not copied; external data is read only when asked for."""

import mmap

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxio_builders as builders
import pytest
from onnx import numpy_helper

from graphdsl.onnxio import model_stats, read_model, write_model
from graphdsl.onnxio.values import ExternalValues, MappedValues


def base_buffer(arr: np.ndarray):
    while isinstance(arr, np.ndarray) and arr.base is not None:
        arr = arr.base
    return arr


def test_weights_are_views_of_the_mapping(tmp_path):
    model, _ = builders.mlp(hidden=128)
    onnx.save(model, tmp_path / "m.onnx")
    loaded = read_model(tmp_path / "m.onnx")
    w1 = loaded.graph.tensors()["w1"]
    assert isinstance(w1._values, MappedValues)  # nothing read yet
    values = w1.values
    np.testing.assert_array_equal(values, numpy_helper.to_array(model.graph.initializer[0]))
    owner = base_buffer(values)
    assert isinstance(owner, memoryview) and isinstance(owner.obj, mmap.mmap)
    assert values.flags.writeable  # copy-on-write: passes may edit in place
    assert isinstance(w1.shape, tuple) and w1.dtype == np.float32


def test_stats_do_not_load(tmp_path):
    model, _ = builders.mlp(hidden=128)
    builders.save_external(model, tmp_path / "m.onnx", "m.data")
    loaded = read_model(tmp_path / "m.onnx")
    stats = model_stats(loaded.graph)
    assert stats["parameters"] == 16 * 128 + 128 + 128 * 4 + 1
    assert stats["parameter_bytes"] == 4 * stats["parameters"]
    assert stats["external_bytes"] == 4 * (16 * 128 + 128 * 4)
    consts = [t for t in loaded.graph.tensors().values() if isinstance(t, gs.Constant)]
    assert all(not isinstance(t._values, np.ndarray) for t in consts)


def test_stats_count_constant_nodes(tmp_path):
    model, _ = builders.constant_weights()
    stats = model_stats(read_model_from(model, tmp_path).graph)
    assert stats["parameters"] == 64  # value_float / value_ints are attributes, not tensors


def read_model_from(model, tmp_path):
    onnx.save(model, tmp_path / "m.onnx")
    return read_model(tmp_path / "m.onnx")


def test_external_data_is_lazy_until_values(tmp_path):
    model, _ = builders.mlp(hidden=128)
    builders.save_external(model, tmp_path / "m.onnx", "m.data")
    loaded = read_model(tmp_path / "m.onnx")
    w1 = loaded.graph.tensors()["w1"]
    assert isinstance(w1._values, ExternalValues)
    assert w1._values.ref.file._map is None  # not even mapped
    np.testing.assert_array_equal(w1.values, numpy_helper.to_array(model.graph.initializer[0]))


def test_load_external_reads_now(tmp_path):
    model, _ = builders.mlp(hidden=128)
    builders.save_external(model, tmp_path / "m.onnx", "m.data")
    loaded = read_model(tmp_path / "m.onnx", load_external=True)
    (tmp_path / "m.data").unlink()  # the graph no longer needs it
    write_model(loaded.graph, tmp_path / "o.onnx", loaded.meta)
    out = onnx.load(tmp_path / "o.onnx")
    np.testing.assert_array_equal(numpy_helper.to_array(out.graph.initializer[0]),
                                  numpy_helper.to_array(model.graph.initializer[0]))


def test_unchanged_external_weights_are_copied_file_to_file(tmp_path):
    model, feeds = builders.mlp(hidden=512)
    builders.save_external(model, tmp_path / "m.onnx", "m.data")
    loaded = read_model(tmp_path / "m.onnx")
    write_model(loaded.graph, tmp_path / "o.onnx", loaded.meta, external_data="o.data")
    ext = [t._values for t in loaded.graph.tensors().values()
           if isinstance(t, gs.Constant) and isinstance(t._values, ExternalValues)]
    assert ext and all(v.ref.file._map is None for v in ext)  # never mapped, so never in Python memory
    a = onnx.load(tmp_path / "m.onnx")
    b = onnx.load(tmp_path / "o.onnx")
    assert [t.name for t in a.graph.initializer] == [t.name for t in b.graph.initializer]  # file order kept
    assert [numpy_helper.to_array(t).tobytes() for t in a.graph.initializer] == \
        [numpy_helper.to_array(t).tobytes() for t in b.graph.initializer]


def test_close_releases_the_mapping(tmp_path):
    model, _ = builders.mlp()
    onnx.save(model, tmp_path / "m.onnx")
    with read_model(tmp_path / "m.onnx") as loaded:
        assert loaded.source.buffer.nbytes > 0
    with pytest.raises(ValueError):
        loaded.source.buffer.tobytes()  # released


def test_copies_load_independent_arrays(tmp_path):
    """gs.Graph.copy shares lazy values; as with gs, each copy's array is its own, and an in-place edit
    of one reaches neither the other copy nor what the other copy writes."""
    model, _ = builders.mlp(hidden=128)
    onnx.save(model, tmp_path / "m.onnx")
    original = numpy_helper.to_array(model.graph.initializer[0])
    graph = read_model(tmp_path / "m.onnx").graph
    clone = graph.copy()
    graph.tensors()["w1"].values[...] = 3  # the first load views the mapping; edited in place
    np.testing.assert_array_equal(clone.tensors()["w1"].values, original)
    write_model(clone, tmp_path / "clone.onnx")
    np.testing.assert_array_equal(initializers(tmp_path / "clone.onnx")["w1"], original)
    clone2 = read_model(tmp_path / "m.onnx").graph
    clone2.copy().tensors()["w1"].values[...] = 5  # loaded and edited through a copy, never here
    write_model(clone2, tmp_path / "clone2.onnx")
    np.testing.assert_array_equal(initializers(tmp_path / "clone2.onnx")["w1"], original)


def initializers(path) -> dict:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
