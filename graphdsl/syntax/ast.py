"""The typed AST of a .gds script: frozen dataclasses, each with the span it was written at.

Names of tensors and nodes are `Name`s (a str with a span), so the passes built from these nodes can point
errors at the exact word. Later statement kinds (rules, precision, build) add classes here; nothing that
exists changes shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from graphdsl.diagnostics import SourceFile, Span
from graphdsl.syntax.names import Name

# --- expressions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    """An int, float, string or size (sizes are ints in bytes); `text` is what was written."""

    value: object
    text: str
    span: Span


@dataclass(frozen=True)
class Ident:
    """A bare word used as a value: `on`, `float16`, `cosine`, a symbolic dim."""

    name: str
    span: Span


@dataclass(frozen=True)
class ListExpr:
    items: tuple["Expr", ...]
    span: Span


@dataclass(frozen=True)
class Unary:
    op: str
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class Binary:
    op: str
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class Call:
    """`f(a, b)` in a constant expression; `Op(x, y, attr = v)` (or `dom.ain::Op(...)`) where nodes are built."""

    func: Name
    args: tuple["Expr", ...]
    span: Span
    keywords: tuple["Assignment", ...] = ()
    domain: str = ""
    optional: bool = False  # `Cast?(x)` in a rule pattern: the node may be absent


@dataclass(frozen=True)
class Index:
    base: "Expr"
    index: "Expr"
    span: Span


@dataclass(frozen=True)
class Compare:
    """`a == b`, `rank(x) >= 2`: `op` is one of `== != < <= > >=` (rule predicates only)."""

    op: str
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class Approx:
    """`c ~= 1.4142 tol 1e-6`: equal within a relative tolerance (`tol` None: the default)."""

    left: "Expr"
    right: "Expr"
    tol: "Expr | None"
    span: Span


@dataclass(frozen=True)
class Logical:
    """`a and b`, `a or b` (rule predicates only)."""

    op: str
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class Not:
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class Alternative:
    """`Pow(d, 2) | Mul(d, d)`: a pattern matching any one of its branches, tried in order."""

    branches: tuple["Expr", ...]
    span: Span


@dataclass(frozen=True)
class Labelled:
    """`sq: Pow(d, 2)` as a pattern argument: names the value the inner pattern matches."""

    name: Name
    value: "Expr"
    span: Span


@dataclass(frozen=True)
class Splat:
    """`xs...` as an argument: the rest of a variadic input list."""

    name: Name
    span: Span


Expr = Union[Literal, Ident, ListExpr, Unary, Binary, Call, Index, Compare, Approx, Logical, Not, Alternative,
             Labelled, Splat]

# --- shared pieces ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """`key value` after a statement (`size_threshold 16MiB`)."""

    key: Name
    value: Expr
    span: Span


@dataclass(frozen=True)
class Assignment:
    """`name = expr` (node attributes, pass arguments)."""

    key: Name
    value: Expr
    span: Span


Dim = Union[int, Name, None]  # a fixed size, a symbolic name, or unknown (`?`)


@dataclass(frozen=True)
class TensorSpec:
    name: Name
    shape: tuple[Dim, ...] | None
    dtype: Name | None
    span: Span


# --- statements -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    path: str
    span: Span


@dataclass(frozen=True)
class ModelStmt:
    path: str
    span: Span


@dataclass(frozen=True)
class Save:
    path: str
    options: tuple[Option, ...]
    span: Span


@dataclass(frozen=True)
class DomainDecl:
    domain: str
    version: int
    span: Span


@dataclass(frozen=True)
class Extract:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    span: Span


@dataclass(frozen=True)
class FoldConstants:
    options: tuple[Option, ...]
    span: Span


@dataclass(frozen=True)
class Cleanup:
    options: tuple[Option, ...]
    span: Span


@dataclass(frozen=True)
class Toposort:
    span: Span


@dataclass(frozen=True)
class InlineFunctions:
    span: Span


@dataclass(frozen=True)
class RemoveNodes:
    names: tuple[Name, ...]
    options: tuple[Option, ...]
    span: Span


@dataclass(frozen=True)
class Rename:
    kind: str  # "tensor" | "node"
    old: Name
    new: Name
    span: Span


@dataclass(frozen=True)
class TensorProp:
    key: str  # "shape" | "dtype" | "dim"
    value: object  # tuple of dims, a dtype Name, or (index, dim)
    span: Span


@dataclass(frozen=True)
class SetTensor:
    kind: str  # "input" | "output"
    name: Name
    props: tuple[TensorProp, ...]
    span: Span


@dataclass(frozen=True)
class SetNode:
    node: Name
    assignments: tuple[Assignment, ...]
    span: Span


@dataclass(frozen=True)
class SetBatch:
    dim: Dim
    span: Span


@dataclass(frozen=True)
class Convert:
    target: str  # "opset" | "ir"
    version: int
    span: Span


@dataclass(frozen=True)
class Verify:
    options: tuple[Option, ...]
    shapes: tuple[TensorSpec, ...]  # `shape x [1, 3, 640, 640]`: input shapes for the random data
    span: Span
    compare: bool = True  # `verify off`: the script changes what the model computes on purpose


@dataclass(frozen=True)
class ApplyPass:
    name: Name
    arguments: tuple[Assignment, ...]
    span: Span


@dataclass(frozen=True)
class ReplaceNode:
    """`replace node NAME with Op(...)`: the node becomes the call's nodes, writing the same outputs."""

    node: Name
    call: Call
    span: Span


@dataclass(frozen=True)
class AddNode:
    """`add node Op(...) -> out, ...`: new nodes writing new tensors."""

    call: Call
    outputs: tuple[Name, ...]
    span: Span


@dataclass(frozen=True)
class OutName:
    """One name on the left of a rule binding; `rest` for `rest...` (the remaining outputs)."""

    name: Name
    rest: bool
    span: Span


@dataclass(frozen=True)
class PatternBinding:
    """`y = Op(...)` or `Op(...) -> (a, b, rest...)` in a `match` block, with its own `where`."""

    outputs: tuple[OutName, ...]
    value: Expr
    where: Expr | None
    span: Span
    arrow: bool = False  # written `Op(...) -> outputs`


@dataclass(frozen=True)
class RewriteBinding:
    """`y = Op(...)` or `Op(...) -> (a, b)` in a `rewrite` block."""

    outputs: tuple[OutName, ...]
    value: Expr
    span: Span
    arrow: bool = False


@dataclass(frozen=True)
class Rule:
    """`rule NAME [priority N] { match {...} [where ...] rewrite {...} }`; `header` spans `rule NAME ...`."""

    name: Name
    priority: int
    match: tuple[PatternBinding, ...]
    where: Expr | None
    rewrite: tuple[RewriteBinding, ...]
    span: Span
    header: Span


@dataclass(frozen=True)
class ReplaceRule:
    """`replace [y:] PATTERN [where ...] with EXPR`: a one-line rule; `y` names the matched value."""

    pattern: Expr
    where: Expr | None
    replacement: Expr
    span: Span
    root: Name | None = None


Statement = Union[Rule, ReplaceRule, ReplaceNode, AddNode, Import, ModelStmt, Save, DomainDecl, Extract, FoldConstants, Cleanup, Toposort,
                  InlineFunctions, RemoveNodes, Rename, SetTensor, SetNode, SetBatch, Convert, Verify, ApplyPass]


@dataclass(frozen=True)
class Script:
    statements: tuple[Statement, ...]
    source: SourceFile
