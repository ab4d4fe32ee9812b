"""Applying a rule set to a model, listing its matches, and explaining why a rule does not match.

Order is deterministic: rules by priority (higher first, then as written), each rule over its anchor
candidates in graph order. A round gives every rule one pass over the graph; a match is rewritten at
once, and the nodes of a rewritten match cannot take part in another match of the same round, so
matches never overlap. Rounds repeat until one changes nothing, at most `max_rounds` times; a set still
changing at the bound is reported with the rules that were still matching. The main graph comes first,
then If/Loop/Scan bodies (each to its own fixpoint), then model-local functions.
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import onnx_graphsurgeon as gs

from graphdsl.match.ir import Program, Rule
from graphdsl.match.rewrite import Applier, Prepared, Refused, missing_ops, prepare
from graphdsl.match.steps import Failure, Matcher, Tracer
from graphdsl.match.view import GraphView, ModelState

DEFAULT_MAX_ROUNDS = 16


@dataclass
class Outcome:
    """What applying a rule set did."""

    counts: dict[str, int] = field(default_factory=dict)  # rule -> rewrites applied
    rounds: int = 0  # the most rounds any graph took
    at_bound: list[str] = field(default_factory=list)  # rules still matching when the bound was reached
    unavailable: dict[str, str] = field(default_factory=dict)  # rule -> why its rewrite cannot be built
    refused: dict[str, int] = field(default_factory=dict)  # rule -> matches whose rewrite was refused

    @property
    def changed(self) -> bool:
        """Whether any rewrite was applied."""
        return any(self.counts.values())


def ordered(rules: Sequence[Rule]) -> list[Rule]:
    """Rules in application order: priority (higher first), then as written."""
    return sorted(rules, key=lambda r: r.order)


def apply_rules(root: gs.Graph, rules: Sequence[Rule], max_rounds: int = DEFAULT_MAX_ROUNDS) -> Outcome:
    """Rewrite every graph of the model to a fixpoint of the rules (at most `max_rounds` rounds each)."""
    with gc_paused():
        state, outcome = ModelState.of(root), Outcome()
        applier = Applier(state)
        for label, graph in list(state.graphs):
            _fixpoint(GraphView(graph, label, state), ordered(rules), applier, max_rounds, outcome)
    return outcome


@contextlib.contextmanager
def gc_paused():
    """No cyclic garbage collection while rules run.

    Matching and rewriting allocate many short-lived objects; each collection they trigger would walk
    every object of a large graph (a third of the run time on a 100k-node model).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _fixpoint(view: GraphView, rules: list[Rule], applier: Applier, max_rounds: int,
              outcome: Outcome) -> None:
    refused: dict[str, int] = {}
    for number in range(1, max_rounds + 1):
        refused = {}
        applied = _round(view, rules, applier, outcome, refused)
        view.commit()
        outcome.rounds = max(outcome.rounds, number)
        if not applied:
            break
        view.state.inferred = None  # new tensors: types must be inferred again if asked
    for name, count in refused.items():  # what the last round left as it was
        outcome.refused[name] = outcome.refused.get(name, 0) + count
    if not applied:
        return
    still = [rule.name for rule in rules if next(instances(rule, view, set()), None) is not None]
    outcome.at_bound.extend(name for name in still if name not in outcome.at_bound)


def _round(view: GraphView, rules: list[Rule], applier: Applier, outcome: Outcome, refused: dict) -> int:
    applied, claimed = 0, set()
    for rule in rules:
        reason = missing_ops(rule, view)
        if reason is not None:
            outcome.unavailable.setdefault(rule.name, reason)
            continue
        for matcher in instances(rule, view, claimed):
            try:
                prepared = prepare(rule, matcher)
            except Refused:
                refused[rule.name] = refused.get(rule.name, 0) + 1
                matcher.undo(0)  # its nodes are free for other matches
                continue
            matcher.commit()
            applier.apply(prepared, view)
            outcome.counts[rule.name] = outcome.counts.get(rule.name, 0) + 1
            applied += 1
    return applied


def instances(rule: Rule, view: GraphView, claimed: set[int],
              tracer: Tracer | None = None) -> Iterator[Matcher]:
    """Matches of `rule`, anchored in graph order; each yields the matcher holding the bindings.

    The caller either commits the match (`matcher.commit()`, its nodes stay claimed) or releases it
    (`matcher.undo(0)`) before asking for the next one (and may rewrite the match in between).

    Matches never share a node the rewrite can remove. A matched node that something outside the match
    reads (the attention mask's preparation every layer shares) is kept by the rewrite, so it is released
    for later matches, and an anchor released so is tried again: one round finds every layer's match.
    """
    program, candidates = choose_anchor(rule, view)
    if program is None:
        return
    matcher = Matcher(rule.pattern, view, claimed, tracer)
    for node in candidates:
        again = False
        while id(node) not in claimed and id(node) in view.order and matcher.run(program, node):
            nodes = [n for n in matcher.nodes if n is not None]
            if again and _any_new(nodes, view):
                break  # a rewrite that contains its pattern would match its own result without end
            replaced = {id(matcher.vals[matcher.env.slots[name]]) for name in rule.replaced}
            yield matcher
            matcher.undo(0)
            taken = [n for n in nodes if id(n) in claimed]
            kept = _kept(taken, replaced, view)
            claimed.difference_update(kept)
            if len(kept) == len(taken):
                break  # released, or nothing of it is consumed: the same match would come again
            again = True
        matcher.undo(0)


def _any_new(nodes: list, view: GraphView) -> bool:
    """Whether any of the nodes was added by a rewrite this round."""
    return any(id(n) in view.added_ids for n in nodes)


def _kept(nodes: list, replaced: set[int], view: GraphView) -> set[int]:
    """Ids of the matched nodes a rewrite keeps: read outside the match (the values the rewrite replaces
    aside) or by a node kept so; the fixpoint is cheap over a match's handful of nodes."""
    inside, outputs = {id(n) for n in nodes}, view.state.outputs
    kept = {id(n) for n in nodes if any(id(t) not in replaced and (
        id(t) in outputs or any(id(r) not in inside for r in t.outputs)) for t in n.outputs)}
    grew = bool(kept)
    while grew:
        grew = False
        for n in nodes:
            if id(n) not in kept and any(id(r) in kept for t in n.outputs for r in t.outputs):
                kept.add(id(n))
                grew = True
    return kept


def choose_anchor(rule: Rule, view: GraphView) -> tuple[Program | None, list]:
    """The program whose anchor op is rarest in this graph (ties: the first), with its candidates."""
    best, best_candidates = None, []
    for program in rule.programs:
        found = anchor_candidates(rule, program, view)
        if best is None or len(found) < len(best_candidates):
            best, best_candidates = program, found
    return best, best_candidates


def anchor_candidates(rule: Rule, program: Program, view: GraphView) -> list:
    """The graph nodes a program can start from, in graph order."""
    pattern = rule.pattern
    if program.anchor_node is not None:
        node = pattern.nodes[program.anchor_node]
        return view.candidates(node.domain, node.op)
    from graphdsl.match.plan import branch_root

    alt = pattern.alts[program.anchor_alt]
    roots = {(r.domain, r.op) for r in (branch_root(pattern, b.var) for b in alt.branches)}
    found = [n for domain, op in sorted(roots) for n in view.candidates(domain, op) if id(n) in view.order]
    return sorted(found, key=lambda n: view.order[id(n)])  # removed this round: not in `order` any more


# --- dry runs: `match` and `explain` -----------------------------------------------------------------------


@dataclass
class Instance:
    """One match, as `graphdsl match` lists it."""

    rule: str
    graph: str
    nodes: list[tuple[str, str]]  # (pattern op, graph node name) in pattern order
    captures: dict[str, str]  # variable -> what it matched, in words
    applies: str = ""  # "" when the rewrite can be applied, else why not
    overlaps: list[str] = field(default_factory=list)  # earlier rules whose instances share nodes


def find_instances(root: gs.Graph, rules: Sequence[Rule]) -> list[Instance]:
    """Every instance of every rule, without changing the model.

    Instances of one rule never overlap (as when applied); an instance sharing nodes with one of a rule
    applied before it says so, since only one of them would be rewritten.
    """
    state, found = ModelState.of(root), []
    for label, graph in state.graphs:
        view, taken = GraphView(graph, label, state), {}
        for rule in ordered(rules):
            unavailable, claimed = missing_ops(rule, view), set()
            for matcher in instances(rule, view, claimed):
                ids = [id(n) for n in matcher.nodes if n is not None]
                instance = describe(rule, matcher, label, unavailable)
                instance.overlaps = sorted({taken[i] for i in ids if i in taken})
                found.append(instance)
                matcher.commit()
            for node_id in claimed:  # what the rule's rewrites would remove
                taken.setdefault(node_id, rule.name)
    return found


def describe(rule: Rule, matcher: Matcher, label: str, unavailable: str | None) -> Instance:
    """An instance in words: the matched nodes, what each variable matched, whether it would apply."""
    pattern = matcher.pattern
    nodes = [(pattern.nodes[i].qualified, n.name) for i, n in enumerate(matcher.nodes) if n is not None]
    captures = {name: _capture(matcher, slot) for name, slot in pattern.names
                if not name.startswith("__") and matcher.vals[slot] is not None}
    for alt in pattern.alts:
        name = pattern.slots[alt.slot].name
        if name and matcher.branches[alt.id] is not None:
            captures[f"branch({name})"] = str(matcher.branches[alt.id])
    applies = unavailable or ""
    if not applies:
        try:
            prepare(rule, matcher)
        except Refused as e:
            applies = str(e)
    return Instance(rule.name, label, nodes, captures, applies)


def _capture(matcher: Matcher, slot: int) -> str:
    from graphdsl.match.steps import _show, _show_array

    value = matcher.vals[slot]
    if matcher.pattern.slots[slot].kind == "attr":
        return _show(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(t.name for t in value) + "]"
    const = matcher.view.const(value)
    return f"{value.name} = {_show_array(const)}" if const is not None else value.name


@dataclass
class Explanation:
    """Why a rule does (not) match a model: its instances, and the attempt that got furthest."""

    rule: Rule
    matches: int
    candidates: dict[str, int]  # anchor op -> how many nodes of it each graph has (summed)
    best: Failure | None
    graph: str = ""
    anchor: object = None
    unavailable: str = ""


def explain(root: gs.Graph, rule: Rule) -> Explanation:
    """Try every anchor of every graph with a tracer; keep the failure that matched most pattern nodes."""
    state = ModelState.of(root)
    result = Explanation(rule, 0, {}, None)
    for label, graph in state.graphs:
        view = GraphView(graph, label, state)
        result.unavailable = result.unavailable or (missing_ops(rule, view) or "")
        for matcher in instances(rule, view, set()):
            result.matches += 1
            matcher.commit()
        counted: set[str] = set()
        for program in rule.programs:
            _explain_program(rule, program, view, result, counted)
    return result


def _explain_program(rule: Rule, program: Program, view: GraphView, result: Explanation,
                     counted: set) -> None:
    candidates = anchor_candidates(rule, program, view)
    key = _anchor_name(rule, program)
    if key not in counted:  # two pattern nodes of one op share their candidates
        counted.add(key)
        result.candidates[key] = result.candidates.get(key, 0) + len(candidates)
    matcher = Matcher(rule.pattern, view, set())
    for node in candidates:
        tracer = matcher.tracer = Tracer()
        if matcher.run(program, node):
            continue
        best = tracer.best
        if best is not None and (result.best is None or best.progress > result.best.progress):
            result.best, result.graph, result.anchor = best, view.label, node


def _anchor_name(rule: Rule, program: Program) -> str:
    if program.anchor_node is not None:
        return rule.pattern.nodes[program.anchor_node].qualified
    from graphdsl.match.plan import branch_root

    alt = rule.pattern.alts[program.anchor_alt]
    return " | ".join(branch_root(rule.pattern, b.var).qualified for b in alt.branches)


__all__ = ["Outcome", "apply_rules", "find_instances", "explain", "Explanation", "Instance", "Prepared"]
