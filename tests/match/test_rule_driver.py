"""How rule sets are applied: priority and order, non-overlapping matches, the bounded fixpoint,
subgraphs and functions, naming, determinism, and deep graphs."""

import os
import subprocess
import sys
import time

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from graphdsl.passes.apply_rules import ApplyRules
from matchkit import check, model, node, ops, rewrite
from onnx import helper

from graphdsl.diagnostics import GraphdslError
from graphdsl.match import apply_rules, compile_rules, find_instances
from graphdsl.onnxio import import_model
from graphdsl.pipeline import PassContext


def relu_chain(n: int):
    nodes = [node("Relu", [f"r{i - 1}" if i else "x"], f"r{i}" if i < n - 1 else "y") for i in range(n)]
    return model(nodes, {"x": [3]}, {"y": [3]})


def test_non_overlapping_matches_and_rounds_to_a_fixpoint():
    after, outcome, _ = rewrite("replace Relu(Relu(x)) with Relu(x)", relu_chain(4))
    assert ops(after) == ["Relu"]
    assert outcome.counts == {"<script>:1": 3} and outcome.rounds == 3  # 4 -> 2 -> 1, then a quiet round


def test_priority_then_declaration_order():
    script = """
    rule low { match { y = Relu(Neg(x)) } rewrite { y = Neg(Min(x, 0.0)) } }
    rule high priority 5 { match { y = Relu(Neg(x)) } rewrite { y = Relu(Neg(Identity(x))) } }
    rule same_as_low { match { y = Relu(Neg(x)) } rewrite { y = Neg(Min(x, 1.0)) } }
    """
    m = model([node("Neg", ["x"], "n"), node("Relu", ["n"], "y")], {"x": [3]}, {"y": [3]})
    graph = gs.import_onnx(m)
    outcome = apply_rules(graph, compile_rules(script), max_rounds=1)
    assert outcome.counts == {"high": 1}
    names = [i.rule for i in find_instances(gs.import_onnx(m), compile_rules(script))]
    assert names == ["high", "low", "same_as_low"]


def test_instances_of_a_later_rule_say_they_overlap():
    script = """
    rule a priority 1 { match { y = Relu(Neg(x)) } rewrite { y = Neg(Min(x, 0.0)) } }
    rule b { match { n = Neg(x) } rewrite { n = Mul(x, -1.0) } }
    """
    m = model([node("Neg", ["x"], "n"), node("Relu", ["n"], "y")], {"x": [3]}, {"y": [3]})
    found = find_instances(gs.import_onnx(m), compile_rules(script))
    assert [(i.rule, i.overlaps) for i in found] == [("a", []), ("b", ["a"])]


def test_fixpoint_bound_is_a_warning_naming_the_rule():
    rules = compile_rules("replace Mul(x, Sigmoid(x)) with Mul(x, Sigmoid(x))")
    m = model([node("Sigmoid", ["x"], "s"), node("Mul", ["x", "s"], "y")], {"x": [3]}, {"y": [3]})
    graph, ctx = gs.import_onnx(m), PassContext()
    result = ApplyRules(rules, max_rounds=3).apply(graph, ctx)
    (warning,) = ctx.diagnostics
    assert warning.code == "GDS507" and "<script>:1" in warning.message
    assert warning.severity.value == "warning"
    assert result.counts == {"<script>:1": 3}
    check(m, gs.export_onnx(graph))


def test_rules_apply_inside_if_bodies_with_outer_scope_values():
    then_nodes = [node("Identity", ["x"], "t"), node("Relu", ["t"], "then_out")]
    then_out = [helper.make_tensor_value_info("then_out", 1, [3])]
    then_graph = helper.make_graph(then_nodes, "then", [], then_out)
    else_nodes = [node("Relu", ["n"], "else_out")]
    else_out = [helper.make_tensor_value_info("else_out", 1, [3])]
    else_graph = helper.make_graph(else_nodes, "else", [], else_out)
    branches = {"then_branch": then_graph, "else_branch": else_graph}
    nodes = [node("Neg", ["x"], "n"), node("If", ["cond"], "y", **branches)]
    m = model(nodes, {"x": [3], "cond": ([], onnx.TensorProto.BOOL)}, {"y": [3]})
    script = """
    replace Identity(x) with x
    replace Relu(Neg(x)) with Neg(Min(x, 0.0))
    """
    # the Relu of the else branch reads the outer Neg's output: an input there, never a matched node
    assert [i.rule for i in find_instances(gs.import_onnx(m), compile_rules(script))] == ["<script>:2"]
    graph = gs.import_onnx(m)
    outcome = apply_rules(graph, compile_rules(script))
    after = gs.export_onnx(graph)
    onnx.checker.check_model(after, full_check=True)
    (then_after,) = [a.g for a in after.graph.node[1].attribute if a.name == "then_branch"]
    assert [n.op_type for n in then_after.node] == ["Relu"] and then_after.node[0].input == ["x"]
    assert outcome.counts == {"<script>:2": 1} or outcome.counts.get("<script>:2") is None
    for flag in (True, False):
        feeds = {"x": np.array([-1, 0, 2], np.float32), "cond": np.array(flag)}
        from matchkit import run
        np.testing.assert_allclose(run(after, feeds)[0], run(m, feeds)[0])


def test_rules_apply_inside_local_functions():
    body = [node("Identity", ["a"], "t"), node("Relu", ["t"], "b")]
    function = helper.make_function("local", "f", ["a"], ["b"], body, [helper.make_opsetid("", 17)])
    m = model([node("f", ["x"], "y", domain="local")], {"x": [3]}, {"y": [3]}, functions=[function],
              domains={"local": 1})
    script = "domain \"local\" 1\nreplace Identity(x) with x"
    after, outcome, _ = rewrite(script, m)
    (body,) = after.functions
    assert [n.op_type for n in body.node] == ["Relu"] and body.node[0].input == ["a"]


def test_new_names_are_unique_in_the_model():
    script = "rule r { match { y = Relu(x) } rewrite { y = Relu(Neg(Neg(x))) } }"
    nodes = [node("Neg", ["x"], "r/Neg_out_0", name="r/Neg_1"), node("Relu", ["r/Neg_out_0"], "y")]
    after, _, _ = rewrite(script, model(nodes, {"x": [3]}, {"y": [3]}), max_rounds=1)
    tensors = [o for n in after.graph.node for o in n.output]
    assert len(tensors) == len(set(tensors))
    assert len({n.name for n in after.graph.node}) == len(after.graph.node)


def test_results_do_not_depend_on_hash_seeds():
    code = (
        "import sys; sys.path[:0] = ['tests/match', 'tests']; import onnx_graphsurgeon as gs, hashlib\n"
        "from test_rule_fusions import gelu_model, layernorm_nodes, LAYERNORM, ERF_GELU\n"
        "from graphdsl.match import apply_rules, compile_rules\n"
        "g = gs.import_onnx(layernorm_nodes('mul', 'reciprocal', True))\n"
        "apply_rules(g, compile_rules(LAYERNORM + ERF_GELU))\n"
        "print(hashlib.sha256(gs.export_onnx(g).SerializeToString()).hexdigest())\n")
    digests = set()
    for seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             check=True,
                             cwd=os.path.join(os.path.dirname(__file__), "..", ".."))
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_a_200k_node_chain_needs_no_recursion():
    """x -> Neg -> Identity -> Neg -> Identity ... (200k nodes): identity removal in one round."""
    nodes, previous = [], "x"
    for i in range(100_000):
        nodes += [helper.make_node("Neg", [previous], [f"n{i}"], name=f"neg{i}"),
                  helper.make_node("Identity", [f"n{i}"], [f"i{i}"], name=f"id{i}")]
        previous = f"i{i}"
    chain = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", 1, [3])],
                              [helper.make_tensor_value_info(previous, 1, [3])])
    graph = import_model(helper.make_model(chain, opset_imports=[helper.make_opsetid("", 17)])).graph
    start = time.perf_counter()
    outcome = apply_rules(graph, compile_rules("replace Identity(x) with x"))
    assert time.perf_counter() - start < 30
    assert outcome.counts == {"<script>:1": 100_000} and outcome.rounds == 2
    assert len(graph.nodes) == 100_000 and {n.op for n in graph.nodes} == {"Neg"}
    assert graph.nodes[-1].outputs[0] is graph.outputs[0] and graph.outputs[0].name == "i99999"


def test_a_graph_output_is_never_renamed():
    rules = compile_rules("replace Neg(Neg(x)) with x")
    m = model([node("Neg", ["x"], "n"), node("Neg", ["n"], "y")], {"x": [3]}, {"y": [3]})
    graph = gs.import_onnx(m)
    outcome = apply_rules(graph, rules)
    assert outcome.refused == {"<script>:1": 1} and ops(graph) == ["Neg", "Neg"]


def test_multi_output_rewrites_are_sorted_when_their_inputs_come_later():
    script = "rule two { match { a = Neg(x); b = Sub(x, w) } rewrite { a = Neg(x); b = Neg(Sub(w, x)) } }"
    nodes = [node("Neg", ["x"], "a"), node("Relu", ["x2"], "w"), node("Sub", ["x", "w"], "b")]
    after, _, _ = rewrite(script, model(nodes, {"x": [3], "x2": [3]}, {"a": [3], "b": [3]}), max_rounds=1)
    assert ops(after) == ["Relu", "Neg", "Sub", "Neg"] or sorted(ops(after)) == ["Neg", "Neg", "Relu", "Sub"]


def test_a_rewrite_that_makes_a_cycle_is_an_error_naming_the_rule():
    script = "rule loop { match { a = Relu(x); b = Neg(a) } rewrite { a = Abs(b) } }"
    m = model([node("Relu", ["x"], "a"), node("Neg", ["a"], "b"), node("Add", ["a", "b"], "y")], {"x": [3]},
              {"y": [3]})
    with pytest.raises(GraphdslError) as e:
        apply_rules(gs.import_onnx(m), compile_rules(script))
    assert e.value.diagnostics[0].code == "GDS509" and "`loop`" in e.value.diagnostics[0].message


def test_rules_apply_inside_loop_bodies():
    body_nodes = [node("Identity", ["cond_in"], "cond_out"), node("Neg", ["v_in"], "n"),
                  node("Neg", ["n"], "nn"), node("Add", ["nn", "step"], "v_out")]
    body = helper.make_graph(body_nodes, "body",
                             [helper.make_tensor_value_info("i", onnx.TensorProto.INT64, []),
                              helper.make_tensor_value_info("cond_in", onnx.TensorProto.BOOL, []),
                              helper.make_tensor_value_info("v_in", 1, [3])],
                             [helper.make_tensor_value_info("cond_out", onnx.TensorProto.BOOL, []),
                              helper.make_tensor_value_info("v_out", 1, [3])])
    loop = node("Loop", ["trips", "", "x"], "y", body=body)
    inits = {"trips": np.array(3, np.int64), "step": np.ones(3, np.float32)}
    m = model([loop], {"x": [3]}, {"y": [3]}, inits)
    # Neg(Neg(v)) is v; the Identity writes the body's output `cond_out`, fed by a body input: it stays
    after, outcome, _ = rewrite("replace Neg(Neg(x)) with x\nreplace Identity(x) with x", m)
    (body_after,) = [a.g for a in after.graph.node[0].attribute if a.name == "body"]
    assert [n.op_type for n in body_after.node] == ["Identity", "Add"]
    assert outcome.counts == {"<script>:1": 1} and outcome.refused == {"<script>:2": 1}


def test_matches_sharing_a_kept_node_all_apply_in_one_round():
    """Neg(m) is read by both Adds: no rewrite removes it until the last, so both matches (anchored at the
    one Neg, the rarest op) apply in the first round, and `match` lists both without an overlap."""
    script = "replace Add(x, Neg(m)) with Sub(x, m)"
    nodes = [node("Neg", ["m"], "s"), node("Add", ["a", "s"], "y1"), node("Add", ["b", "s"], "y2")]
    m = model(nodes, {"m": [3], "a": [3], "b": [3]}, {"y1": [3], "y2": [3]})
    found = find_instances(gs.import_onnx(m), compile_rules(script))
    assert [(i.rule, i.overlaps) for i in found] == [("<script>:1", [])] * 2
    after, outcome, _ = rewrite(script, m, max_rounds=1)
    assert ops(after) == ["Sub", "Sub"] and outcome.counts == {"<script>:1": 2} and not outcome.at_bound
