"""Test kit for the standard rule files (passes/std/*.gds): applying one file's rules with every check a
standard rule must pass (`rulekit.check`), and counting what came out. Small models: `rulekit`.
"""

from __future__ import annotations

import functools

import onnx
import onnx_graphsurgeon as gs
from onnx import helper
from rulekit import F, MS, check, const, feeds_for, model, node, ops, run, session  # noqa: F401

from graphdsl.compile import std_library_dir
from graphdsl.match import apply_rules, compile_rules


@functools.cache
def std_rules(name: str) -> tuple:
    """The compiled rules of std/NAME.gds (a file of rule statements only)."""
    path = std_library_dir() / f"{name}.gds"
    return tuple(compile_rules(path.read_text(), str(path)))


def apply_std(name: str, before: onnx.ModelProto, max_rounds: int = 16, **check_options):
    """Apply std/NAME.gds's rules; returns (rewritten model, outcome), checked against `before`."""
    graph = gs.import_onnx(before)
    outcome = apply_rules(graph, std_rules(name), max_rounds)
    after = gs.export_onnx(graph)
    check(before, after, **check_options)
    return after, outcome


def ms_ops(m: onnx.ModelProto) -> dict[str, int]:
    """How many nodes of each com.microsoft op the model has."""
    counts: dict[str, int] = {}
    for n in m.graph.node:
        if n.domain == MS:
            counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts


def attr(m: onnx.ModelProto, op: str, name: str):
    """The value of attribute `name` of the (only) node of `op`."""
    (found,) = [n for n in m.graph.node if n.op_type == op]
    return next(helper.get_attribute_value(a) for a in found.attribute if a.name == name)
