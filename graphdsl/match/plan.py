"""From a pattern to matching programs: one per choice of anchor.

The anchor is the pattern node the search starts from; the driver picks, per graph, the anchor whose op
is rarest there (`Erf` for erf-GELU, `Sqrt` for LayerNorm), so a rule costs about one attempt per
real candidate. From the anchor the plan walks the pattern: first along producer edges (a bound value's
producer is unique, so following it never branches), then along consumer edges (a bound value's
consumers are tried one by one). Each `where` condition runs as soon as the names it reads are bound,
so a failing constant check prunes before the rest of the pattern is visited.
"""

from __future__ import annotations

from graphdsl.match.ir import Alt, Pattern, PNode, Pred, Program
from graphdsl.match.steps import (
    Alternatives,
    AnchorAlt,
    Check,
    Commute,
    Consume,
    ConsumeAlt,
    Jump,
    Produce,
    TakeAnchor,
    Unify,
)


def build_programs(pattern: Pattern) -> tuple[Program, ...]:
    """A program for every anchor the pattern can be searched from; () when it cannot be searched."""
    out = []
    for node in pattern.mandatory():
        steps = _Planner(pattern).from_node(node)
        if steps is not None:
            out.append(Program(node.id, None, steps))
    root = root_alternative(pattern)  # `A(x) | B(x)` at the root: its branches' ops anchor it too
    steps = _Planner(pattern).from_alt(root) if root is not None else None
    if steps is not None:
        out.append(Program(None, root.id, steps))
    return tuple(out)


def root_alternative(pattern: Pattern) -> Alt | None:
    """An outermost alternative whose value no pattern node reads and whose every branch is a node: the
    root of a pattern like `y = A(x) | B(x)`."""
    read = {slot for node in pattern.nodes for slot in node.inputs}
    for alt in pattern.alts:
        nodes_only = all(branch_root(pattern, b.var) is not None for b in alt.branches)
        if alt.within is None and alt.slot not in read and nodes_only:
            return alt
    return None


def branch_root(pattern: Pattern, slot: int) -> PNode | None:
    """The pattern node computing `slot`, or None when it is a variable or alternative."""
    producer = dict(pattern.producers).get(slot)
    return pattern.nodes[producer[1]] if producer and producer[0] == "node" else None


class _Planner:
    def __init__(self, pattern: Pattern, context: tuple[int, int] | None = None,
                 parent: "_Planner | None" = None):
        self.pattern = pattern
        self.context = context  # the branch being planned, or None for the mandatory part
        self.code: list = parent.code if parent else []
        self.bound: list[int] = list(parent.bound) if parent else []
        self.done_nodes: set[int] = set(parent.done_nodes) if parent else set()
        self.done_alts: set[int] = set(parent.done_alts) if parent else set()
        self.preds: list[Pred] = list(pattern.preds) if parent is None else []
        self.producers = dict(pattern.producers)
        self.names = dict(pattern.names)

    # --- entry points -------------------------------------------------------------------------------

    def from_node(self, anchor: PNode) -> tuple | None:
        self.code.append(TakeAnchor(anchor.id))
        self._took(anchor)
        return self._finish()

    def from_alt(self, alt: Alt) -> tuple | None:
        self.code.append(AnchorAlt(alt.slot))
        self._bind(alt.slot)
        self._alt(alt)
        return self._finish()

    def _finish(self) -> tuple | None:
        self._walk(consumers=True)
        self._ready_preds()
        complete = (all(n.id in self.done_nodes for n in self.pattern.mandatory())
                    and all(a.id in self.done_alts for a in self.pattern.alts if a.within is None)
                    and not self.preds)
        return tuple(self.code) if complete else None

    # --- the walk -----------------------------------------------------------------------------------

    def _walk(self, consumers: bool) -> None:
        while True:
            self._ready_preds()
            if self._producer_edge():
                continue
            if not consumers or not self._consumer_edge():
                return

    def _producer_edge(self) -> bool:
        for slot in reversed(self.bound):  # the most recently bound first: depth-first, prunes early
            producer = self.producers.get(slot)
            if producer is None:
                continue
            if producer[0] == "node" and self._mine(self.pattern.nodes[producer[1]].alt) \
                    and producer[1] not in self.done_nodes:
                self.code.append(Produce(slot, producer[1], producer[2]))
                self._took(self.pattern.nodes[producer[1]])
                return True
            if producer[0] == "alt" and self._mine(self.pattern.alts[producer[1]].within) \
                    and producer[1] not in self.done_alts:
                self._alt(self.pattern.alts[producer[1]])
                return True
        return False

    def _consumer_edge(self) -> bool:
        for slot in reversed(self.bound):  # from the newest value: its consumers are the likeliest few
            for node in self.pattern.mandatory():
                if node.id not in self.done_nodes and slot in node.inputs:
                    self.code.append(Consume(slot, node.id))
                    self._took(node)
                    return True
            alt = self._consuming_alt(slot)
            if alt is not None:
                roots = [branch_root(self.pattern, b.var) for b in alt.branches]
                self.code.append(ConsumeAlt(slot, alt.id, tuple((r.op, r.domain) for r in roots)))
                self._bind(alt.slot)
                self._alt(alt)
                return True
        return False

    def _consuming_alt(self, slot: int) -> Alt | None:
        """An outermost alternative not yet matched whose every branch is a node reading `slot` directly."""
        for alt in self.pattern.alts:
            if alt.within is not None or alt.id in self.done_alts:
                continue
            roots = [branch_root(self.pattern, b.var) for b in alt.branches]
            if all(r is not None and slot in r.inputs for r in roots):
                return alt
        return None

    def _mine(self, context) -> bool:
        return context == self.context

    # --- emitting -----------------------------------------------------------------------------------

    def _took(self, node: PNode) -> None:
        self.done_nodes.add(node.id)
        if node.commutative:
            # taking the node bound its outputs and attributes: conditions on them run before its inputs'
            # orders are tried (`y = Add(m, b) where rank(y) == 2` fails without looking at m and b)
            for slot in (*node.outputs, node.out_rest, *(a.slot for a in node.attrs)):
                if slot is not None:
                    self._bind(slot)
            self._ready_preds()
            self.code.append(Commute(node.id))
        for slot in node.outputs + node.inputs:
            self._bind(slot)
        for slot in (node.out_rest, node.rest, *(a.slot for a in node.attrs)):
            if slot is not None:
                self._bind(slot)

    def _bind(self, slot: int) -> None:
        if slot not in self.bound:
            self.bound.append(slot)

    def _alt(self, alt: Alt) -> None:
        """Code for an alternative: a choice, then each branch ending in a jump past the others."""
        self.done_alts.add(alt.id)
        choice_at = len(self.code)
        self.code.append(None)
        starts, jumps, bound_sets = [], [], []
        for index, branch in enumerate(alt.branches):
            starts.append(len(self.code))
            sub = _Planner(self.pattern, (alt.id, index), self)
            if branch.var != alt.slot:
                self.code.append(Unify(branch.var, alt.slot))
            sub._bind(branch.var)
            sub._walk(consumers=False)
            self.done_nodes |= {n for n in sub.done_nodes if self.pattern.nodes[n].alt is not None}
            self.done_alts |= sub.done_alts
            bound_sets.append(set(sub.bound))
            jumps.append(len(self.code))
            self.code.append(None)
        for at in jumps:
            self.code[at] = Jump(target=len(self.code))
        self.code[choice_at] = Alternatives(alt.id, tuple(starts))
        common = set.intersection(*bound_sets) if bound_sets else set()
        for slot in sorted(common, key=lambda s: (s not in self.bound, s)):
            self._bind(slot)

    def _ready_preds(self) -> None:
        bound = set(self.bound)
        for pred in list(self.preds):
            if all(self._is_bound(name, bound) for name in pred.names):
                self.code.append(Check(pred))
                self.preds.remove(pred)

    def _is_bound(self, name: str, bound: set[int]) -> bool:
        slot = self.names.get(name)
        if slot is None:
            return True  # a constant or dtype name, not a variable
        alt = next((a for a in self.pattern.alts if a.slot == slot), None)
        return slot in bound and (alt is None or alt.id in self.done_alts)
