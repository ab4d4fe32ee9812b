"""Round trips through read_model/write_model: valid models that compute what the originals compute,
the same graph graphsurgeon's own import/export gives, and byte-for-byte copies of unchanged models."""

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxio_builders as builders
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from graphdsl.onnxio import export_model, import_model, read_model, write_model


def run(model_or_path, feeds: dict) -> list:
    if isinstance(model_or_path, onnx.ModelProto):
        data = model_or_path.SerializeToString()
    else:
        data = str(model_or_path)
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)


def assert_same_outputs(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def canonical(model: onnx.ModelProto) -> dict:
    """What a model says, independent of field order and of things gs does not keep (doc strings).

    Initializers are compared as one set over all graphs: gs moves a weight used only in a subgraph
    into it (and copies one used in both), graphdsl keeps it where the file declared it. Likewise
    value-infos of an enclosing graph's tensors, which gs repeats inside subgraphs, are left out.
    """
    weights = set()

    def graph(g, outer: set):
        weights.update((t.name, t.data_type, tuple(t.dims), numpy_helper.to_array(t).tobytes())
                       for t in g.initializer)
        mine = {t.name for t in g.initializer} | {v.name for v in g.value_info}
        return {
            "nodes": [(n.op_type, n.name, list(n.input), list(n.output), n.domain,
                       [(a.name, a.type, _attribute_bytes(a)) for a in n.attribute]) for n in g.node],
            "inputs": [(v.name, v.type.SerializeToString()) for v in g.input],
            "outputs": [(v.name, v.type.SerializeToString()) for v in g.output],
            "value_info": sorted((v.name, v.type.SerializeToString())
                                 for v in g.value_info if v.name not in outer),
            "subgraphs": [graph(a.g, outer | mine | _defined(g)) for n in g.node for a in n.attribute
                          if a.type == onnx.AttributeProto.GRAPH],
        }
    out = {"graph": graph(model.graph, set()),
           "opsets": sorted((o.domain, o.version) for o in model.opset_import),
           "functions": [(f.name, f.domain, list(f.input), list(f.output), [n.op_type for n in f.node])
                         for f in model.functions]}
    out["initializers"] = sorted(weights)
    return out


def _attribute_bytes(a):
    return None if a.type == onnx.AttributeProto.GRAPH else a.SerializeToString()


def _defined(g) -> set:
    return {v.name for v in g.input} | {o for n in g.node for o in n.output}


@pytest.fixture(params=sorted(builders.ALL))
def case(request, tmp_path):
    model, feeds = builders.ALL[request.param]()
    path = tmp_path / f"{request.param}.onnx"
    onnx.save(model, path)
    return path, feeds


def test_round_trip_is_valid_and_computes_the_same(case, tmp_path):
    path, feeds = case
    loaded = read_model(path)
    out = tmp_path / "out.onnx"
    write_model(loaded.graph, out, loaded.meta)
    onnx.checker.check_model(str(out), full_check=True)
    assert_same_outputs(run(out, feeds), run(path, feeds))


def test_unchanged_model_is_written_back_byte_for_byte(case, tmp_path):
    path, _ = case
    loaded = read_model(path)
    write_model(loaded.graph, tmp_path / "out.onnx", loaded.meta)
    assert (tmp_path / "out.onnx").read_bytes() == path.read_bytes()


def test_import_equals_graphsurgeons(case):
    path, _ = case
    assert read_model(path).graph == gs.import_onnx(onnx.load(path))  # gs's own Graph.__eq__


def test_export_matches_graphsurgeon(case):
    path, _ = case
    ours = export_model(read_model(path).graph)
    theirs = gs.export_onnx(gs.import_onnx(onnx.load(path)))
    assert canonical(ours) == canonical(theirs)


def test_fold_and_cleanup_match_graphsurgeon(case, tmp_path):
    path, feeds = case
    loaded = read_model(path)
    loaded.graph.fold_constants().cleanup()
    write_model(loaded.graph, tmp_path / "folded.onnx", loaded.meta)
    theirs = gs.import_onnx(onnx.load(path))
    theirs.fold_constants().cleanup()
    ours = onnx.load(tmp_path / "folded.onnx")
    assert canonical(ours) == canonical(gs.export_onnx(theirs))
    onnx.checker.check_model(ours, full_check=True)
    np.testing.assert_allclose(run(ours, feeds)[0], run(path, feeds)[0], rtol=1e-6, atol=1e-6)


def test_model_fields_survive(tmp_path):
    model, _ = builders.mlp()
    onnx.save(model, tmp_path / "m.onnx")
    loaded = read_model(tmp_path / "m.onnx")
    assert loaded.meta.metadata_props == {"author": "tests", "purpose": "round trip"}
    assert (loaded.meta.model_version, loaded.meta.domain, loaded.meta.doc_string) == (3, "ai.graphdsl.tests",
                                                                                        "model doc")
    g = loaded.graph
    assert (g.opset, g.ir_version, g.producer_name, g.doc_string) == (17, 8, "onnxio-tests", "a small MLP")
    assert [(o.domain, o.version) for o in g.import_domains] == [("", 17)]
    out = export_model(g, loaded.meta)
    assert {p.key: p.value for p in out.metadata_props} == loaded.meta.metadata_props
    assert out.graph.node[0].doc_string == "first layer"  # gs drops node doc strings; we keep them


def test_edited_graph_round_trips(tmp_path):
    """Rename, rewire, new nodes and attributes: re-encoded parts next to reused ones stay valid."""
    model, feeds = builders.mlp()
    onnx.save(model, tmp_path / "m.onnx")
    loaded = read_model(tmp_path / "m.onnx")
    g = loaded.graph
    nodes = {n.name: n for n in g.nodes}
    nodes["softmax"].attrs["axis"] = 1  # same meaning for rank 2: the output must not change
    nodes["mm1"].name = "first_matmul"
    tensors = g.tensors()
    tensors["w2"].name = "w2_renamed"
    doubled = gs.Variable("hb2", dtype=np.float32)
    g.nodes.append(gs.Node("Identity", inputs=[tensors["hb"]], outputs=[doubled]))
    nodes["clip"].inputs[0] = doubled
    g.toposort()
    write_model(g, tmp_path / "edited.onnx", loaded.meta)
    out = onnx.load(tmp_path / "edited.onnx")
    onnx.checker.check_model(out, full_check=True)
    assert {n.name for n in out.graph.node} >= {"first_matmul"}
    assert "w2_renamed" in {t.name for t in out.graph.initializer}
    assert out.graph.node[0].doc_string == "first layer"  # a renamed node keeps its other fields
    np.testing.assert_allclose(run(out, feeds)[0], run(model, feeds)[0], rtol=1e-6)


def test_changed_weights_are_written(tmp_path):
    model, feeds = builders.mlp()
    onnx.save(model, tmp_path / "m.onnx")
    loaded = read_model(tmp_path / "m.onnx")
    w1 = loaded.graph.tensors()["w1"]
    w1.values[...] = 0  # in place, on the copy-on-write view
    loaded.graph.tensors()["b1"].values = np.zeros(64, np.float32)  # replaced
    write_model(loaded.graph, tmp_path / "zero.onnx", loaded.meta)
    out = onnx.load(tmp_path / "zero.onnx")
    inits = {t.name: numpy_helper.to_array(t) for t in out.graph.initializer}
    assert not inits["w1"].any() and not inits["b1"].any()
    assert numpy_helper.to_array(model.graph.initializer[0]).any()  # the input file is untouched
    assert read_model(tmp_path / "m.onnx").graph.tensors()["w1"].values.any()


def test_import_model_from_memory():
    model, feeds = builders.if_outer_scope()
    loaded = import_model(model)
    assert loaded.path is None
    assert_same_outputs(run(export_model(loaded.graph, loaded.meta), feeds), run(model, feeds))


def test_outer_scope_tensors_are_shared_by_name(tmp_path):
    model, _ = builders.if_outer_scope()
    graph = import_model(model).graph
    relu = next(n for n in graph.nodes if n.op == "Relu")
    then = next(n for n in graph.nodes if n.op == "If").attrs["then_branch"]
    matmul = next(n for n in then.nodes if n.op == "MatMul")
    assert matmul.inputs[0] is relu.outputs[0]  # `xs` of the outer graph, the very same object
    reference = gs.import_onnx(model)
    ref_then = next(n for n in reference.nodes if n.op == "If").attrs["then_branch"]
    assert list(then.tensors()) == list(ref_then.tensors())
    written = export_model(graph)
    assert [t.name for t in written.graph.initializer] == ["w"]  # stored once, where it was
    then_proto = next(a.g for a in written.graph.node[1].attribute if a.name == "then_branch")
    assert not then_proto.initializer and not then_proto.value_info


def test_functions_keep_attribute_refs_and_defaults():
    model, feeds = builders.with_function()
    graph = import_model(model).graph
    func = graph.functions[0]
    assert (func.name, func.domain, func.attrs) == ("ScaledLeaky", "custom.fn", {"alpha": None, "unused": 3})
    leaky = func.nodes[0]
    assert leaky.attrs["alpha"] == gs.Node.AttributeRef("alpha", float)
    assert graph.functions is func.functions  # one list, shared, as gs arranges
    assert_same_outputs(run(export_model(graph), feeds), run(model, feeds))


def test_external_data_round_trip(tmp_path):
    model, feeds = builders.mlp(hidden=256)
    builders.save_external(model, tmp_path / "m.onnx", "m.weights", size_threshold=64)
    loaded = read_model(tmp_path / "m.onnx")
    result = write_model(loaded.graph, tmp_path / "out" / "o.onnx", loaded.meta, external_data="o.bin",
                         size_threshold=128)
    assert result.external_data == tmp_path / "out" / "o.bin"
    out = onnx.load(tmp_path / "out" / "o.onnx", load_external_data=False)
    external = [t.name for t in out.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert sorted(external) == ["b1", "w1", "w2"]  # lo (4 bytes) stays inside
    onnx.checker.check_model(str(tmp_path / "out" / "o.onnx"), full_check=True)
    assert_same_outputs(run(tmp_path / "out" / "o.onnx", feeds), run(model, feeds))
    # external in, embedded out
    write_model(loaded.graph, tmp_path / "embedded.onnx", loaded.meta)
    assert_same_outputs(run(tmp_path / "embedded.onnx", feeds), run(model, feeds))


def test_big_external_tensors_are_page_aligned(tmp_path):
    model, _ = builders.mlp(hidden=1024)  # w1 is 64 KiB
    onnx.save(model, tmp_path / "m.onnx")
    loaded = read_model(tmp_path / "m.onnx")
    write_model(loaded.graph, tmp_path / "o.onnx", external_data="o.data", size_threshold=16)
    out = onnx.load(tmp_path / "o.onnx", load_external_data=False)
    offsets = {t.name: int({e.key: e.value for e in t.external_data}["offset"]) for t in out.graph.initializer
               if t.data_location == onnx.TensorProto.EXTERNAL}
    assert offsets["w1"] % 4096 == 0 and offsets["w2"] % 4096 == 0


def test_sparse_initializers_survive(tmp_path):
    values = numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "sp")
    indices = numpy_helper.from_array(np.array([1, 3], np.int64))
    sparse = onnx.helper.make_sparse_tensor(values, indices, [4])
    node = onnx.helper.make_node("Add", ["x", "sp"], ["y"])
    x, y = (onnx.helper.make_tensor_value_info(name, 1, [4]) for name in "xy")
    graph = onnx.helper.make_graph([node], "sparse", [x], [y], sparse_initializer=[sparse])
    model = onnx.helper.make_model(graph, opset_imports=builders.OPSET, ir_version=8)
    out = export_model(import_model(model).graph)
    assert [s.values.name for s in out.graph.sparse_initializer] == ["sp"]
    x = np.ones(4, np.float32)
    assert_same_outputs(run(out, {"x": x}), run(model, {"x": x}))
