"""`graphdsl match` and `graphdsl explain`: text and JSON, and that they change nothing."""

import contextlib
import io
import json

import numpy as np
import onnx
import pytest
from matchkit import model, node

from graphdsl.cli import main

SCRIPT = """
rule erf_gelu priority 10 {
  match {
    d = Div(x, c) where c ~= 1.41421356 tol 1e-6
    y = Mul(Mul(x, Add(Erf(d), 1.0)), 0.5)
  }
  rewrite { y = Gelu(x) }
}
replace Max(Min(x, hi), lo) where scalar(lo) and scalar(hi) with Clip(x, lo, hi)
"""


@pytest.fixture
def files(tmp_path):
    inits = {"c": np.float32(1.4142135), "one": np.float32(1), "half": np.float32(0.5), "hi": np.float32(6),
             "lo": np.float32(0), "c2": np.float32(1.5)}
    nodes = [node("Div", ["x", "c"], "d"), node("Erf", ["d"], "e"), node("Add", ["e", "one"], "a"),
             node("Mul", ["x", "a"], "m"), node("Mul", ["m", "half"], "g"),
             node("Min", ["g", "hi"], "mn"), node("Max", ["mn", "lo"], "z"),
             node("Div", ["z", "c2"], "d2"), node("Erf", ["d2"], "e2"), node("Add", ["e2", "one"], "a2"),
             node("Mul", ["z", "a2"], "m2"), node("Mul", ["m2", "half"], "y")]
    path = tmp_path / "m.onnx"
    onnx.save(model(nodes, {"x": [2, 4]}, {"y": [2, 4]}, inits, opset=20), path)
    script = tmp_path / "fuse.gds"
    script.write_text(SCRIPT)
    return script, path


def cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def test_match_lists_instances_with_nodes_and_captures(files):
    script, path = files
    before = path.read_bytes()
    code, out, _ = cli("match", script, "-i", path)
    assert code == 0 and path.read_bytes() == before
    assert "rule erf_gelu: 1 instance" in out and "rule fuse:9: 1 instance" in out
    assert "Erf" in out and "1.4142135" in out


def test_match_json(files):
    script, path = files
    code, out, _ = cli("match", script, "-i", path, "--json")
    data = json.loads(out)
    (gelu, clip) = data["rules"]
    assert gelu["name"] == "erf_gelu" and len(gelu["instances"]) == 1
    instance = gelu["instances"][0]
    assert [n["name"] for n in instance["nodes"]] == ["d", "e", "a", "m", "g"]
    assert instance["captures"]["x"] == "x" and instance["applies"] is True
    assert clip["instances"][0]["captures"]["lo"] == "lo = 0.0"


def test_explain_shows_the_closest_attempt_and_why_it_failed(files):
    script, path = files
    code, out, _ = cli("explain", script, "erf_gelu", "-i", path)
    assert code == 0
    assert "rule erf_gelu: 1 instance" in out
    assert "closest attempt" in out and "c ~= 1.41421356 tol 1e-6" in out and "c = 1.5" in out


def test_explain_json_names_the_failing_pattern_node(files):
    script, path = files
    code, out, _ = cli("explain", script, "erf_gelu", "-i", path, "--json")
    closest = json.loads(out)["closest"]
    assert closest["failed"]["kind"] == "predicate"
    assert [m["node"] for m in closest["matched"]] == ["d2", "e2", "a2", "m2", "y"]


def test_explain_an_op_the_model_lacks(files, tmp_path):
    script, path = files
    other = tmp_path / "relu.gds"
    other.write_text("replace Relu(Neg(x)) with Neg(Min(x, 0.0))\n")
    code, out, _ = cli("explain", other, "relu:1", "-i", path)
    assert "the model has no `Neg` or `Relu` node" in out


def test_explain_an_unknown_rule_is_a_script_error(files):
    script, path = files
    code, _, err = cli("explain", script, "erf_gelo", "-i", path)
    assert code == 2 and "GDS508" in err and "did you mean `erf_gelu`" in err
