"""The matcher: a small backtracking machine running a rule's program against one anchor node.

A program is a flat list of steps (built by `graphdsl.match.plan`). Plain steps bind or check and
either go on or fail; *choice* steps (commutative inputs, alternatives, consumers of a value) push a
choice point holding an iterator of the remaining options. Failing pops back to the newest choice point,
undoes the bindings made since (a trail, as in a Prolog machine) and takes its next option. Nothing
recurses, so deep graphs and deep patterns cost no Python stack, and commutative nodes cost an option
each where a peer would clone the rule 2^k times.

With a `Tracer`, every failure is recorded with the pattern node it happened at, so `explain` can show
the attempt that got furthest.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import onnx_graphsurgeon as gs

from graphdsl.match import expr as ex
from graphdsl.match.consts import stored_size
from graphdsl.match.ir import ATTR, Pattern, PNode, Pred, Program, Step
from graphdsl.match.view import ATTRIBUTE_INPUTS, MISSING, GraphView, norm_domain

STEP_BUDGET = 20_000  # steps per anchor: a pathological pattern fails this anchor instead of hanging


@dataclass
class Failure:
    """Why one attempt stopped: at which pattern node or condition, on which graph node, how far it got."""

    kind: str  # op | producer | consumer | inputs | outputs | attribute | constant | bound | predicate | ...
    message: str
    pnode: int | None
    node: object  # the graph node looked at, if any
    progress: int  # pattern nodes matched when it failed
    matched: tuple = ()  # (pnode id, graph node) pairs matched so far
    span: object = None  # the pattern text at fault: the pattern node, or the `where` condition


class Tracer:
    """Keeps the failure of the attempt that got furthest (the first of equals)."""

    def __init__(self):
        self.best: Failure | None = None
        self.attempts = 0

    def record(self, failure: Failure) -> None:
        """Keep `failure` if it got further than every earlier one."""
        if self.best is None or failure.progress > self.best.progress:
            self.best = failure


class Matcher:
    """Matching state for one rule over one graph view; `run` tries one anchor."""

    def __init__(self, pattern: Pattern, view: GraphView, claimed: set[int] | None = None,
                 tracer: Tracer | None = None):
        self.pattern, self.view, self.tracer = pattern, view, tracer
        self.vals: list = [None] * len(pattern.slots)
        self.nodes: list = [None] * len(pattern.nodes)
        self.branches: list = [None] * len(pattern.alts)
        self.trail: list[int] = []
        # Shared with the caller: nodes of matches already taken this round stay off limits, and a
        # successful match's nodes stay in it (see `commit`).
        self.used: set[int] = claimed if claimed is not None else set()
        self.anchor = None
        self.at: int | None = None  # the pattern node being matched, for failure reports
        self.env = MatchEnv(self)
        self.producer_ops = producer_ops(pattern)
        self.literals = [info.has_literal for info in pattern.slots]  # unify's first question, per slot

    # --- state ------------------------------------------------------------------------------------------

    def bind(self, slot: int, value) -> None:
        """Bind a slot, remembering it on the trail."""
        self.vals[slot] = value
        self.trail.append(slot << 2)

    def set_node(self, pnode: int, node) -> None:
        """Assign a graph node to a pattern node, claiming it for this match."""
        self.nodes[pnode] = node
        self.used.add(id(node))
        self.trail.append(pnode << 2 | 1)

    def set_branch(self, alt: int, index: int) -> None:
        """Record which branch of an alternative is being tried."""
        self.branches[alt] = index
        self.trail.append(alt << 2 | 2)

    def undo(self, mark: int) -> None:
        """Undo bindings back to trail position `mark`."""
        trail = self.trail
        while len(trail) > mark:
            entry = trail.pop()
            kind, index = entry & 3, entry >> 2
            if kind == 0:
                self.vals[index] = None
            elif kind == 1:
                self.used.discard(id(self.nodes[index]))
                self.nodes[index] = None
            else:
                self.branches[index] = None

    def commit(self) -> None:
        """Keep the current match's nodes claimed and start afresh."""
        self.trail.clear()
        self.vals = [None] * len(self.vals)
        self.nodes = [None] * len(self.nodes)
        self.branches = [None] * len(self.branches)

    def fail(self, kind: str, message: str, pnode: int | None = None, node=None, span=None) -> bool:
        """Record a failure with the tracer (if any); always False, to be returned."""
        if self.tracer is not None:
            matched = tuple((i, n) for i, n in enumerate(self.nodes) if n is not None)
            if pnode is None and span is None and self.at is not None:  # a value check inside a node's match
                pnode = self.at
                node = node if node is not None else self.nodes[self.at]
            if span is None and pnode is not None:
                span = self.pattern.nodes[pnode].span
            self.tracer.record(Failure(kind, message, pnode, node, len(matched), matched, span))
        return False

    # --- running ----------------------------------------------------------------------------------------

    def run(self, program: Program, anchor) -> bool:
        """Try to match with `anchor` as the program's anchor node; bindings stay in place on success."""
        self.undo(0)
        self.anchor = anchor
        steps, stack, pc, budget, trail = program.steps, [], 0, STEP_BUDGET, self.trail
        end = len(steps)
        while pc < end:
            budget -= 1
            if budget < 0:
                self.fail("budget", f"gave up after {STEP_BUDGET} steps")
                return False
            step = steps[pc]
            if step.choice:
                stack.append((len(trail), step.options(self, pc)))
            elif step.jump >= 0:
                pc = step.jump
                continue
            elif step.run(self):
                pc += 1
                continue
            pc = self._resume(stack)
            if pc < 0:
                return False
        return True

    def _resume(self, stack: list) -> int:
        trail = self.trail
        while stack:
            mark, options = stack[-1]
            if len(trail) > mark:
                self.undo(mark)
            pc = next(options, -1)
            if pc >= 0:
                return pc
            stack.pop()
        return -1

    # --- matching one value or node ---------------------------------------------------------------------

    def unify(self, slot: int, tensor) -> bool:
        """Bind a slot to a tensor, or check it is the tensor already bound (diamonds) or the literal."""
        if self.literals[slot]:
            return self.literal(slot, tensor)
        current = self.vals[slot]
        if current is None:
            self.vals[slot] = tensor  # bind(), inlined: the matcher's most frequent step
            self.trail.append(slot << 2)
            return True
        if current is tensor:
            return True
        return self.fail("bound", f"`{self.pattern.slots[slot].name}` is `{current.name}` here but "
                         f"`{tensor.name}` there", node=_producer(tensor))

    def literal(self, slot: int, tensor) -> bool:
        """Check that a tensor is the constant a pattern literal stands for."""
        info = self.pattern.slots[slot]
        size = stored_size(tensor)
        if size is not None and size != np.size(info.literal):
            # told by the shape alone, so a large weight (BERT's word embeddings) is never read
            return self.fail("constant", f"expected the constant {_show(info.literal)}, `{tensor.name}` has "
                             f"shape {list(tensor.shape)}", node=_producer(tensor))
        value = self.view.const(tensor)
        if value is None:
            return self.fail("constant",
                             f"expected the constant {_show(info.literal)}, `{tensor.name}` is not "
                             "a constant", node=_producer(tensor))
        if not literal_equal(info.literal, value):
            return self.fail("constant", f"expected the constant {_show(info.literal)}, found "
                             f"{_show_array(value)} (`{tensor.name}`)", node=_producer(tensor))
        self.bind(slot, tensor)
        return True

    def take(self, p: PNode, node) -> bool:
        """Assign graph node `node` to pattern node `p`: outputs, attributes, inputs unless commutative."""
        self.at = pid = p.id
        self.nodes[pid] = node  # set_node(), inlined
        self.used.add(id(node))
        self.trail.append(pid << 2 | 1)
        if not self._outputs(p, node) or p.attrs and not self._attributes(p, node):
            return False
        return p.commutative or self._inputs(p, node)

    def _outputs(self, p: PNode, node) -> bool:
        outs = node.outputs
        exact = p.exact_outputs and p.out_rest is None
        if len(outs) < len(p.outputs) or exact and len(outs) != len(p.outputs):
            return self.fail("outputs", f"`{p.op}` node has {len(outs)} outputs, the pattern names "
                             f"{len(p.outputs)}", p.id, node)
        for slot, tensor in zip(p.outputs, outs):
            if not self.unify(slot, tensor):
                return False
        if p.out_rest is not None:
            self.bind(p.out_rest, tuple(outs[len(p.outputs):]))
        return True

    def _attributes(self, p: PNode, node) -> bool:
        for test in p.attrs:
            value = self.view.attribute(node, test.name)
            if value is MISSING:
                return self.fail("attribute", f"attribute `{test.name}` is not set (and has no default)",
                                 p.id, node)
            if test.slot is None:
                if not attribute_equal(test.value, value):
                    return self.fail("attribute",
                                     f"attribute `{test.name}` is {_show(value)}, the pattern wants "
                                     f"{_show(test.value)}", p.id, node)
                continue
            current = self.vals[test.slot]
            if current is None:
                self.bind(test.slot, value)
            elif not attribute_equal(current, value):
                name = self.pattern.slots[test.slot].name
                return self.fail("attribute", f"attribute `{test.name}` is {_show(value)}, but `{name}` is "
                                 f"{_show(current)} elsewhere", p.id, node)
        return True

    def inputs_of(self, p: PNode, node) -> list:
        """The node's inputs as the pattern counts them: without trailing absent ones and attribute-inputs."""
        ins = node.inputs
        if ins and ins[-1].is_empty():
            ins = list(ins)
            while ins and ins[-1].is_empty():
                ins.pop()
        first = _FIRST_ATTRIBUTE_INPUT.get(p.op)
        if first is not None and p.rest is None and len(p.inputs) <= first < len(ins):
            ins = ins[:first]  # `ReduceMean(x, axes=[-1])` also matches ReduceMean-18's (x, axes) inputs
        return ins

    def _inputs(self, p: PNode, node) -> bool:
        ins = self.inputs_of(p, node)
        fixed = len(p.inputs)
        if len(ins) < fixed or (p.rest is None and len(ins) != fixed):
            return self.fail("inputs", f"`{p.op}` node has {len(ins)} inputs, the pattern has "
                             f"{fixed}{' or more' if p.rest is not None else ''}", p.id, node)
        if p.rest is None:  # the usual case: input i is pattern input i
            for position, (slot, tensor) in enumerate(zip(p.inputs, ins)):
                if not self.unify(slot, tensor):
                    return self.fail("inputs", f"input {position} of `{p.op}` does not match", p.id, node)
            return True
        tail = len(ins) - (fixed - p.rest_at)
        positions = list(range(p.rest_at)) + list(range(tail, len(ins)))
        for slot, position in zip(p.inputs, positions):
            if not self.unify(slot, ins[position]):
                return self.fail("inputs", f"input {position} of `{p.op}` does not match", p.id, node)
        if p.rest is not None:
            self.bind(p.rest, tuple(ins[p.rest_at:tail]))
        return True

    def quick(self, slot: int, tensor) -> bool:
        """unify(), plus: a slot a pattern node produces needs a producer of that op (prunes orders early)."""
        if not self.unify(slot, tensor):
            return False
        want = self.producer_ops.get(slot)
        if want is None:
            return True
        producer = _producer(tensor)
        return producer is not None and producer.op == want[0] and norm_domain(producer.domain) == want[1]


_FIRST_ATTRIBUTE_INPUT = {op: index for (op, _), index in sorted(ATTRIBUTE_INPUTS.items(), reverse=True)}


def producer_ops(pattern: Pattern) -> dict[int, tuple[str, str]]:
    """slot -> (op, domain) of the mandatory pattern node producing it: a cheap early check."""
    out = {}
    for slot, producer in pattern.producers:
        if producer[0] == "node":
            p = pattern.nodes[producer[1]]
            out[slot] = (p.op, p.domain)
    return out


def _producer(tensor):
    return tensor.inputs[0] if tensor.inputs else None


# --- equality of attributes and literals -----------------------------------------------------------------


def attribute_equal(want: object, have: object) -> bool:
    """Attribute values equal as ONNX stores them: floats compared in float32, lists item by item."""
    if isinstance(want, (list, tuple)) or isinstance(have, (list, tuple)):
        sequences = isinstance(want, (list, tuple)) and isinstance(have, (list, tuple))
        if not sequences or len(want) != len(have):
            return False
        return all(attribute_equal(a, b) for a, b in zip(want, have))
    if isinstance(want, float) or isinstance(have, float):
        try:
            return bool(np.float32(want) == np.float32(have))
        except (TypeError, ValueError):
            return False
    if hasattr(have, "values") and not isinstance(have, (int, str)):
        return literal_equal(want, np.asarray(have.values))
    return want == have


def literal_equal(literal: object, value: np.ndarray) -> bool:
    """A literal of a pattern equals a constant: same shape for lists, one element for numbers, and the
    same value once the literal is stored in the constant's element type."""
    if isinstance(literal, (int, float)) and value.size == 1 and value.dtype.kind in "fc":
        return bool(value.dtype.type(literal) == value.flat[0])  # the common case, without array ops
    want = np.asarray(literal)
    if want.ndim == 0 and value.size != 1:
        return False
    if want.ndim and want.shape != value.shape:
        return False
    if value.dtype.kind in "fc":
        return bool(np.all(want.astype(value.dtype) == value.reshape(want.shape)))
    if want.dtype.kind == "f" and not np.all(np.equal(np.mod(want, 1), 0)):
        return False  # 2.5 never equals an integer constant
    return bool(np.all(want == value.reshape(want.shape)))


def _show(value: object) -> str:
    if isinstance(value, np.ndarray):
        return _show_array(value)
    if hasattr(value, "values") and not isinstance(value, (int, str, list)):
        return _show_array(np.asarray(value.values))
    return repr(value) if not isinstance(value, str) else f'"{value}"'


def _show_array(value: np.ndarray) -> str:
    if value.size == 1:
        item = value.reshape(-1)[0].item()
        return repr(item) + (f" (shape {list(value.shape)})" if value.ndim else "")
    if value.size <= 8:
        return f"{value.tolist()}"
    return f"a {value.dtype} array of shape {list(value.shape)}"


# --- the environment predicates see ------------------------------------------------------------------------


class MatchEnv:
    """A match's bindings, as `graphdsl.match.expr` reads them."""

    def __init__(self, matcher: Matcher):
        self.m = matcher
        self.slots = dict(matcher.pattern.names)
        self.alts = {matcher.pattern.slots[a.slot].name: a.id for a in matcher.pattern.alts}

    def lookup(self, name: str) -> object:
        """A value variable as a Ref, `xs...` as a list of Refs, an attribute as its value."""
        slot = self.slots[name]  # KeyError: not a variable
        value = self.m.vals[slot]
        kind = self.m.pattern.slots[slot].kind
        if kind == ATTR:  # a tensor attribute (ConstantOfShape's `value`) reads as its array
            values = getattr(value, "values", None)
            return np.asarray(values) if isinstance(values, np.ndarray) else value
        if isinstance(value, tuple):
            return [ex.Ref(f"{name}[{i}]", t) for i, t in enumerate(value)]
        return ex.Ref(name, value)

    def const(self, tensor):
        """See `graphdsl.match.expr.Env`."""
        return self.m.view.const(tensor)

    def shape(self, tensor):
        """See `graphdsl.match.expr.Env`."""
        # a recorded shape is what the view answers first: taken here without its dtype lookup
        shape = getattr(tensor, "shape", None)
        return list(shape) if shape is not None else self.m.view.shape(tensor)

    def dtype(self, tensor):
        """See `graphdsl.match.expr.Env`."""
        return self.m.view.dtype(tensor)

    def uses(self, tensor) -> int:
        """See `graphdsl.match.expr.Env`."""
        return self.m.view.uses(tensor)

    def branch(self, name: str) -> int | None:
        """See `graphdsl.match.expr.Env`."""
        alt = self.alts.get(name)
        return None if alt is None else self.m.branches[alt]


# --- steps -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plain(Step):
    """A step that binds or checks: `run(matcher) -> bool` (False fails the attempt)."""

    choice = False
    jump = -1


@dataclass(frozen=True)
class TakeAnchor(Plain):
    """The anchor node is pattern node `node`."""

    node: int

    def run(self, m: Matcher) -> bool:
        return m.take(m.pattern.nodes[self.node], m.anchor)


@dataclass(frozen=True)
class AnchorAlt(Plain):
    """The anchor's first output is the value of alternative `alt` (a pattern whose root is `A | B`)."""

    slot: int

    def run(self, m: Matcher) -> bool:
        m.bind(self.slot, m.anchor.outputs[0])
        return True


@dataclass(frozen=True)
class Produce(Plain):
    """The tensor in `slot` is output `out` of a graph node that matches pattern node `node`."""

    slot: int
    node: int
    out: int = 0

    def run(self, m: Matcher) -> bool:
        tensor = m.vals[self.slot]
        p = m.pattern.nodes[self.node]
        producer = tensor.inputs[0] if tensor.inputs else None
        if producer is None:
            what = "a constant" if isinstance(tensor, gs.Constant) else "a graph input"
            return m.fail("producer", f"expected `{p.qualified}` to compute `{tensor.name}`, it is {what}",
                          p.id)
        if producer.op != p.op or norm_domain(producer.domain) != p.domain:
            return m.fail("op", f"expected `{p.qualified}`, found `{producer.op}`", p.id, producer)
        if id(producer) not in m.view.order:
            return m.fail("producer", f"`{producer.name}` is in another graph or already rewritten", p.id,
                          producer)
        if id(producer) in m.used:
            return m.fail("producer", f"`{producer.name}` is already part of this match", p.id, producer)
        outs = producer.outputs
        if len(outs) <= self.out or outs[self.out] is not tensor:
            return m.fail("outputs", f"`{tensor.name}` is not output {self.out} of `{producer.name}`", p.id,
                          producer)
        return m.take(p, producer)


@dataclass(frozen=True)
class Unify(Plain):
    """Slot `var` is the value already bound to slot `source` (a branch of an alternative)."""

    var: int
    source: int

    def run(self, m: Matcher) -> bool:
        return m.unify(self.var, m.vals[self.source])


@dataclass(frozen=True)
class Check(Plain):
    """A `where` condition."""

    pred: Pred

    def run(self, m: Matcher) -> bool:
        try:
            if ex.truth(self.pred.expr, m.env):
                return True
            if m.tracer is None:  # the reason is for `explain` only: building it costs a constant lookup
                return False      # per name, more than the condition itself
            reason = f"`{self.pred.span.text}` is false" + _values(m, self.pred)
        except ex.EvalFail as e:
            reason = f"`{self.pred.span.text}`: {e}"
        return m.fail("predicate", reason, span=self.pred.span)


def _values(m: Matcher, pred: Pred) -> str:
    shown = []
    for name in pred.names:
        slot = m.env.slots.get(name)
        value = m.vals[slot] if slot is not None else None
        if value is None or isinstance(value, tuple):
            continue
        if m.pattern.slots[slot].kind == ATTR:
            shown.append(f"{name} = {_show(value)}")
            continue
        const = m.view.const(value)
        shown.append(f"{name} = {_show_array(const)}" if const is not None else _uses(m, name, value))
    return f" ({', '.join(shown)})" if shown else ""


def _uses(m: Matcher, name: str, tensor) -> str:
    """`s` read by 2 nodes (Mul m, Add y): for "has one consumer" conditions."""
    readers = ", ".join(f"{n.op} {n.name}" for n in tensor.outputs[:4])
    readers += ", ..." if len(tensor.outputs) > 4 else ""
    output = " and is a graph output" if id(tensor) in m.view.state.outputs else ""
    return f"`{name}` is read by {len(tensor.outputs)} node(s) ({readers}){output}"


@dataclass(frozen=True)
class Jump(Step):
    """Continue at step `target` (the end of an alternative's branch)."""

    choice = False
    target: int = 0

    @property
    def jump(self) -> int:
        """Where to continue."""
        return self.target


@dataclass(frozen=True)
class Choice(Step):
    """A step with options: `options(matcher, pc)` yields the step to continue at after binding each
    option; the machine undoes an option's bindings before it asks for the next."""

    choice = True
    jump = -1


@dataclass(frozen=True)
class Consume(Choice):
    """Pattern node `node` reads the tensor in `slot`: try its consumers (in graph order) one by one."""

    slot: int
    node: int

    def options(self, m: Matcher, pc: int) -> Iterator[int]:
        tensor = m.vals[self.slot]
        p = m.pattern.nodes[self.node]
        found = consumers(m, tensor, p.op, p.domain)
        if not found:
            m.fail("consumer", f"no `{p.qualified}` reads `{tensor.name}`", p.id)
        mark = len(m.trail)
        for node in found:
            if m.take(p, node):
                yield pc + 1
            m.undo(mark)


@dataclass(frozen=True)
class ConsumeAlt(Choice):
    """Alternative `alt` (whose branches all read `slot`) is computed by a consumer of `slot`."""

    slot: int
    alt: int
    ops: tuple[tuple[str, str], ...]

    def options(self, m: Matcher, pc: int) -> Iterator[int]:
        tensor = m.vals[self.slot]
        found = [n for op, domain in self.ops for n in consumers(m, tensor, op, domain)]
        found.sort(key=lambda n: m.view.order[id(n)])
        alt_slot = m.pattern.alts[self.alt].slot
        mark = len(m.trail)
        for node in found:
            m.bind(alt_slot, node.outputs[0])
            yield pc + 1
            m.undo(mark)


def consumers(m: Matcher, tensor, op: str, domain: str) -> list:
    """The tensor's readers of an op in this graph not yet taken, each once, in graph order."""
    order, used = m.view.order, m.used
    found = [n for n in tensor.outputs
             if n.op == op and id(n) in order and id(n) not in used and norm_domain(n.domain) == domain]
    if len(found) > 1:
        unique = {id(n): n for n in found}  # a node reading the tensor twice is listed twice
        found = sorted(unique.values(), key=lambda n: order[id(n)])
    return found


@dataclass(frozen=True)
class Commute(Choice):
    """Match a commutative node's inputs in every order that fits (pruned input by input)."""

    node: int

    def options(self, m: Matcher, pc: int) -> Iterator[int]:
        p = m.pattern.nodes[self.node]
        m.at = p.id
        ins = m.inputs_of(p, m.nodes[self.node])
        if len(ins) < len(p.inputs) or (p.rest is None and len(ins) != len(p.inputs)):
            m.fail("inputs", f"`{p.op}` node has {len(ins)} inputs, the pattern has {len(p.inputs)}", p.id)
            return
        mark = len(m.trail)
        if len(ins) == 2 and len(p.inputs) == 2:  # Add, Mul, ...: two orders, the second only if different
            a, b = p.inputs
            if m.quick(a, ins[0]) and m.quick(b, ins[1]):
                yield pc + 1
            m.undo(mark)
            if ins[0] is not ins[1] and m.quick(a, ins[1]) and m.quick(b, ins[0]):
                yield pc + 1
            m.undo(mark)
            return
        for order in itertools.permutations(range(len(ins)), len(p.inputs)):
            if all(m.quick(slot, ins[i]) for slot, i in zip(p.inputs, order)):
                if p.rest is not None:
                    m.bind(p.rest, tuple(t for i, t in enumerate(ins) if i not in order))
                yield pc + 1
            m.undo(mark)


@dataclass(frozen=True)
class Alternatives(Choice):
    """Alternative `alt`: each branch's code starts at `starts[i]`."""

    alt: int
    starts: tuple[int, ...] = ()

    def options(self, m: Matcher, pc: int) -> Iterator[int]:
        mark = len(m.trail)
        for index, start in enumerate(self.starts):
            m.set_branch(self.alt, index)
            yield start
            m.undo(mark)

