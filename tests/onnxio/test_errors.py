"""Bad input gets a diagnostic code, never a protobuf, numpy or OS traceback."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import onnxio_builders as builders
import pytest
from onnx import numpy_helper

from graphdsl.diagnostics import ModelError
from graphdsl.onnxio import import_model, read_model, write_model


def code_of(excinfo) -> str:
    return excinfo.value.diagnostics[0].code


@pytest.fixture
def mlp_file(tmp_path):
    model, _ = builders.mlp()
    onnx.save(model, tmp_path / "m.onnx")
    return tmp_path / "m.onnx"


# GDS301: cannot open

def test_missing_file(tmp_path):
    with pytest.raises(ModelError) as e:
        read_model(tmp_path / "nope.onnx")
    assert code_of(e) == "GDS301"


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(ModelError) as e:
        read_model(tmp_path)
    assert code_of(e) == "GDS301"


# GDS302: does not parse

@pytest.mark.parametrize("keep", [0.0, 0.001, 0.3, 0.7, 0.999])
def test_truncated_file(mlp_file, keep):
    data = mlp_file.read_bytes()
    mlp_file.write_bytes(data[:max(1, int(len(data) * keep))])
    with pytest.raises(ModelError) as e:
        read_model(mlp_file)
    assert code_of(e) == "GDS302"


def test_empty_and_foreign_files(tmp_path):
    for name, data in (("empty.onnx", b""), ("json.onnx", b'{"not": "onnx"}'), ("zeros.onnx", bytes(64))):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ModelError) as e:
            read_model(tmp_path / name)
        assert code_of(e) == "GDS302", name


@pytest.mark.parametrize("build", [builders.mlp, builders.if_outer_scope, builders.with_function])
def test_bit_flips_give_gds302_or_a_model(build, tmp_path):
    """Single-bit flips all over a model's structure: each gives GDS302 (or GDS303/308 when it hits an
    external data field) or a model that reads and writes; never another exception."""
    model, _ = build()
    data = bytearray(model.SerializeToString())
    weights = {bytes(t.raw_data) for t in model.graph.initializer if len(t.raw_data) > 64}
    skip = set()
    for w in weights:  # flips inside weight bytes are just other weights
        start = data.find(w)
        skip.update(range(start, start + len(w)))
    refused = 0
    for pos in (p for p in range(len(data)) if p not in skip):
        flipped = bytearray(data)
        flipped[pos] ^= 1 << (pos % 8)
        path = tmp_path / "flip.onnx"
        path.write_bytes(flipped)
        try:
            with read_model(path) as loaded:
                write_model(loaded.graph, tmp_path / "out.onnx", loaded.meta)
        except ModelError as e:
            assert e.diagnostics[0].code in ("GDS302", "GDS303", "GDS308"), e
            refused += 1
    assert refused > 0


def test_tag_flip_is_gds302(mlp_file):
    data = bytearray(mlp_file.read_bytes())
    graph_tag = data.index(0x3A)  # field 7 (graph), length-delimited
    data[graph_tag] = 0x3B  # wire type 3: a group, which ONNX never uses
    mlp_file.write_bytes(bytes(data))
    with pytest.raises(ModelError) as e:
        read_model(mlp_file)
    assert code_of(e) == "GDS302"


def test_weight_size_mismatch_is_gds302(tmp_path):
    model, _ = builders.mlp()
    model.graph.initializer[0].dims[0] = 17  # 17 x 64 floats declared, 16 x 64 stored
    onnx.save(model, tmp_path / "m.onnx")
    with pytest.raises(ModelError) as e:
        read_model(tmp_path / "m.onnx")
    assert code_of(e) == "GDS302"


# GDS303: external data outside the model's folder

def external_model(tmp_path, location: str):
    """A model whose initializer w1 lives in external file `location`."""
    model, _ = builders.mlp()
    w1 = model.graph.initializer[0]
    w1.ClearField("raw_data")
    w1.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(16 * 64 * 4))):
        w1.external_data.add(key=key, value=value)
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    onnx.save(model, folder / "m.onnx")
    return folder / "m.onnx"


def fifo(path):
    """A named pipe: opening it for reading blocks until someone writes, so reading it would hang."""
    os.mkfifo(path)
    return path


def assert_refused_without_reading(model_path, code: str):
    """Run read_model in a subprocess: a refusal returns at once; an attempt to read the FIFO would hang."""
    script = textwrap.dedent(f"""
        from graphdsl.diagnostics import ModelError
        from graphdsl.onnxio import read_model
        try:
            read_model({str(model_path)!r})
        except ModelError as e:
            print(e.diagnostics[0].code)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == code, out.stderr


def test_parent_path_refused_before_reading(tmp_path):
    fifo(tmp_path / "secret.bin")
    assert_refused_without_reading(external_model(tmp_path, "../secret.bin"), "GDS303")


def test_absolute_path_refused_before_reading(tmp_path):
    target = fifo(tmp_path / "abs.bin")
    assert_refused_without_reading(external_model(tmp_path, str(target)), "GDS303")


def test_symlink_leaving_the_folder_refused_before_reading(tmp_path):
    target = fifo(tmp_path / "outside.bin")
    path = external_model(tmp_path, "inside.bin")
    os.symlink(target, path.parent / "inside.bin")
    assert_refused_without_reading(path, "GDS303")


def test_symlink_inside_the_folder_is_fine(tmp_path):
    path = external_model(tmp_path, "link.bin")
    weights = np.arange(16 * 64, dtype=np.float32)
    (path.parent / "real.bin").write_bytes(weights.tobytes())
    os.symlink("real.bin", path.parent / "link.bin")
    loaded = read_model(path)
    np.testing.assert_array_equal(loaded.graph.tensors()["w1"].values.reshape(-1), weights)


def test_bad_location_checked_even_in_memory(tmp_path):
    model = onnx.load(external_model(tmp_path, "../x.bin"), load_external_data=False)
    with pytest.raises(ModelError) as e:
        import_model(model, base_dir=tmp_path / "model")
    assert code_of(e) == "GDS303"


# GDS308: external data missing or short

def test_missing_external_file(tmp_path):
    with pytest.raises(ModelError) as e:
        read_model(external_model(tmp_path, "absent.bin"))
    assert code_of(e) == "GDS308"


def test_short_external_file(tmp_path):
    path = external_model(tmp_path, "short.bin")
    (path.parent / "short.bin").write_bytes(bytes(100))
    with pytest.raises(ModelError) as e:
        read_model(path)
    assert code_of(e) == "GDS308"


def test_external_file_truncated_after_reading(tmp_path):
    path = external_model(tmp_path, "w.bin")
    (path.parent / "w.bin").write_bytes(bytes(16 * 64 * 4))
    loaded = read_model(path)
    (path.parent / "w.bin").write_bytes(bytes(10))
    with pytest.raises(ModelError) as e:
        loaded.graph.tensors()["w1"].values
    assert code_of(e) == "GDS308"


# GDS304: output over input

def test_output_over_input_refused(mlp_file):
    loaded = read_model(mlp_file)
    before = mlp_file.read_bytes()
    for target in (mlp_file, mlp_file.parent / "." / "m.onnx"):
        with pytest.raises(ModelError) as e:
            write_model(loaded.graph, target, loaded.meta, input_path=mlp_file)
        assert code_of(e) == "GDS304"
    with pytest.raises(ModelError) as e:  # the graph knows its file even without input_path
        write_model(loaded.graph, mlp_file, loaded.meta)
    assert code_of(e) == "GDS304"
    assert mlp_file.read_bytes() == before


def test_hard_link_to_input_refused(mlp_file):
    os.link(mlp_file, mlp_file.parent / "alias.onnx")
    loaded = read_model(mlp_file)
    with pytest.raises(ModelError) as e:
        write_model(loaded.graph, mlp_file.parent / "alias.onnx", loaded.meta, input_path=mlp_file)
    assert code_of(e) == "GDS304"


def test_external_data_over_input_data_refused(tmp_path):
    model, feeds = builders.mlp()
    builders.save_external(model, tmp_path / "m.onnx", "m.data", size_threshold=0)
    loaded = read_model(tmp_path / "m.onnx")
    with pytest.raises(ModelError) as e:
        write_model(loaded.graph, tmp_path / "other.onnx", loaded.meta, external_data="m.data")
    assert code_of(e) == "GDS304"


def test_overwrite_input_when_asked(mlp_file):
    model, feeds = builders.mlp()
    loaded = read_model(mlp_file)
    loaded.graph.tensors()["b1"].values = np.zeros(64, np.float32)
    write_model(loaded.graph, mlp_file, loaded.meta, input_path=mlp_file, overwrite_input=True)
    # the old file stayed mapped while the new one was written: both are intact
    written = {t.name: numpy_helper.to_array(t) for t in onnx.load(mlp_file).graph.initializer}
    assert not written["b1"].any()
    np.testing.assert_array_equal(loaded.graph.tensors()["w1"].values,
                                  numpy_helper.to_array(model.graph.initializer[0]))


def test_external_data_name_must_stay_beside_the_model(mlp_file, tmp_path):
    loaded = read_model(mlp_file)
    for bad in ("../w.data", "/tmp/w.data", "sub/w.data"):
        with pytest.raises(ModelError) as e:
            write_model(loaded.graph, tmp_path / "o.onnx", loaded.meta, external_data=bad)
        assert code_of(e) == "GDS303"
