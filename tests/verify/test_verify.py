"""verify(): real ONNX Runtime sessions on small models built with onnx.helper."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphdsl import verify as verify_module
from graphdsl.diagnostics import ModelError
from graphdsl.verify import INT_HIGH, VerifySettings, save_external, tolerances, verify

F = TensorProto.FLOAT


def make(nodes, inputs, outputs, inits=(), opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def io(name, shape, dtype=F):
    return helper.make_tensor_value_info(name, dtype, shape)


def const(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def reference(c=1.0, shape=(2, 4)) -> onnx.ModelProto:
    """y = 2 * relu(x + c), with h = x + c and r = relu(h) as intermediates."""
    nodes = [helper.make_node("Add", ["x", "c"], ["h"], name="add"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Mul", ["r", "two"], ["y"], name="mul")]
    inits = [const("c", [c] * shape[-1]), const("two", 2.0)]
    return make(nodes, [io("x", list(shape))], [io("y", list(shape))], inits)


def expected(x, c=1.0):
    return 2 * np.maximum(x + np.float32(c), 0)


def first_sample(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(list(shape)).astype(np.float32)


def test_identical_model_passes_with_zero_error():
    result = verify(reference(), reference())
    (out,) = result.outputs
    assert result.passed and out.passed
    assert (out.name, out.reference_name, out.shape, out.dtype) == ("y", "y", [2, 4], "float32")
    assert out.max_abs == 0.0 and out.max_rel == 0.0 and out.cosine == pytest.approx(1.0)
    assert out.noise == 0.0 and out.rtol == 1e-4


def test_derived_atol_follows_the_formula():
    (out,) = verify(reference(), reference()).outputs
    max_ref = float(np.abs(expected(first_sample((2, 4)))).max())
    assert out.atol == pytest.approx(max(4 * out.noise, 1e-5 * max_ref, 1e-6))


def test_tolerance_formula_terms():
    settings = VerifySettings()
    assert tolerances(settings, 1e-3, 1.0) == (pytest.approx(4e-3), 1e-4)
    assert tolerances(settings, 0.0, 1e4) == (pytest.approx(0.1), 1e-4)
    assert tolerances(settings, 0.0, 0.0) == (1e-6, 1e-4)
    assert tolerances(VerifySettings(atol=0.5, rtol=0.25), 1.0, 1.0) == (0.5, 0.25)


def test_perturbed_constant_fails_with_the_right_numbers():
    result = verify(reference(1.0), reference(1.5))
    (out,) = result.outputs
    x = first_sample((2, 4))
    want, got = expected(x, 1.0).astype(np.float64), expected(x, 1.5).astype(np.float64)
    nonzero = want != 0
    assert not result.passed and not out.passed
    assert out.max_abs == pytest.approx(np.abs(got - want).max())
    assert out.max_rel == pytest.approx((np.abs(got - want)[nonzero] / np.abs(want[nonzero])).max())
    cosine = got.ravel() @ want.ravel() / np.linalg.norm(got) / np.linalg.norm(want)
    assert out.cosine == pytest.approx(cosine)


def test_explicit_tolerances_decide_and_skip_the_noise_run():
    result = verify(reference(1.0), reference(1.5), VerifySettings(atol=2.0, rtol=0.0))
    (out,) = result.outputs
    assert result.passed and out.noise is None and (out.atol, out.rtol) == (2.0, 0.0)


def test_samples_are_deterministic_and_counted():
    a = verify(reference(1.0), reference(1.5), VerifySettings(samples=3, seed=7)).to_json()
    b = verify(reference(1.0), reference(1.5), VerifySettings(samples=3, seed=7)).to_json()
    c = verify(reference(1.0), reference(1.5), VerifySettings(samples=3, seed=8)).to_json()
    for j in (a, b, c):
        j.pop("timings")
    assert a == b and a["samples"] == 3 and a != c


def head() -> onnx.ModelProto:
    """The first node of `reference`, as `extract outputs h` leaves it."""
    add = helper.make_node("Add", ["x", "c"], ["h"], name="add")
    return make([add], [io("x", [2, 4])], [io("h", [2, 4])], [const("c", [1.0] * 4)])


def tail(scale=2.0) -> onnx.ModelProto:
    """The last two nodes, as `extract inputs h` leaves them."""
    nodes = [helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Mul", ["r", "two"], ["y"], name="mul")]
    return make(nodes, [io("h", [2, 4])], [io("y", [2, 4])], [const("two", scale)])


def test_intermediate_output_is_marked_on_the_reference():
    ref = reference()
    before = ref.SerializeToString()
    result = verify(ref, head())
    assert result.passed and result.outputs[0].reference_name == "h"
    assert "intermediate tensors of the input model compared or fed: h" in result.messages
    assert ref.SerializeToString() == before


def test_intermediate_input_is_fed_from_the_reference():
    assert verify(reference(), tail()).passed
    bad = verify(reference(), tail(scale=3.0))
    x = first_sample((2, 4))
    assert not bad.passed
    assert bad.outputs[0].max_abs == pytest.approx(np.abs(expected(x) / 2).max())


def renamed() -> onnx.ModelProto:
    nodes = [helper.make_node("Add", ["input", "c"], ["hidden"], name="add"),
             helper.make_node("Relu", ["hidden"], ["r"], name="relu"),
             helper.make_node("Mul", ["r", "two"], ["out"], name="mul")]
    return make(nodes, [io("input", [2, 4])], [io("out", [2, 4]), io("hidden", [2, 4])],
                [const("c", [1.0] * 4), const("two", 2.0)])


def test_renames_map_candidate_names_back():
    result = verify(reference(), renamed(), renames={"out": "y", "hidden": "h", "input": "x"})
    assert result.passed
    assert [(o.name, o.reference_name) for o in result.outputs] == [("out", "y"), ("hidden", "h")]


def test_output_without_counterpart_fails_with_a_note():
    result = verify(reference(), renamed(), renames={"input": "x"})
    assert not result.passed
    out = result.outputs[0]
    assert out.name == "out" and out.reference_name == "" and out.max_abs == np.inf
    assert np.isnan(out.cosine)
    assert "no counterpart" in out.note and out.shape == [2, 4]


def test_new_input_gets_random_data_and_a_message():
    result = verify(reference(), renamed())
    assert "input `input` has no counterpart in the input model: fed random data" in result.messages


def half_input(shape) -> onnx.ModelProto:
    """`set input x dtype float16`: x arrives in float16 and is cast up."""
    nodes = [helper.make_node("Cast", ["x"], ["x32"], to=F, name="cast"),
             helper.make_node("Add", ["x32", "c"], ["h"], name="add"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Mul", ["r", "two"], ["y"], name="mul")]
    return make(nodes, [io("x", shape, TensorProto.FLOAT16)], [io("y", shape)], [const("c", [1.0] * 4),
                                                                               const("two", 2.0)])


def test_input_dtype_change_compares_on_the_same_values():
    result = verify(reference(), half_input([2, 4]))
    assert result.passed and result.outputs[0].max_abs == 0.0


def test_symbolic_batch_takes_the_reference_size_or_dims():
    result = verify(reference(), half_input(["batch", 4]))
    assert result.passed and result.outputs[0].shape == [2, 4]
    both_symbolic = verify(reference(shape=("n", 4)), half_input(["batch", 4]),
                           VerifySettings(dims={"batch": 3}))
    assert both_symbolic.passed and both_symbolic.outputs[0].shape == [3, 4]
    default = verify(reference(shape=("n", 4)), reference(shape=("n", 4)))
    assert default.outputs[0].shape == [1, 4]


def no_relu() -> onnx.ModelProto:
    nodes = [helper.make_node("Add", ["x", "c"], ["h"], name="add"),
             helper.make_node("Mul", ["h", "two"], ["y"], name="mul")]
    return make(nodes, [io("x", [2, 4])], [io("y", [2, 4])], [const("c", [1.0] * 4), const("two", 2.0)])


def test_user_npz_data_with_a_sample_axis(tmp_path):
    """Relu dropped: equal on positive data only, so the verdict shows which data ran."""
    path = tmp_path / "calib.npz"
    np.savez(path, x=np.abs(np.random.default_rng(1).standard_normal((5, 2, 4))).astype(np.float32))
    result = verify(reference(), no_relu(), VerifySettings(data=path, samples=1))
    assert result.passed and result.samples == 5
    assert "5 samples, data from calib.npz" in result.messages
    assert not verify(reference(), no_relu(), VerifySettings(samples=4)).passed


def test_user_npy_data_single_sample(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, -2 * np.ones((2, 4), np.float64))  # cast to the input's float32
    result = verify(reference(), no_relu(), VerifySettings(data=path))
    assert not result.passed and result.samples == 1
    assert result.outputs[0].max_abs == pytest.approx(2.0)


def test_npz_with_unknown_input_name(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, xx=np.zeros((2, 4), np.float32))
    with pytest.raises(ModelError) as e:
        verify(reference(), reference(), VerifySettings(data=path))
    (d,) = e.value.diagnostics
    assert d.code == "GDS403" and "`xx`" in d.message and d.hints == ("did you mean `x`?",)


def test_npy_data_with_the_wrong_rank(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((4,), np.float32))
    with pytest.raises(ModelError) as e:
        verify(reference(), reference(), VerifySettings(data=path))
    assert e.value.diagnostics[0].code == "GDS403" and "rank 2" in e.value.diagnostics[0].message


def int_model() -> onnx.ModelProto:
    """Gather with an int64 index input: random ints must stay in range."""
    nodes = [helper.make_node("Gather", ["table", "idx"], ["y"], name="gather", axis=0)]
    return make(nodes, [io("idx", [16], TensorProto.INT64)], [io("y", [16, 2])],
                [const("table", np.arange(2 * INT_HIGH).reshape(INT_HIGH, 2))])


def test_integer_inputs_are_small_and_non_negative():
    result = verify(int_model(), int_model())
    assert result.passed and result.outputs[0].shape == [16, 2]


def nan_model(abs_first: bool) -> onnx.ModelProto:
    nodes = [helper.make_node("Abs", ["x"], ["a"], name="abs"),
             helper.make_node("Log", ["a"], ["y"], name="log")]
    if not abs_first:
        nodes = [helper.make_node("Log", ["x"], ["y"], name="log")]
    return make(nodes, [io("x", [2, 4])], [io("y", [2, 4])])


def test_nan_positions_must_match():
    assert verify(nan_model(False), nan_model(False)).passed
    result = verify(nan_model(False), nan_model(True))
    assert not result.passed and result.outputs[0].note == "NaN at different positions"


def test_ort_cannot_load_the_result():
    bad = make([helper.make_node("Foo", ["x"], ["y"], name="foo0")], [io("x", [2, 4])], [io("y", [2, 4])])
    with pytest.raises(ModelError) as e:
        verify(reference(), bad)
    (d,) = e.value.diagnostics
    assert d.code == "GDS402" and d.message.startswith("ONNX Runtime cannot load the result: ")
    assert d.location == "result: node 'foo0' (Foo)" and d.hints and "\n" not in d.message


def test_input_model_that_does_not_run():
    bad = make([helper.make_node("Foo", ["x"], ["y"], name="foo0")], [io("x", [2, 4])], [io("y", [2, 4])])
    with pytest.raises(ModelError) as e:
        verify(bad, reference())
    (d,) = e.value.diagnostics
    assert d.code == "GDS402" and d.message.startswith("the input model itself does not run in ONNX Runtime")


def test_result_that_fails_at_run_time_fails_verification():
    """Reshaped to a size the data does not have: loads, fails only when run, while the input model runs."""
    shape = const("s", [3, 3], np.int64)
    bad = make([helper.make_node("Reshape", ["x", "s"], ["y"], name="reshape")], [io("x", [2, 4])],
               [io("y", [3, 3])], [shape])
    result = verify(reference(), bad)
    (out,) = result.outputs
    assert not result.passed and out.note == "the result failed to run" and out.max_abs == np.inf
    assert (out.shape, out.dtype, out.noise) == ([3, 3], "float32", None)  # as declared: never computed
    failure = result.messages[-1]
    assert failure.startswith("ONNX Runtime failed running the result (result: node 'reshape' (Reshape)): ")
    assert "The input tensor cannot be reshaped to the requested shape" in failure
    assert "onnxruntime_src" not in failure and "Status Message" not in failure


def test_input_model_that_fails_at_run_time():
    shape = const("s", [3, 3], np.int64)
    bad = make([helper.make_node("Reshape", ["x", "s"], ["y"], name="reshape")], [io("x", [2, 4])],
               [io("y", [3, 3])], [shape])
    with pytest.raises(ModelError) as e:
        verify(bad, reference())
    (d,) = e.value.diagnostics
    assert d.code == "GDS402" and d.location == "input model: node 'reshape' (Reshape)"
    assert "verify shape" in d.hints[0]


def test_models_given_as_paths_with_external_data(tmp_path):
    ref_path, cand_path = tmp_path / "ref.onnx", tmp_path / "cand.onnx"
    onnx.save_model(reference(), ref_path, save_as_external_data=True, location="ref.data", size_threshold=0)
    onnx.save_model(tail(), cand_path)
    assert verify(ref_path, cand_path).passed


def test_oversized_protos_go_through_external_data(monkeypatch):
    monkeypatch.setattr(verify_module, "PROTO_LIMIT", 16)
    ref, cand = reference(), tail(scale=3.0)
    before = (ref.SerializeToString(), cand.SerializeToString())
    result = verify(ref, cand)
    assert not result.passed and result.outputs[0].max_abs > 0
    assert (ref.SerializeToString(), cand.SerializeToString()) == before


def test_save_external_leaves_the_proto_unchanged(tmp_path):
    model = reference()
    before = model.SerializeToString()
    save_external(model, tmp_path / "m.onnx", threshold=0)
    assert model.SerializeToString() == before
    assert (tmp_path / "m.data").stat().st_size == 4 * 4 + 4
    loaded = onnx.load(tmp_path / "m.onnx")
    assert numpy_helper.to_array(loaded.graph.initializer[0]).tolist() == [1.0] * 4


def test_progress_reports_fractions():
    seen = []
    verify(reference(), reference(), VerifySettings(samples=2), progress=lambda d, f: seen.append((d, f)))
    assert seen[0] == ("verify: loading models", 0.0) and seen[-1] == ("verify: done", 1.0)
    assert ("verify: sample 2/2", 0.5) in seen


def test_json_keys_and_non_finite_floats():
    result = verify(reference(), renamed(), renames={"input": "x"})
    j = result.to_json()
    assert list(j) == ["passed", "samples", "outputs", "messages", "timings"]
    assert list(j["outputs"][0]) == ["name", "reference_name", "shape", "dtype", "max_abs", "max_rel",
                                     "cosine", "noise", "atol", "rtol", "passed", "note"]
    assert verify_module._json_float(float("inf")) == "inf"
    assert verify_module._json_float(float("nan")) == "nan"
