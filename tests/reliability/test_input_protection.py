"""The input model is never modified: not by passes, not by outputs, whatever name they reach it by.

Writing over the input (its .onnx file or an external data file it reads weights from) needs
`--overwrite-input`, also through a hard link or a symlink; with the flag the result replaces it
atomically and still computes what the input did.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from reliability_helpers import assert_clean_exit, cli, default_script, session

from graphdsl.onnxio import read_model


def model_with_external_data(folder: Path) -> Path:
    """Conv + BatchNorm (the default pipeline folds them: weights change) with weights in `weights.bin`."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name) for name, shape in
             (("w", (16, 3, 3, 3)), ("scale", (16,)), ("bias", (16,)), ("mean", (16,)))]
    inits.append(numpy_helper.from_array(rng.uniform(0.5, 2, 16).astype(np.float32), "var"))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1], strides=[1, 1],
                              dilations=[1, 1]),
             helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["y"], name="bn")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 8, 8])
    graph = helper.make_graph(nodes, "g", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = folder / "model.onnx"
    onnx.save(model, path, save_as_external_data=True, location="weights.bin", size_threshold=0)
    return path


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every file's bytes, inode and mtime."""
    out = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            out[p.name] = (p.read_bytes(), st.st_ino, st.st_mtime_ns)
    return out


def outputs_of(path: Path) -> np.ndarray:
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    return session(path).run(None, {"x": x})[0]


@pytest.fixture
def work(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    model = model_with_external_data(src)
    script = tmp_path / "default.gds"
    script.write_text(default_script())
    return tmp_path, src, model, script


def test_passes_and_outputs_never_touch_the_input(work):
    root, src, model, script = work
    before = snapshot(src)
    expected = outputs_of(model)
    out = root / "out" / "model.onnx"
    proc = cli("run", script, "-i", model, "-o", out, "--json")
    assert_clean_exit(proc, 0)
    assert "BatchNormalization" not in json.loads(proc.stdout)["after"]["op_histogram"]  # new weights
    assert snapshot(src) == before
    np.testing.assert_allclose(outputs_of(out), expected, rtol=1e-4, atol=1e-5)


def test_in_place_edits_of_mapped_weights_never_reach_the_files(work):
    """Weights are mapped copy-on-write: a pass writing into a weight array changes the graph only."""
    root, src, model, script = work
    embedded = root / "embedded.onnx"
    onnx.save(onnx.load(model), embedded)
    before = snapshot(src), embedded.read_bytes()
    for path in (model, embedded):
        loaded = read_model(path)
        for tensor in loaded.graph.tensors().values():
            values = getattr(tensor, "values", None)
            if isinstance(values, np.ndarray) and values.size and values.flags.writeable:
                values[...] = 0
        loaded.source.close()
    assert (snapshot(src), embedded.read_bytes()) == before


def refused(proc, *names) -> None:
    assert_clean_exit(proc, 3)
    assert "GDS304" in proc.stderr, proc.stderr
    for name in names:
        assert name in proc.stderr


@pytest.mark.parametrize("how", ["same path", "hard link", "symlink", "relative path with .."])
def test_output_over_the_input_model_is_refused(work, how):
    root, src, model, script = work
    target = {"same path": model, "hard link": src / "link.onnx", "symlink": root / "sym.onnx",
              "relative path with ..": src / ".." / "in" / "model.onnx"}[how]
    if how == "hard link":
        os.link(model, target)
    elif how == "symlink":
        os.symlink(model, target)
    before = snapshot(src)
    refused(cli("run", script, "-i", model, "-o", target), "overwrite the input")
    assert snapshot(src) == before
    assert not [p for p in src.iterdir() if p.name.startswith(".")], "nothing staged is left"


@pytest.mark.parametrize("how", ["same name", "hard link"])
def test_output_data_over_the_input_data_is_refused(work, how):
    """`save ... external "weights.bin"` beside the input: the output's data file is the input's."""
    root, src, model, script = work
    name = "weights.bin"
    if how == "hard link":
        name = "linked.bin"
        os.link(src / "weights.bin", src / name)
    save = src / "save.gds"
    save.write_text(f'{default_script()}save "result.onnx" external "{name}"\n')
    before = snapshot(src)
    refused(cli("run", save, "-i", model), "weights.bin" if how == "same name" else name)
    assert snapshot(src) == before


def test_overwrite_input_replaces_model_and_data_atomically(work):
    """With --overwrite-input the verified result takes the input's place (new files, not edits of the old
    ones: a reader holding the old files keeps reading the old model), and computes the same."""
    root, src, model, script = work
    expected = outputs_of(model)
    old_inodes = {p.name: p.stat().st_ino for p in src.iterdir()}
    held = open(src / "weights.bin", "rb")  # a reader with the old data open
    old_data = held.read()
    save = src / "save.gds"
    save.write_text(f'{default_script()}save "model.onnx" external "weights.bin"\n')
    assert_clean_exit(cli("run", save, "-i", model, "--overwrite-input", "-q"), 0)
    assert {p.name: p.stat().st_ino for p in src.iterdir() if p.name in old_inodes} != old_inodes
    held.seek(0)
    assert held.read() == old_data
    held.close()
    np.testing.assert_allclose(outputs_of(model), expected, rtol=1e-4, atol=1e-5)
    assert not [p for p in src.iterdir() if p.name.startswith(".")]


def test_overwrite_through_a_hard_link_leaves_the_other_name_as_it_was(work):
    root, src, model, script = work
    os.link(model, src / "link.onnx")
    before = (src / "model.onnx").read_bytes()
    assert_clean_exit(cli("run", script, "-i", model, "-o", src / "link.onnx", "--overwrite-input", "-q"), 0)
    assert (src / "model.onnx").read_bytes() == before  # the rename replaced the link, not the shared inode
    assert (src / "link.onnx").stat().st_ino != (src / "model.onnx").stat().st_ino
