"""Running a script's passes up to its rule sets, in memory, for `graphdsl match` and `graphdsl explain`.

A rule set sees the model as the script leaves it at that point (after `fold constants`, say), so the
passes before it run as they would in `graphdsl run`; nothing is verified or written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from graphdsl.diagnostics import Diagnostic, ScriptError, suggestion_label
from graphdsl.match.ir import Rule
from graphdsl.pipeline import PassContext

if TYPE_CHECKING:
    import onnx_graphsurgeon as gs

UNKNOWN_RULE = "GDS508"


@dataclass
class RuleSetStop:
    """The model as one rule set of the script meets it."""

    index: int  # the pass's position in the pipeline
    rules: list[Rule]
    graph: "gs.Graph"


def rule_sets(pipeline, loaded) -> Iterator[RuleSetStop]:
    """Each rule set with the graph as it stands when the set runs; the set is applied after the caller
    has looked (so later sets see its effect), every other pass as it comes."""
    graph = loaded.graph
    ctx = PassContext(meta=loaded.meta, model_path=loaded.path)
    for index, p in enumerate(pipeline.passes):
        ctx.span = p.span
        rules = getattr(p, "rules", None)
        if rules is not None and type(p).name == "apply_rules":
            yield RuleSetStop(index, list(rules), graph)
        if p.read_only:
            continue
        outcome = p.apply(graph, ctx)
        graph = outcome.graph if outcome.graph is not None else graph


def find_rule(pipeline, name: str) -> Rule:
    """The rule of that name in the script (or its imports); a script error naming the rules otherwise."""
    rules = [r for p in pipeline.passes for r in getattr(p, "rules", ())]
    for rule in rules:
        if rule.name == name:
            return rule
    names = [r.name for r in rules]
    hints = (suggestion_label(name, names),
             "rules: " + ", ".join(names) if names else "the script has no rules")
    raise ScriptError(Diagnostic(UNKNOWN_RULE, f"the script has no rule named `{name}`",
                                 location=pipeline.source,
                                 hints=tuple(h for h in hints if h)))
