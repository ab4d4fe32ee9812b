"""Every attribute type, value-info on Variables, and the writer's automatic external data."""

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxio_builders as builders
import onnxruntime as ort
import pytest
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from graphdsl.diagnostics import ModelError
from graphdsl.onnxio import export_model, import_model, read_model, write_model
from graphdsl.onnxio import writer as writer_module


def every_attribute_type() -> onnx.ModelProto:
    tensor = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "t")
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(np.array([5.0], np.float32), "sv"),
                                       numpy_helper.from_array(np.array([1], np.int64)), [3])
    body = helper.make_graph([helper.make_node("Identity", ["x"], ["z"])], "body", [],
                             [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
    tp = helper.make_tensor_type_proto(TensorProto.FLOAT, ["n", 3])
    node = helper.make_node("Everything", ["x"], ["y"], name="all", domain="test.ops",
                            f=0.25, i=-7, s="text", t=tensor, g=body, floats=[1.5, 2.5], ints=[1, -2, 3],
                            strings=["a", "b"], tensors=[tensor], graphs=[body], sparse_tensor=sparse,
                            sparse_tensors=[sparse], tp=tp, type_protos=[tp, tp])
    node.attribute.append(helper.make_attribute("empty_ints", [], attr_type=AttributeProto.INTS))
    graph = helper.make_graph([node], "attrs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
    return helper.make_model(graph, opset_imports=builders.OPSET + [helper.make_opsetid("test.ops", 1)],
                             ir_version=8)


def test_every_attribute_type_survives_import_and_export():
    model = every_attribute_type()
    graph = import_model(model).graph
    attrs = graph.nodes[0].attrs
    assert attrs["f"] == 0.25 and attrs["i"] == -7 and attrs["s"] == "text"
    assert attrs["floats"] == [1.5, 2.5] and attrs["ints"] == [1, -2, 3] and attrs["strings"] == ["a", "b"]
    assert isinstance(attrs["t"], gs.Constant) and attrs["t"].values.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert isinstance(attrs["g"], gs.Graph) and attrs["g"].nodes[0].inputs[0] is graph.inputs[0]
    assert isinstance(attrs["tp"], onnx.TypeProto)
    assert isinstance(attrs["sparse_tensor"], onnx.SparseTensorProto)
    assert [type(v) for v in attrs["tensors"]] == [onnx.TensorProto]
    assert attrs["empty_ints"] == []
    original = {a.name: a for a in model.graph.node[0].attribute}
    # untouched: the node is its original bytes; copied (gs.Graph.copy: no origin): all encoded anew;
    # edited: unchanged attributes reused, the changed one encoded
    for edit in (False, "copy", True):
        if edit == "copy":
            graph = graph.copy()
            attrs = graph.nodes[0].attrs
        elif edit:
            graph.nodes[0].name = "renamed"
            for key in list(attrs):
                attrs[key] = attrs[key]  # same values, but the node is no longer the original
            attrs["i"] = -8
        written = {a.name: a for a in export_model(graph).graph.node[0].attribute}
        assert set(written) == set(original)
        for key, attr in original.items():
            if key == "i" and edit is True:
                assert written[key].i == -8
            elif attr.type != AttributeProto.GRAPH:
                assert written[key].type == attr.type, key
                assert written[key].SerializeToString() == attr.SerializeToString(), key


def test_value_info_shapes_and_dtypes_on_variables():
    model, _ = builders.mlp()
    graph = import_model(model).graph
    h = graph.tensors()["h"]
    assert (h.dtype, h.shape, h.type) == (np.float32, ["n", 64], "tensor_type")
    reference = gs.import_onnx(model).tensors()["h"]
    assert (reference.dtype, reference.shape) == (h.dtype, h.shape)
    h.shape = ["n", 65]  # a pass changed it: written anew
    written = {v.name: v for v in export_model(graph).graph.value_info}
    assert written["h"].type.tensor_type.shape.dim[1].dim_value == 65


def test_models_over_2gb_get_external_data(tmp_path, monkeypatch):
    """The 2 GiB switch, exercised with a lower limit (a real 2 GiB model would take the test's budget)."""
    monkeypatch.setattr(writer_module, "PROTOBUF_LIMIT", 20_000)
    model, feeds = builders.mlp(hidden=256)  # ~25 KB of weights
    onnx.save(model, tmp_path / "m.onnx")
    loaded = read_model(tmp_path / "m.onnx")
    result = write_model(loaded.graph, tmp_path / "big.onnx", loaded.meta)
    assert result.external_data == tmp_path / "big.onnx.data"
    assert result.notes and "2 GiB" in result.notes[0]
    cpu = ["CPUExecutionProvider"]
    out = ort.InferenceSession(str(tmp_path / "big.onnx"), providers=cpu).run(None, feeds)
    ref = ort.InferenceSession(model.SerializeToString(), providers=cpu).run(None, feeds)
    np.testing.assert_array_equal(out[0], ref[0])


def test_in_memory_model_with_external_data_needs_a_folder(tmp_path):
    model, _ = builders.mlp(hidden=256)
    builders.save_external(model, tmp_path / "m.onnx", "m.data")
    proto = onnx.load(tmp_path / "m.onnx", load_external_data=False)
    with pytest.raises(ModelError) as e:
        import_model(proto)
    assert e.value.diagnostics[0].code == "GDS308"
    graph = import_model(proto, base_dir=tmp_path).graph
    expected = numpy_helper.to_array(model.graph.initializer[0])
    np.testing.assert_array_equal(graph.tensors()["w1"].values, expected)
