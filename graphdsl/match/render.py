"""`graphdsl match` and `graphdsl explain` output: rich tables for the terminal, plain data for `--json`."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Group
from rich.table import Table
from rich.text import Text

from graphdsl.match.driver import Explanation, Instance
from graphdsl.match.ir import Rule


@dataclass
class RuleSetMatches:
    """The instances of one rule set of a script, as the model stands when the set runs."""

    rules: list[Rule]
    instances: list[Instance]


@dataclass
class MatchReport:
    """Every instance of every rule of a script on a model."""

    script: str
    model: str
    sets: list[RuleSetMatches] = field(default_factory=list)

    def __rich_console__(self, console, options):
        yield Text(f"{self.script} on {self.model}", style="bold")
        for rule_set in self.sets:
            for rule in rule_set.rules:
                yield _rule_table(rule, [i for i in rule_set.instances if i.rule == rule.name])

    def to_json(self) -> dict:
        """Keys: script, model, rules (name, priority, location, instances: graph, nodes, captures,
        applies, reason, overlaps)."""
        rules = []
        for rule_set in self.sets:
            for rule in rule_set.rules:
                found = [i for i in rule_set.instances if i.rule == rule.name]
                rules.append({"name": rule.name, "priority": rule.priority, "location": str(rule.span or ""),
                              "instances": [_instance_json(i) for i in found]})
        return {"script": self.script, "model": self.model, "rules": rules}

    @property
    def count(self) -> int:
        """Instances over all rule sets."""
        return sum(len(s.instances) for s in self.sets)


def _instance_json(instance: Instance) -> dict:
    return {"graph": instance.graph, "nodes": [{"op": op, "name": name} for op, name in instance.nodes],
            "captures": instance.captures, "applies": not instance.applies, "reason": instance.applies,
            "overlaps": instance.overlaps}


def _rule_table(rule: Rule, instances: list[Instance]):
    title = f"rule {rule.name}: {len(instances)} instance{'s' if len(instances) != 1 else ''}"
    if not instances:
        return Text(title + f"  (`graphdsl explain SCRIPT {rule.name}` says why)", style="dim")
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("#", justify="right")
    if any(i.graph != "main" for i in instances):
        table.add_column("graph")
    table.add_column("nodes")
    table.add_column("captures")
    table.add_column("note")
    for number, instance in enumerate(instances, 1):
        row = [str(number)] + ([instance.graph] if len(table.columns) == 5 else [])
        nodes = ", ".join(f"{op} {name}" for op, name in instance.nodes)
        captures = "; ".join(f"{k}: {v}" for k, v in instance.captures.items())
        table.add_row(*row, Text(nodes), Text(captures), Text(_note(instance)))
    return table


def _note(instance: Instance) -> str:
    notes = []
    if instance.applies:
        notes.append(f"not applied: {instance.applies}")
    if instance.overlaps:
        notes.append("overlaps " + ", ".join(instance.overlaps))
    return "; ".join(notes)


@dataclass
class ExplainReport:
    """Why a rule matches where it does and, for the closest failed attempt, where and why it stopped."""

    explanation: Explanation

    def __rich_console__(self, console, options):
        e = self.explanation
        rule = e.rule
        yield Text(f"rule {rule.name}: {e.matches} instance{'s' if e.matches != 1 else ''}", style="bold")
        anchors = ", ".join(f"{op} {count}" for op, count in e.candidates.items())
        yield Text(f"anchor candidates (nodes of each pattern op the search can start from): {anchors}")
        if e.unavailable:
            yield Text(f"the rewrite cannot be built here: {e.unavailable}", style="yellow")
        if e.best is None:
            yield Text(_no_attempt(e))
            return
        yield self._attempt()

    def _attempt(self):
        e, best = self.explanation, self.explanation.best
        pattern = e.rule.pattern
        anchor = getattr(e.anchor, "name", "?")
        head = Text(f"closest attempt (starting at node `{anchor}`, {e.graph} graph): {best.progress} of "
                    f"{len(pattern.mandatory())} mandatory pattern nodes matched")
        table = Table(show_header=True, title_justify="left")
        table.add_column("pattern")
        table.add_column("graph node")
        for pnode, node in best.matched:
            table.add_row(Text(_pattern_text(pattern.nodes[pnode])), Text(node.name or node.op))
        looked_at = getattr(best.node, "name", "") or ""
        failed = Text("✗ " + _failed_at(best), style="red")
        table.add_row(failed, Text(looked_at and f"✗ {looked_at}", style="red"))
        return Group(head, table, Text(f"failed ({best.kind}): {best.message}", style="bold red"))

    def to_json(self) -> dict:
        """Keys: rule, instances, candidates, unavailable, closest (anchor, graph, matched, failed)."""
        e = self.explanation
        out = {"rule": e.rule.name, "instances": e.matches, "candidates": e.candidates,
               "unavailable": e.unavailable, "closest": None}
        if e.best is not None:
            out["closest"] = {
                "anchor": getattr(e.anchor, "name", None), "graph": e.graph,
                "matched": [{"pattern": _pattern_text(e.rule.pattern.nodes[p]), "node": n.name}
                            for p, n in e.best.matched],
                "failed": {"kind": e.best.kind, "message": e.best.message, "at": _failed_at(e.best),
                           "node": getattr(e.best.node, "name", None), "location": str(e.best.span or "")},
            }
        return out


def _pattern_text(pnode) -> str:
    return f"{pnode.span.text} (line {pnode.span.line})" if pnode.span is not None else pnode.qualified


def _failed_at(failure) -> str:
    if failure.span is None:
        return "—"
    return f"{failure.span.text} (line {failure.span.line})"


def _no_attempt(e: Explanation) -> str:
    if not any(e.candidates.values()):
        ops = " or ".join(f"`{op}`" for op in e.candidates) or "any of its ops"
        return f"no attempt started: the model has no {ops} node"
    return "every attempt matched"
