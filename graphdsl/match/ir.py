"""The pattern IR: what a compiled rule is, as frozen data.

A pattern is a small graph. *Slots* are the values it talks about: named variables (`x`), wildcards
(`_`), literal constants (`0.5`), the outputs of pattern nodes, the rest of a variadic list (`xs...`) and
captured attributes (`perm=p`). *Pattern nodes* say "this value is produced by an op like this".
*Alternatives* (`Pow(d, 2) | Mul(d, d)`, and `Cast?(x)`, which is `Cast(x) | x`) say "this value is
matched by one of these branches"; the nodes inside a branch are conditional, the others mandatory.

Predicates and rewrites keep their expressions as AST (`graphdsl.syntax.ast`): they are evaluated per
match by `graphdsl.match.expr`, with names resolved against the match's bindings.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphdsl.diagnostics import Span
from graphdsl.syntax import ast

VALUE, REST, ATTR = "value", "rest", "attr"

# Ops whose inputs may be matched in any order. Max/Min/Sum/Mean take any number of inputs.
COMMUTATIVE = frozenset({"Add", "Mul", "Max", "Min", "Sum", "Mean", "And", "Or", "Xor", "Equal",
                         "BitwiseAnd", "BitwiseOr", "BitwiseXor"})


@dataclass(frozen=True)
class Slot:
    """A value of the pattern.

    Args:
        id: index into the matcher's binding array.
        name: the variable's name; "" for wildcards, literals and unnamed node outputs.
        kind: `value` (one tensor), `rest` (a tuple of tensors) or `attr` (an attribute value).
        literal: for a literal constant (`has_literal`), the number or list it must equal.
        span: where the pattern wrote it.
    """

    id: int
    name: str
    kind: str = VALUE
    literal: object = None
    has_literal: bool = False
    span: Span | None = None


@dataclass(frozen=True)
class AttrTest:
    """`axes=[-1]` (a literal to equal) or `perm=p` (a capture into slot `slot`)."""

    name: str
    slot: int | None
    value: object = None
    span: Span | None = None


@dataclass(frozen=True)
class PNode:
    """A pattern node: a graph node of `op` whose inputs and outputs are the given slots.

    Args:
        id: index into the matcher's node array.
        op, domain: what the graph node must be (domain "" is ONNX's).
        inputs: slots of the fixed inputs, in order; `rest_at` is where the `rest` slot sits among them.
        outputs: slots of the fixed outputs (output i is `outputs[i]`); `out_rest` takes the others.
        exact_outputs: the node must have exactly these outputs (`-> (a, b)`); a plain `y = Op(...)` names
            output 0 and lets the node have more.
        attrs: attribute tests.
        commutative: inputs are matched in any order.
        alt: (alternative id, branch index) when the node sits inside an alternative's branch.
        span: the op call in the script.
    """

    id: int
    op: str
    domain: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    attrs: tuple[AttrTest, ...] = ()
    rest: int | None = None
    rest_at: int = 0
    out_rest: int | None = None
    exact_outputs: bool = False
    commutative: bool = False
    alt: tuple[int, int] | None = None
    span: Span | None = None

    @property
    def qualified(self) -> str:
        """`domain::Op`, or `Op` for the default domain."""
        return f"{self.domain}::{self.op}" if self.domain else self.op


@dataclass(frozen=True)
class Branch:
    """One branch of an alternative: its pattern matches slot `var`, which must equal the alternative's
    value (the planner then follows `var`'s producer inside the branch)."""

    var: int


@dataclass(frozen=True)
class Alt:
    """An alternative: the value in `slot` matches one of `branches`, tried in order.

    `optional` marks `Op?(x)`: branch 0 is the node, branch 1 passes `x` through.
    """

    id: int
    slot: int
    branches: tuple[Branch, ...]
    optional: bool = False
    within: tuple[int, int] | None = None  # the enclosing alternative's (id, branch), if nested
    span: Span | None = None


@dataclass(frozen=True)
class Pred:
    """A `where` condition; `names` are the variables it reads (sorted), so it runs once they are bound."""

    expr: ast.Expr
    names: tuple[str, ...]
    span: Span | None = None


@dataclass(frozen=True)
class Pattern:
    """A compiled `match` block.

    Args:
        slots, nodes, alts: the parts, indexed by their ids.
        names: variable name -> slot id, in the order the pattern binds them.
        producers: slot id -> ("node", pnode id, output index) | ("alt", alt id) for computed values.
        preds: the `where` conditions, split at top-level `and`s so each runs as early as it can.
        maybe_bound: names bound in some branches of an alternative only.
    """

    slots: tuple[Slot, ...]
    nodes: tuple[PNode, ...]
    alts: tuple[Alt, ...]
    names: tuple[tuple[str, int], ...]
    producers: tuple[tuple[int, tuple], ...]
    preds: tuple[Pred, ...] = ()
    maybe_bound: tuple[str, ...] = ()

    def slot_of(self, name: str) -> int | None:
        """The slot of a variable name, or None."""
        return next((s for n, s in self.names if n == name), None)

    def mandatory(self) -> tuple[PNode, ...]:
        """Pattern nodes outside every alternative: one of them anchors the search."""
        return tuple(n for n in self.nodes if n.alt is None)


# --- rewrites -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RVar:
    """A tensor by name: a matched value or a value an earlier rewrite line computed."""

    name: str
    span: Span | None = None


@dataclass(frozen=True)
class RRest:
    """`xs...`: the tensors a variadic pattern input matched, as several inputs."""

    name: str
    span: Span | None = None


@dataclass(frozen=True)
class RConst:
    """A value computed per match (`1.0`, `const(w * s)`), added as a new initializer."""

    expr: ast.Expr
    span: Span | None = None


@dataclass(frozen=True)
class RCall:
    """A new node; attribute values are expressions evaluated per match."""

    op: str
    domain: str
    inputs: tuple["RExpr", ...]
    attrs: tuple[tuple[str, ast.Expr], ...] = ()
    span: Span | None = None


RExpr = RVar | RRest | RConst | RCall


@dataclass(frozen=True)
class RStep:
    """One rewrite line: `targets` (matched values or new locals) are given `value`'s outputs."""

    targets: tuple[str, ...]
    value: RExpr
    span: Span | None = None


# --- rules --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One instruction of a matching program (see `graphdsl.match.steps`)."""


@dataclass(frozen=True)
class Program:
    """The matching instructions for one choice of anchor (a pattern node, or the root alternative)."""

    anchor_node: int | None
    anchor_alt: int | None
    steps: tuple = ()


@dataclass(frozen=True)
class Rule:
    """A compiled rule.

    Args:
        name: the rule's name (`replace` rules are named `FILE:LINE`).
        priority: higher first; equal priorities go in declaration order (`index`).
        pattern: the `match` block.
        rewrite: the `rewrite` block, in order.
        replaced: the matched values the rewrite gives new values to.
        programs: one matching program per usable anchor.
        span: the rule's header (`rule NAME priority N`) or the whole `replace` line.
    """

    name: str
    priority: int
    index: int
    pattern: Pattern
    rewrite: tuple[RStep, ...]
    replaced: tuple[str, ...]
    programs: tuple[Program, ...] = ()
    span: Span | None = None

    @property
    def order(self) -> tuple[int, int]:
        """Sort key: priority (higher first), then declaration order."""
        return (-self.priority, self.index)
