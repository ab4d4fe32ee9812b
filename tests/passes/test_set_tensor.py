"""SetTensor: shapes, dtypes and single dims of graph inputs/outputs; names must be graph I/O."""

import numpy as np
import pytest
from helpers import apply, assert_numerically_equal, codes, export, make_model, node, random_feeds, run_ort, value

from graphdsl.diagnostics import ModelError, ScriptError
from graphdsl.passes.set_tensor import SetTensor


def model():
    return make_model([node("Relu", ["images"], ["a"]), node("Neg", ["a"], ["y"])],
                      [value("images", [1, 3, 8, 8])], [value("y", [1, 3, 8, 8])])


def test_set_shape_and_dims():
    before = model()
    graph, result, _ = apply(SetTensor("input", "images", shape=["N", 3, "H", "W"]), before)
    assert graph.inputs[0].shape == ["N", 3, "H", "W"] and result.changed
    graph, _, _ = apply(SetTensor("output", "y", dims={0: "N", -1: None}), graph)
    assert graph.outputs[0].shape == ["N", 3, 8, None]
    after = export(graph)
    feeds = {"images": np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)}
    np.testing.assert_allclose(run_ort(after, feeds)["y"], -np.maximum(feeds["images"], 0))


def test_set_dtype():
    m = make_model([node("Identity", ["x"], ["y"])], [value("x", [2])], [value("y", [2])])
    graph, _, _ = apply(SetTensor("input", "x", dtype="float16"), m)
    graph, _, _ = apply(SetTensor("output", "y", dtype="float16"), graph)
    assert graph.inputs[0].dtype == np.float16
    after = export(graph)
    assert after.graph.input[0].type.tensor_type.elem_type == 10


def test_unchanged_when_equal():
    before = model()
    graph, result, _ = apply(SetTensor("input", "images", shape=[1, 3, 8, 8]), before)
    assert not result.changed
    assert_numerically_equal(before, export(graph), random_feeds(before))


def test_not_a_graph_input_names_the_inputs():
    with pytest.raises(ModelError) as e:
        apply(SetTensor("input", "a", shape=[1]), model())
    d = e.value.diagnostics[0]
    assert d.code == "GDS315" and d.message == "tensor `a` is not a graph input" and "images" in d.hints[0]
    with pytest.raises(ModelError) as e:
        apply(SetTensor("input", "image", shape=[1]), model())
    d = e.value.diagnostics[0]
    assert d.message == "the graph has no input `image`" and "did you mean `images`" in d.label


def test_dim_out_of_range():
    with pytest.raises(ModelError) as e:
        apply(SetTensor("input", "images", dims={4: 1}), model())
    assert codes(e.value) == ["GDS316"] and "rank 4" in e.value.diagnostics[0].message


def test_bad_kind_and_bad_dtype():
    with pytest.raises(ScriptError) as e:
        apply(SetTensor("inout", "images"), model())
    assert codes(e.value) == ["GDS115"]
    with pytest.raises(ScriptError) as e:
        apply(SetTensor("input", "images", dtype="flaot16"), model())
    assert codes(e.value) == ["GDS110"]


def test_static_check_reports_kind_and_name_together():
    from helpers import static_check

    scope = static_check(SetTensor("inout", "imags"), model())
    assert [d.code for d in scope.diagnostics] == ["GDS115", "GDS104"]
