"""Pattern rules: the pattern IR, its compiler, the matcher, the match tracer and the rewrite driver.

    from graphdsl.match import apply_rules, compile_rules
    rules = compile_rules('replace Max(Min(x, hi), lo) with Clip(x, lo, hi)')
    outcome = apply_rules(graph, rules)          # graph: an onnx_graphsurgeon Graph, edited in place
    outcome.counts                               # {"<script>:1": 3}

Scripts reach the same engine through `rule` and `replace` statements (docs/language.md, "Rules").
"""

from __future__ import annotations

from graphdsl.match.driver import Explanation, Instance, Outcome, apply_rules, explain, find_instances
from graphdsl.match.ir import Rule


def compile_rules(text: str, path: str = "<script>") -> list[Rule]:
    """The rules of a script made only of `rule`/`replace` statements (and `domain` declarations)."""
    from graphdsl.compile import compile as compile_script

    pipeline = compile_script(text if "\n" in text else text + "\n")
    return [rule for p in pipeline.passes for rule in getattr(p, "rules", ())]


__all__ = ["Explanation", "Instance", "Outcome", "Rule", "apply_rules", "compile_rules", "explain",
           "find_instances"]
