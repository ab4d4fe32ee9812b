"""Report rendering (golden text at width 100, no colour), JSON keys, HTML/SVG/JSON files, Jupyter."""

from __future__ import annotations

import io
import json
from xml.etree import ElementTree
from pathlib import Path

import numpy as np
import onnx_graphsurgeon as gs
import pytest
from rich.console import Console

from graphdsl.diagnostics import Diagnostic, Severity
from graphdsl.report import GraphDiff, ModelSummary, PassRecord, Report, TensorInfo, model_summary
from graphdsl.report.render import op_delta_text, size
from graphdsl.verify import OutputCheck, Verification

GOLDEN = Path(__file__).parent / "golden"


def nodes(op: str, n: int) -> list[gs.Node]:
    return [gs.Node(op, f"{op.lower()}{i}") for i in range(n)]


def consts(n: int) -> list[gs.Constant]:
    return [gs.Constant(f"c{i}", np.zeros(1, np.float32)) for i in range(n)]


def fixed_report() -> Report:
    fusion = GraphDiff(added=nodes("Gelu", 12),
                       removed=nodes("Mul", 24) + nodes("Erf", 12) + nodes("Add", 12),
                       changed=nodes("MatMul", 2), initializers_removed=consts(36),
                       op_delta={"Add": -12, "Erf": -12, "Gelu": 12, "Mul": -24})
    fold = GraphDiff(removed=nodes("Shape", 3) + nodes("Gather", 3), initializers_added=consts(3),
                     initializers_changed=consts(1), op_delta={"Gather": -3, "Shape": -3})
    passes = [
        PassRecord("fold_constants", "fold_constants", "bert.gds:3:1", 0.0123, fold, {"folded": 6}),
        PassRecord("rule", "rule erf_gelu", "bert.gds:5:1", 0.25, fusion, {"matches": 12},
                   ["fixpoint reached after 2 rounds"]),
        PassRecord("save", "save(path='bert.opt.onnx')", "bert.gds:12:1", 0.0004, None, {},
                   ["will write bert.opt.onnx"]),
    ]
    ids = TensorInfo("input_ids", "int64", ("batch", 128))
    before = ModelSummary(1234, {"MatMul": 96, "Mul": 60, "Add": 50}, 109_482_240, 437_928_960, 200, [ids],
                          [TensorInfo("logits", "float32", ("batch", 2))])
    after = ModelSummary(1180, {"MatMul": 96, "Mul": 36, "Gelu": 12}, 109_482_237, 437_928_948, 167, [ids],
                         [TensorInfo("logits", "float16", ("batch", 2)),
                          TensorInfo("pooled", "float32", (1, 768))])
    checks = [OutputCheck("logits", "logits", [1, 2], "float16", 3.2e-4, 1.5e-3, 0.9999987, 2.4e-7, 1e-3,
                          1e-3, True),
              OutputCheck("pooled", "bert/pooler/out", [1, 768], "float32", 0.25, 0.91, 0.981234, None, 1e-3,
                          1e-3, False, "")]
    verification = Verification(checks, False, 4, 1.5, ["4 samples, seed 0"])
    warning = Diagnostic("GDS204", "3 weights clamped to the float16 range", location="bert.onnx: node 'fc'",
                         severity=Severity.WARNING, hints=("keep that layer in fp32",))
    return Report("bert.gds", "bert.onnx", passes, before, after, verification, ["bert.opt.onnx"], [warning])


def render(renderable) -> str:
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def golden(name: str, text: str) -> None:
    """Compare with the golden file; GRAPHDSL_UPDATE_GOLDEN=1 rewrites it (review the diff)."""
    import os

    path = GOLDEN / name
    if os.environ.get("GRAPHDSL_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_report_text():
    golden("report.txt", render(fixed_report()))


def test_summary_text():
    golden("summary.txt", render(fixed_report().after))


def test_op_delta_order_and_sizes():
    assert op_delta_text({"Mul": -12, "Gelu": 12}) == "Mul \u221212, Gelu +12"
    assert op_delta_text({"B": 1, "A": 1, "C": -3}) == "C \u22123, A +1, B +1"
    assert [size(n) for n in (812, 44_800_000, 2_500_000_000)] == ["812 B", "44.8 MB", "2.5 GB"]


def test_json_keys_and_timings_only_under_timings():
    j = fixed_report().to_json()
    assert list(j) == ["format", "script", "model", "passed", "passes", "totals", "before", "after",
                       "verification", "outputs", "diagnostics", "timings"]
    assert j["format"] == "graphdsl-report/1" and j["passed"] is False
    assert j["timings"] == {"passes": [0.0123, 0.25, 0.0004], "total": 0.2627, "verification": 1.5}
    assert list(j["passes"][0]) == ["name", "description", "location", "counts", "notes", "diff", "package"]
    assert j["passes"][2]["diff"] is None
    assert j["totals"] == {"nodes_added": 12, "nodes_removed": 54, "nodes_changed": 2,
                           "initializers_added": 3, "initializers_removed": 36, "initializers_changed": 1,
                           "op_delta": {"Add": -12, "Erf": -12, "Gather": -3, "Gelu": 12, "Mul": -24,
                                        "Shape": -3}}
    assert list(j["before"]) == ["node_count", "op_histogram", "parameter_count", "parameter_bytes",
                                 "initializer_count", "inputs", "outputs"]
    assert j["before"]["inputs"] == [{"name": "input_ids", "dtype": "int64", "shape": ["batch", 128]}]
    assert "timings" not in j["verification"] and j["verification"]["outputs"][1]["noise"] is None
    assert j["diagnostics"][0]["code"] == "GDS204" and j["diagnostics"][0]["severity"] == "warning"
    text = json.dumps(j)
    j.pop("timings")
    assert "seconds" not in json.dumps(j) and json.loads(text)["timings"]["total"] == 0.2627


def test_save_json_html_svg(tmp_path):
    report = fixed_report()
    for suffix in ("json", "html", "svg"):
        path = report.save(tmp_path / f"r.{suffix}")
        text = path.read_text(encoding="utf-8")
        assert "bert/pooler/out" in text and "logits" in text
        if suffix != "json":
            assert "Verification" in text and "FAIL" in text and "Passes" in text
    assert json.loads((tmp_path / "r.json").read_text())["model"] == "bert.onnx"
    assert (tmp_path / "r.html").read_text().lstrip().startswith("<!DOCTYPE html>")
    assert (tmp_path / "r.svg").read_text().lstrip().startswith("<svg")
    ElementTree.parse(tmp_path / "r.svg")  # still well-formed after making its text searchable
    assert "rule erf_gelu" in (tmp_path / "r.svg").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json", "r.svg"]  # no temp files left


def test_save_is_deterministic(tmp_path):
    first = fixed_report().save(tmp_path / "a.svg").read_bytes()
    assert fixed_report().save(tmp_path / "b.svg").read_bytes() == first


def test_save_refuses_other_suffixes(tmp_path):
    with pytest.raises(ValueError, match="use .json, .html or .svg"):
        fixed_report().save(tmp_path / "r.txt")
    assert not list(tmp_path.iterdir())


def test_jupyter_mimebundle():
    bundle = fixed_report()._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert bundle["text/plain"] == render(fixed_report())
    assert "<pre" in bundle["text/html"] and "bert/pooler/out" in bundle["text/html"]
    assert set(fixed_report().verification._repr_mimebundle_()) == {"text/plain", "text/html"}


def test_verification_renders_on_its_own():
    text = render(fixed_report().verification)
    assert text.startswith("Verification: FAIL (4 samples)")
    assert "pooled \u2190 bert/pooler/out" in text and "PASS" in text


def test_model_summary_of_a_graph():
    x = gs.Variable("x", np.float32, ["n", 4])
    w = gs.Constant("w", np.ones([4, 3], np.float16))
    y, z = gs.Variable("y", np.float32, ["n", 3]), gs.Variable("z", np.float32, None)
    g = gs.Graph(nodes=[gs.Node("MatMul", "mm", inputs=[x, w], outputs=[y]), gs.Node("Relu", "r", inputs=[y],
                                                                                    outputs=[z])],
                 inputs=[x], outputs=[z])
    s = model_summary(g)
    assert (s.node_count, s.parameter_count, s.parameter_bytes, s.initializer_count) == (2, 12, 24, 1)
    assert s.op_histogram == {"MatMul": 1, "Relu": 1}
    assert [t.signature for t in s.inputs + s.outputs] == ["float32 [n, 4]", "float32 [?]"]
