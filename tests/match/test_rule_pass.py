"""Rules in scripts: rule sets as passes, run and verified end to end like any other statement."""

import numpy as np
import onnx
from graphdsl.passes.apply_rules import ApplyRules
from matchkit import MS, model, node, rewrite
from onnx import helper

import graphdsl


def gelu_file(tmp_path, opset=20):
    inits = {"c": np.float32(1.4142135), "one": np.float32(1), "half": np.float32(0.5)}
    nodes = [node("Div", ["x", "c"], "d"), node("Erf", ["d"], "e"), node("Add", ["e", "one"], "a"),
             node("Mul", ["x", "a"], "m"), node("Mul", ["m", "half"], "y")]
    path = tmp_path / "gelu.onnx"
    onnx.save(model(nodes, {"x": [2, 8]}, {"y": [2, 8]}, inits, opset=opset), path)
    return path


RULES = """
rule erf_gelu {
  match {
    d = Div(x, c) where c ~= 1.41421356 tol 1e-6
    y = Mul(Mul(x, Add(Erf(d), 1.0)), 0.5)
  }
  rewrite { y = Gelu(x) }
}
replace Relu(Relu(x)) with Relu(x)
"""


def test_consecutive_rules_form_one_pass_per_file():
    pipeline = graphdsl.compile(RULES + "cleanup\nreplace Neg(Neg(x)) with x\n")
    kinds = [type(p).__name__ for p in pipeline.passes]
    assert kinds == ["ApplyRules", "Cleanup", "ApplyRules"]
    assert [r.name for r in pipeline.passes[0].rules] == ["erf_gelu", "<script>:9"]
    assert pipeline.passes[0].span.text == "rule erf_gelu"


def test_a_script_with_rules_runs_verifies_and_reports(tmp_path):
    path = gelu_file(tmp_path)
    out = tmp_path / "out.onnx"
    result = graphdsl.compile(RULES).run(path, output=out)
    assert result.passed and out.exists()
    assert [n.op_type for n in onnx.load(out).graph.node] == ["Gelu"]
    (record,) = result.report.passes
    assert record.counts == {"erf_gelu": 1}


def test_an_unavailable_rewrite_is_a_note_in_the_report(tmp_path):
    path = gelu_file(tmp_path, opset=17)
    result = graphdsl.compile(RULES).run(path)
    assert result.passed
    assert any("erf_gelu not applied" in note and "opset" in note for note in result.report.passes[0].notes)


def test_the_fixpoint_warning_reaches_the_report(tmp_path):
    path = gelu_file(tmp_path)
    script = "replace Mul(x, a: Add(Erf(d), 1.0)) with Mul(a, x)\n"
    result = graphdsl.compile(script).run(path)
    assert result.passed
    assert [d.code for d in result.report.diagnostics if d.code.startswith("GDS5")] == ["GDS507"]


def test_new_nodes_inside_a_function_import_their_domain():
    body = [node("Sigmoid", ["a"], "s"), node("Mul", ["a", "s"], "b")]
    function = helper.make_function("local", "f", ["a"], ["b"], body, [helper.make_opsetid("", 17)])
    m = model([node("f", ["x"], "y", domain="local")], {"x": [3]}, {"y": [3]}, functions=[function],
              domains={"local": 1})
    script = 'domain "local" 1\nreplace Mul(x, Sigmoid(x)) with com.microsoft::QuickGelu(x, alpha=1.0)'
    after, _, _ = rewrite(script, m)
    (fn,) = after.functions
    assert [(n.domain, n.op_type) for n in fn.node] == [(MS, "QuickGelu")]
    assert MS in {o.domain for o in fn.opset_import} and MS in {o.domain for o in after.opset_import}


def test_apply_rules_is_a_pass_with_parameters():
    rules = graphdsl.compile(RULES).passes[0].rules
    p = ApplyRules(rules, max_rounds=4)
    assert p.params() == {"rules": ["erf_gelu", "<script>:9"], "max_rounds": 4}
    assert p.describe() == "rules erf_gelu, <script>:9"
