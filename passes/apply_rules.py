"""Pattern rules (`rule ... { match {...} rewrite {...} }`, `replace P with E`) applied as one pass.

Consecutive rule statements of a script form one rule set: they are applied together, by priority, to
a fixpoint (see `graphdsl.match.driver`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import onnx_graphsurgeon as gs

from graphdsl.diagnostics import Diagnostic, Severity, Span
from graphdsl.match.driver import DEFAULT_MAX_ROUNDS, apply_rules
from graphdsl.match.ir import Rule
from graphdsl.pipeline import Pass, PassContext, PassResult

if TYPE_CHECKING:
    from graphdsl.check import ModelScope

FIXPOINT_BOUND = "GDS507"


@dataclass
class ApplyRules(Pass):
    """Rewrite every match of a rule set until none is left: `Mul(x, Sigmoid(x))` -> `Swish(x)`-like rules.

    Rules go by priority (higher first), then in the order written; each rule over the graph in node
    order, matches never overlapping; repeated until a round changes nothing, at most `max_rounds`
    times per graph (If/Loop/Scan bodies and local functions included).

    Args:
        rules: compiled rules (`graphdsl.match.compile_rules`).
        max_rounds: the bound of the fixpoint; rules still matching when it is reached are a warning.
    """

    name = "apply_rules"
    rules: list[Rule] = field(default_factory=list)
    max_rounds: int = DEFAULT_MAX_ROUNDS
    span: Span | None = None

    def check(self, scope: "ModelScope") -> None:
        """Rules name no tensors of the model; what they replace is known only when they run."""
        scope.uncertain = True

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        """Apply the rule set; counts per rule, notes for rules that could not apply, fixpoint warnings."""
        outcome = apply_rules(graph, self.rules, self.max_rounds)
        notes = [f"rule {name} not applied: {reason}" for name, reason in outcome.unavailable.items()]
        notes += [f"rule {name}: {count} match(es) left as they were (the rewrite was refused)"
                  for name, count in outcome.refused.items()]
        for name in outcome.at_bound:
            ctx.diagnostics.append(self._bound_warning(name))
        names = [r.name for r in self.rules]
        counts = {name: outcome.counts[name] for name in names if outcome.counts.get(name)}
        return PassResult(changed=outcome.changed, counts=counts, notes=notes)

    def _bound_warning(self, name: str) -> Diagnostic:
        rule = next(r for r in self.rules if r.name == name)
        return Diagnostic(FIXPOINT_BOUND, f"rule `{name}` still matched after {self.max_rounds} rounds",
                          span=rule.span, severity=Severity.WARNING,
                          hints=("a rule whose rewrite contains its own pattern never stops; otherwise raise "
                                 "the bound (`ApplyRules(max_rounds=...)` from Python)",))

    def params(self) -> dict[str, Any]:
        """The rules by name, and the bound, for the report."""
        return {"rules": [r.name for r in self.rules], "max_rounds": self.max_rounds}

    def describe(self) -> str:
        """`rules erf_gelu, layernorm`."""
        return f"rules {', '.join(r.name for r in self.rules)}"


__all__ = ["ApplyRules"]
