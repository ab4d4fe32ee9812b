"""What patterns match: diamonds, commutativity, alternatives, optional nodes, variadics, attributes,
constants and conditions. Rewrites are checked with onnx.checker and ONNX Runtime (matchkit.rewrite)."""

import time

import numpy as np
import onnx_graphsurgeon as gs
import pytest
from matchkit import const, model, node, ops, rewrite

from graphdsl.match import compile_rules, find_instances


def instances(script: str, m):
    return find_instances(gs.import_onnx(m), compile_rules(script))


def test_the_same_name_twice_is_the_same_value():
    script = "replace Mul(d, d) with Pow(d, 2.0)"
    nodes = [node("Mul", ["x", "x"], "sq"), node("Mul", ["x", "z"], "xz"), node("Add", ["sq", "xz"], "y")]
    after, outcome, _ = rewrite(script, model(nodes, {"x": [3], "z": [3]}, {"y": [3]}))
    assert ops(after) == ["Pow", "Mul", "Add"]


def test_fan_out_diamond_is_one_value():
    script = """
    rule centered {
      match { d = Sub(x, m); y = Div(d, Sqrt(Mul(d, d))) }
      rewrite { y = Sign(d) }
    }"""
    good = [node("Sub", ["x", "m"], "d"), node("Mul", ["d", "d"], "q"), node("Sqrt", ["q"], "s"),
            node("Div", ["d", "s"], "y")]
    assert len(instances(script, model(good, {"x": [4], "m": [4]}, {"y": [4]}))) == 1
    other = good[:1] + [node("Sub", ["x", "m"], "d2"), node("Mul", ["d2", "d2"], "q"),
                        node("Sqrt", ["q"], "s"),
                        node("Div", ["d", "s"], "y")]
    assert instances(script, model(other, {"x": [4], "m": [4]}, {"y": [4]})) == []


def test_commutative_nodes_cost_choices_not_clones():
    # 2^10 operand orders in a chain of Adds: one program per anchor, and matching stays fast
    chain = "; ".join(f"a{i} = Add(c{i}, {f'a{i - 1}' if i else 'x'})" for i in range(10))
    terms = ", ".join(["x"] + [f"c{i}" for i in range(10)])
    script = f"rule chain {{ match {{ {chain} }} rewrite {{ a9 = Sum({terms}) }} }}"
    (rule,) = compile_rules(script)
    assert len(rule.programs) == len(rule.pattern.mandatory()) == 10
    previous = ["x"] + [f"a{i}" for i in range(9)]
    orders = [[previous[i], f"c{i}"] if i % 2 else [f"c{i}", previous[i]] for i in range(10)]
    nodes = [node("Add", inputs, f"a{i}") for i, inputs in enumerate(orders)]
    m = model(nodes, {"x": [2], **{f"c{i}": [2] for i in range(10)}}, {"a9": [2]})
    start = time.perf_counter()
    after, _, _ = rewrite(script, m)
    assert ops(after) == ["Sum"] and time.perf_counter() - start < 2


def test_alternatives_and_which_branch_matched():
    script = """
    rule square {
      match { y = ReduceMean(sq: Pow(d, 2.0) | Mul(d, d), axes=[-1]) where branch(sq) == 1 }
      rewrite { y = ReduceSumSquare(d, axes=[-1]) }
    }"""
    pow_model = model([node("Pow", ["x", "two"], "p"), node("ReduceMean", ["p"], "y", axes=[-1])],
                      {"x": [2, 1]}, {"y": [2, 1]}, {"two": np.float32(2)})
    mul_model = model([node("Mul", ["x", "x"], "p"), node("ReduceMean", ["p"], "y", axes=[-1])],
                      {"x": [2, 1]}, {"y": [2, 1]})
    assert instances(script, pow_model) == []
    (found,) = instances(script, mul_model)
    assert found.captures["branch(sq)"] == "1"


def test_optional_node_present_or_absent():
    script = """
    rule softmax_cast {
      match { c = Cast?(x); y = Softmax(c, axis=-1) }
      where not present(c) or dtype(x) == float32
      rewrite { y = Softmax(x, axis=-1) }
    }"""
    with_cast = model([node("Cast", ["x"], "c", to=1), node("Softmax", ["c"], "y", axis=-1)], {"x": [2, 3]},
                      {"y": [2, 3]})
    without = model([node("Softmax", ["x"], "y", axis=-1)], {"x": [2, 3]}, {"y": [2, 3]})
    assert instances(script, with_cast)[0].captures["branch(c)"] == "0"
    assert instances(script, without)[0].captures["branch(c)"] == "1"
    after, _, _ = rewrite(script, with_cast)
    assert ops(after) == ["Softmax"]


def test_variadic_inputs_and_outputs():
    script = """
    rule concat_split {
      match { Split(x, axis=0) -> (a, b, rest...); y = Concat(a, b, xs..., axis=0) }
      where len(xs) == len(rest)
      rewrite { y = Identity(x) }
    }"""
    split = node("Split", ["x"], ["s0", "s1", "s2"], axis=0, num_outputs=3)
    nodes = [split, node("Concat", ["s0", "s1", "s2"], "y", axis=0)]
    m = model(nodes, {"x": [6]}, {"y": [6]}, opset=18)
    (found,) = instances(script, m)
    assert found.captures["rest"] == "[s2]" and found.captures["xs"] == "[s2]"
    after, _, _ = rewrite(script, m)
    assert ops(after) == ["Identity"]


def test_named_outputs_without_rest_need_exactly_that_many():
    script = "rule two { match { Split(x) -> (a, b); y = Add(a, b) } rewrite { y = Identity(x) } }"
    three = model([node("Split", ["x"], ["a", "b", "c"], num_outputs=3), node("Add", ["a", "b"], "y")],
                  {"x": [6]}, {"y": [2]}, opset=18)
    assert instances(script, three) == []


def test_attribute_capture_must_agree():
    script = """
    rule same_perm {
      match { t = Transpose(x, perm=p); y = Transpose(t, perm=p) }
      rewrite { y = Identity(x) }
    }
    """
    agree = model([node("Transpose", ["x"], "t", perm=[1, 0]), node("Transpose", ["t"], "y", perm=[1, 0])],
                  {"x": [2, 3]}, {"y": [2, 3]})
    differ = model([node("Transpose", ["x"], "t", perm=[0, 2, 1]),
                    node("Transpose", ["t"], "y", perm=[1, 0, 2])],
                   {"x": [2, 3, 4]}, {"y": [4, 2, 3]})
    assert len(instances(script, agree)) == 1 and instances(script, differ) == []


def test_attribute_defaults_and_float_attributes():
    script = """
    replace LeakyRelu(x, alpha=0.01) with Relu(x)
    replace Softmax(x, axis=-1) with Identity(x)
    """
    m = model([node("LeakyRelu", ["x"], "a"), node("Softmax", ["a"], "y")], {"x": [2, 3]}, {"y": [2, 3]})
    found = instances(script, m)
    # alpha 0.01 compares as float32; Softmax's axis is the default -1
    assert [f.nodes[0][0] for f in found] == ["LeakyRelu", "Softmax"]


def test_literals_compare_in_the_constants_type_and_need_one_element():
    script = "replace Mul(x, 0.1) with Identity(x)"
    f32 = model([node("Mul", ["x", "c"], "y")], {"x": [3]}, {"y": [3]}, {"c": np.float32(0.1)})
    vector = model([node("Mul", ["x", "c"], "y")], {"x": [3]}, {"y": [3]}, {"c": np.full(3, 0.1, np.float32)})
    assert len(instances(script, f32)) == 1
    assert instances(script, vector) == []
    int_script = "replace Add(x, 2.5) with Identity(x)"
    ints = model([node("Add", ["x", "c"], "y")], {"x": [3]}, {"y": [3]}, {"c": np.int64(2)},
                 dtype=7)
    assert instances(int_script, ints) == []


def test_constants_through_constant_nodes_and_foldable_chains():
    script = "replace Div(x, c) where c ~= 1.41421356 tol 1e-6 with Mul(x, 0.70710678)"
    chain = [const("two", 2.0), node("Sqrt", ["two"], "s"), node("Cast", ["s"], "c", to=1),
             node("Div", ["x", "c"], "y")]
    after, _, _ = rewrite(script, model(chain, {"x": [3]}, {"y": [3]}))
    assert ops(after) == ["Mul"]


def test_tolerances_are_relative_and_only_where_stated():
    eps = model([node("Add", ["x", "e"], "y")], {"x": [3]}, {"y": [3]}, {"e": np.float32(1e-12)})
    assert instances("replace Add(x, 0.0) with Identity(x)", eps) == []
    assert instances("replace Add(x, c) where c ~= 0.0 tol 1e-3 with Identity(x)",
                     eps) == []  # 0 has no rel tol
    assert len(instances("replace Add(x, c) where c ~= 1e-12 with Identity(x)", eps)) == 1
    assert instances("replace Add(x, c) where c ~= 1.1e-12 tol 0.01 with Identity(x)", eps) == []


def test_one_consumer_rank_shape_and_dtype_conditions():
    script = """
    rule single { match { s = Sigmoid(x); y = Mul(x, s) where (uses(s) == 1 and rank(x) == 2
                          and shape(x)[-1] == 4 and dtype(x) == float32) } rewrite { y = Identity(x) } }
    """
    once = model([node("Sigmoid", ["x"], "s"), node("Mul", ["x", "s"], "y")], {"x": [3, 4]}, {"y": [3, 4]})
    twice = model([node("Sigmoid", ["x"], "s"), node("Mul", ["x", "s"], "m"), node("Add", ["m", "s"], "y")],
                  {"x": [3, 4]}, {"y": [3, 4]})
    assert len(instances(script, once)) == 1 and instances(script, twice) == []
    square = "rule sq { match { s = Sigmoid(x); y = Mul(s, s) where uses(s) == 1 } rewrite { y = Relu(x) } }"
    squared = model([node("Sigmoid", ["x"], "s"), node("Mul", ["s", "s"], "y")], {"x": [3]}, {"y": [3]})
    assert len(instances(square, squared)) == 1  # one node reading it twice is one use


def test_shapes_come_from_shape_inference_when_the_model_has_none():
    script = "replace Relu(r: Relu(x)) where shape(r) == [2, 5] with Relu(x)"
    nodes = [node("MatMul", ["x", "w"], "m"), node("Relu", ["m"], "r1"), node("Relu", ["r1"], "y")]
    m = model(nodes, {"x": [2, 3]}, {"y": [2, 5]}, {"w": np.ones((3, 5), np.float32)})
    assert len(instances(script, m)) == 1


def test_symbolic_dims_compare_by_name():
    script = "replace y: Relu(Relu(x)) where shape(x) == shape(y) with Relu(x)"
    m = model([node("Relu", ["x"], "r"), node("Relu", ["r"], "y")], {"x": ["batch", 4]}, {"y": ["batch", 4]})
    assert len(instances(script, m)) == 1


def test_matched_node_used_elsewhere_stays():
    script = "replace Relu(Neg(x)) with Neg(Min(x, 0.0))"
    nodes = [node("Neg", ["x"], "n"), node("Relu", ["n"], "r"), node("Add", ["r", "n"], "y")]
    after, _, _ = rewrite(script, model(nodes, {"x": [3]}, {"y": [3]}))
    assert ops(after) == ["Neg", "Min", "Neg", "Add"]


@pytest.mark.parametrize("seed", range(4))
def test_any_operand_order_matches(seed):
    """Property: shuffling the inputs of every commutative node keeps the rule matching."""
    rng = np.random.default_rng(seed)

    def pair(a, b):
        return [a, b] if rng.random() < 0.5 else [b, a]
    nodes = [node("Div", ["x", "c"], "d"), node("Erf", ["d"], "e"), node("Add", pair("e", "one"), "a"),
             node("Mul", pair("x", "a"), "m"), node("Mul", pair("m", "half"), "y")]
    inits = {"c": np.float32(1.4142135), "one": np.float32(1), "half": np.float32(0.5)}
    script = """rule g {
      match { d = Div(x, c) where c ~= 1.41421356 tol 1e-6; y = Mul(Mul(x, Add(Erf(d), 1.0)), 0.5) }
      rewrite { y = Gelu(x) }
    }"""
    after, _, _ = rewrite(script, model(nodes, {"x": [4]}, {"y": [4]}, inits, opset=20))
    assert ops(after) == ["Gelu"]


def test_a_root_alternative_reached_from_a_mandatory_node():
    script = """
    rule silu {
      match { s = Sigmoid(x); y = Mul(x, s) | Div(x, Reciprocal(s)) }
      rewrite { y = com.microsoft::QuickGelu(x, alpha=1.0) }
    }"""
    nodes = [node("Sigmoid", ["x"], "s"), node("Reciprocal", ["s"], "r"), node("Div", ["x", "r"], "y")]
    after, _, _ = rewrite(script, model(nodes, {"x": [3]}, {"y": [3]}))
    assert ops(after) == ["QuickGelu"]


def test_an_absent_optional_node_is_not_replaced():
    script = "rule opt { match { c = Cast?(x); y = Softmax(c) } rewrite { c = Identity(x) } }"
    m = model([node("Softmax", ["x"], "y")], {"x": [3]}, {"y": [3]})
    after, outcome, _ = rewrite(script, m)
    assert ops(after) == ["Softmax"] and outcome.refused == {"opt": 1}


def test_explain_names_the_readers_of_a_value_with_extra_consumers():
    from graphdsl.match import explain

    (rule,) = compile_rules("rule one { match { s = Sigmoid(x); y = Mul(x, s) where uses(s) == 1 } "
                            "rewrite { y = Identity(x) } }")
    m = model([node("Sigmoid", ["x"], "s"), node("Mul", ["x", "s"], "m"), node("Add", ["m", "s"], "y")],
              {"x": [3]}, {"y": [3]})
    best = explain(gs.import_onnx(m), rule).best
    assert best.kind == "predicate" and "`s` is read by 2 node(s) (Mul m, Add y)" in best.message


def test_a_literal_never_reads_a_weight_of_another_size(tmp_path):
    """`Add(x, 0.0)` against a 4 MB external weight is refused by the weight's shape: its data file is
    emptied before the rules run, so reading it would fail."""
    import onnx

    from graphdsl.match import apply_rules
    from graphdsl.onnxio import read_model

    weight = np.zeros((1024, 1024), np.float32)
    m = model([node("Add", ["x", "w"], "y")], {"x": [1024, 1024]}, {"y": [1024, 1024]}, {"w": weight})
    onnx.save(m, tmp_path / "m.onnx", save_as_external_data=True, location="m.data", size_threshold=0)
    loaded = read_model(tmp_path / "m.onnx")
    (tmp_path / "m.data").write_bytes(b"")
    outcome = apply_rules(loaded.graph, compile_rules("replace Add(x, 0.0) with x"))
    assert not outcome.counts and [n.op for n in loaded.graph.nodes] == ["Add"]


def test_constant_resolution_never_reads_a_weight_too_big_to_fold(tmp_path):
    """`Add(x, 0.0)` asks whether Gather(w, ids) is a constant: w (4 MB, over the fold limit) is never read
    to find out (its data file is emptied before the rules run)."""
    import onnx

    from graphdsl.match import apply_rules
    from graphdsl.onnxio import read_model

    m = model([node("Gather", ["w", "ids"], "g"), node("Add", ["x", "g"], "y")],
              {"x": [2, 1024], "ids": ([2], onnx.TensorProto.INT64)}, {"y": [2, 1024]},
              {"w": np.zeros((1100, 1024), np.float32)})
    onnx.save(m, tmp_path / "m.onnx", save_as_external_data=True, location="m.data", size_threshold=0)
    loaded = read_model(tmp_path / "m.onnx")
    (tmp_path / "m.data").write_bytes(b"")
    outcome = apply_rules(loaded.graph, compile_rules("replace Add(x, 0.0) with x"))
    assert not outcome.counts and [n.op for n in loaded.graph.nodes] == ["Gather", "Add"]
