"""Test kit for rules: `rewrite(script, model)` compiles the script's rules, applies them to the model and
checks the result the way every rule test must (`rulekit.check`). Small models: `rulekit`.
"""

from __future__ import annotations

import onnx
import onnx_graphsurgeon as gs
from rulekit import F, MS, check, const, feeds_for, model, node, ops, run  # noqa: F401

from graphdsl.match import apply_rules, compile_rules


def rewrite(script: str, before: onnx.ModelProto, max_rounds: int = 16, rtol: float = 1e-4, atol: float = 1e-5,
            **options):
    """Apply the script's rules; returns (rewritten model, outcome, graph), checked against `before`."""
    graph = gs.import_onnx(before)
    outcome = apply_rules(graph, compile_rules(script), max_rounds)
    after = gs.export_onnx(graph)
    check(before, after, rtol=rtol, atol=atol, **options)
    return after, outcome, graph
