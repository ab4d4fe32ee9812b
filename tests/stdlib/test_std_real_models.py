"""The standard library on real models from PyPI wheels, through the whole pipeline (its verification
compares ONNX Runtime before and after within ORT's own noise floor: `result.passed`).

Counts were checked by hand against each model's structure:
- PP-OCRv4 rec (opset 12): 5 LayerNorms spelled ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add (5 Sqrt,
  5 Pow, 10 ReduceMean) and 6 BatchNormalizations right after bias-less Convs. LayerNormalization needs
  opset 17: the script converts first.
- nudenet 320n (opset 17, YOLOv8n-like): 58 Sigmoids, 57 of them in x * sigmoid(x) (the 58th scores the
  classes). std/ort.gds makes them com.microsoft QuickGelu; std/swish.gds makes them Swish (opset 24).
- PP-OCRv6 det (opset 11): 13 Erf, each in Paddle2ONNX's (x * (erf(x / sqrt 2) + 1)) * 0.5; 75 of its 83
  Convs have their bias as a following Add of a [1, C, 1, 1] constant (2 of them with auto_pad).
- silero-vad: an If whose two branches each end in two Identities (removed; the branch outputs are then
  written by the nodes before them), and 2 Identities after the If in the main graph; the nested branches'
  Identities pass outer values through and must stay. 18 of the 20 Casts (all inside the branches: 4 of 5
  in each top branch, 3 and 2 in its nested ones) cast to the type they already have (checked with ONNX
  shape inference, which types subgraphs too); the other 2 turn a shape number into a bool.
"""

from __future__ import annotations

import collections

import numpy as np
import onnx
import pytest
from realmodels import real_model

import graphdsl

pytestmark = pytest.mark.realmodel


def run(tmp_path, name: str, body: str, verify: str):
    script = tmp_path / f"{name}.gds"
    script.write_text(f'model "{real_model(name)}"\n{body}\n{verify}\n')
    result = graphdsl.compile(script).run()
    assert result.passed, result.report.to_json()["verification"]
    return result


def rule_counts(result) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in result.report.passes:
        if record.name == "apply_rules":
            for rule, n in record.counts.items():
                counts[rule] = counts.get(rule, 0) + n
    return counts


def test_ppocrv4_rec_layernorms(tmp_path, std_figures):
    result = run(tmp_path, "ppocrv4_rec", 'convert opset 17\nimport "std/fusions.gds"',
                 "verify shape x [1, 3, 48, 320]")
    assert rule_counts(result) == {"layernorm": 5, "conv_bn_nobias": 6}
    after = result.report.after.op_histogram
    assert after["LayerNormalization"] == 5
    assert "ReduceMean" not in after and "BatchNormalization" not in after
    std_figures(f"PP-OCRv4 rec: {rule_counts(result)}")


@pytest.mark.parametrize("body, rule, op", [('import "std/ort.gds"', "ort_silu", "QuickGelu"),
                                             ('convert opset 24\nimport "std/swish.gds"', "silu", "Swish")])
def test_nudenet_silus(tmp_path, std_figures, body, rule, op):
    result = run(tmp_path, "nudenet_320n", body, "verify shape images [1, 3, 320, 320]")
    assert rule_counts(result) == {rule: 57}
    after = result.report.after.op_histogram
    assert after[op] == 57 and after["Sigmoid"] == 1
    std_figures(f"nudenet 320n, {body.splitlines()[-1]}: {rule_counts(result)}")


def test_ppocrv6_det_erf_gelus(tmp_path, std_figures):
    result = run(tmp_path, "ppocrv6_det", 'convert opset 20\nimport "std/fusions.gds"',
                 "verify shape x [1, 3, 64, 64]")
    assert rule_counts(result) == {"erf_gelu": 13, "conv_add_nobias": 73, "conv_add_nobias_autopad": 2}
    after = result.report.after.op_histogram
    assert after["Gelu"] == 13 and "Erf" not in after and after["Conv"] == 83
    std_figures(f"PP-OCRv6 det: {rule_counts(result)}")


def _count(graph: onnx.GraphProto, op: str) -> collections.Counter:
    """Nodes of `op` per graph name, subgraphs included."""
    out = collections.Counter({graph.name: sum(n.op_type == op for n in graph.node)})
    for n in graph.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                out += _count(a.g, op)
    return out


@pytest.mark.parametrize("rate, samples", [(16000, 512), (8000, 256)])
def test_silero_vad_if_branches(tmp_path, rate, samples, std_figures):
    rng = np.random.default_rng(0)
    data = tmp_path / "vad.npz"
    np.savez(data, input=rng.standard_normal((1, samples)).astype(np.float32),
             state=(rng.standard_normal((2, 1, 128)) * 0.1).astype(np.float32), sr=np.array(rate, np.int64))
    result = run(tmp_path, "silero_vad", 'import "std/fusions.gds"\nimport "std/cleanup.gds"',
                 f'verify data "{data}"')
    assert rule_counts(result) == {"identity": 6, "cast_same": 18}
    original = onnx.load(real_model("silero_vad")).graph
    removed = {}
    for op in ("Identity", "Cast"):
        before, after = _count(original, op), _count(result.model.graph, op)
        removed[op] = {name: before[name] - after[name] for name in before if before[name] != after[name]}
    assert removed["Identity"] == {"spox_graph": 2, "If_0_then_branch": 2, "If_0_else_branch": 2}
    assert sum(_count(result.model.graph, "Cast").values()) == 2
    std_figures(f"silero-vad (sr {rate}): {rule_counts(result)}; removed per graph: {removed}")
