"""Static checks of rule expressions: every name bound, every function known, types that fit.

Types are coarse: `bool`, `num` (a number or array), `list`, `str`, `value` (a matched tensor, which
becomes its constant value where a number is needed), `values` (a `xs...` variable) and `any` (a
captured attribute, whose type only the model knows). The checker reports what can never work — `where
rank(x)` (a number where a condition is due), `rank(2)`, `dtype(x) < 3`, `eps and 1` — with a span.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from graphdsl.diagnostics import Diagnostic, suggestion_label
from graphdsl.match.expr import CONSTANTS, FUNCTIONS, is_dtype_name
from graphdsl.syntax import ast

UNBOUND = "GDS501"
TYPE_ERROR = "GDS503"
UNKNOWN_FUNCTION = "GDS504"

NUMERIC = frozenset({"num", "value", "any"})
_PATTERN_ONLY = (ast.Alternative, ast.Labelled, ast.Splat)


@dataclass
class Names:
    """What the names of a rule are: variable -> `value` | `values` | `any`, and which name alternatives."""

    kinds: dict[str, str]
    alternatives: set[str] = field(default_factory=set)
    optional: set[str] = field(default_factory=set)
    maybe: set[str] = field(default_factory=set)  # bound in some branches only
    errors: list[Diagnostic] = field(default_factory=list)

    def error(self, code: str, message: str, span, label: str = "", hint: str = "") -> str:
        """Report a problem; returns `any` so the bad sub-expression is reported once."""
        self.errors.append(Diagnostic(code, message, span=span, label=label, hints=(hint,) if hint else ()))
        return "any"  # an erroneous sub-expression types as anything, so one mistake is reported once


def type_of(expr: ast.Expr, names: Names) -> str:
    """The type of an expression; problems go to `names.errors`."""
    if isinstance(expr, ast.Literal):
        return "str" if isinstance(expr.value, str) else "num"
    if isinstance(expr, ast.Ident):
        return _ident(expr, names)
    if isinstance(expr, ast.ListExpr):
        for item in expr.items:
            type_of(item, names)
        return "list"
    if isinstance(expr, _PATTERN_ONLY):
        return names.error(TYPE_ERROR, "this is pattern syntax, not a value", expr.span,
                           hint="`|` separates pattern alternatives; in a condition write `or`")
    return _COMPOUND[type(expr)](expr, names)


def expect(expr: ast.Expr, names: Names, wanted: frozenset[str] | set[str], what: str) -> str:
    """Type-check `expr` and report it when its type is not among `wanted` (`any` always fits)."""
    found = type_of(expr, names)
    if found != "any" and found not in wanted:
        names.error(TYPE_ERROR, f"{what} must be {_describe(wanted)}, but `{expr.span.text}` is "
                    f"{_ARTICLE[found]}", expr.span, label=f"this is {_ARTICLE[found]}")
    return found


def condition(expr: ast.Expr, names: Names) -> None:
    """A `where` clause: a true/false value."""
    expect(expr, names, {"bool"}, "a `where` condition")


def _ident(expr: ast.Ident, names: Names) -> str:
    kind = names.kinds.get(expr.name)
    if kind is not None:
        if expr.name in names.maybe:
            return names.error(UNBOUND, f"`{expr.name}` is bound in some alternatives only", expr.span,
                               label="not bound when another branch matched",
                               hint="bind it in every branch, or test which one matched with `branch(...)`")
        return kind
    if expr.name in CONSTANTS:
        return "bool" if isinstance(CONSTANTS[expr.name], bool) else "num"
    if is_dtype_name(expr.name):
        return "str"
    return names.error(UNBOUND, f"`{expr.name}` is not bound by the pattern", expr.span,
                       label=suggestion_label(expr.name, names.kinds) or "unbound",
                       hint="names in `where` and `rewrite` must appear in the `match` block")


def _unary(expr: ast.Unary, names: Names) -> str:
    expect(expr.operand, names, NUMERIC, "the operand of `-`")
    return "num"


def _binary(expr: ast.Binary, names: Names) -> str:
    left, right = type_of(expr.left, names), type_of(expr.right, names)
    if expr.op == "+" and left == right == "list":
        return "list"
    for side, found in ((expr.left, left), (expr.right, right)):
        if found not in NUMERIC | {"list"}:
            names.error(TYPE_ERROR, f"`{expr.op}` needs numbers, but `{side.span.text}` is {_ARTICLE[found]}",
                        side.span, label=f"this is {_ARTICLE[found]}")
    return "num"


def _index(expr: ast.Index, names: Names) -> str:
    expect(expr.base, names, NUMERIC | {"list"}, "an indexed value")
    expect(expr.index, names, NUMERIC, "an index")
    return "any"


def _compare(expr: ast.Compare, names: Names) -> str:
    left, right = type_of(expr.left, names), type_of(expr.right, names)
    if expr.op in ("==", "!="):
        kinds = {left, right}
        if kinds == {"str", "num"} or "bool" in kinds and len(kinds) == 2 and "any" not in kinds:
            names.error(TYPE_ERROR, f"`{expr.op}` compares {_ARTICLE[left]} with {_ARTICLE[right]}",
                        expr.span,
                        label="these can never be equal")
        return "bool"
    for side, found in ((expr.left, left), (expr.right, right)):
        if found not in NUMERIC | {"list"}:
            names.error(TYPE_ERROR,
                        f"`{expr.op}` orders numbers, but `{side.span.text}` is {_ARTICLE[found]}",
                        side.span, label=f"this is {_ARTICLE[found]}")
    return "bool"


def _approx(expr: ast.Approx, names: Names) -> str:
    expect(expr.left, names, NUMERIC, "each side of `~=`")
    expect(expr.right, names, NUMERIC, "each side of `~=`")
    if expr.tol is not None:
        expect(expr.tol, names, NUMERIC, "a tolerance")
    return "bool"


def _logical(expr: ast.Logical, names: Names) -> str:
    expect(expr.left, names, {"bool"}, f"each side of `{expr.op}`")
    expect(expr.right, names, {"bool"}, f"each side of `{expr.op}`")
    return "bool"


def _not(expr: ast.Not, names: Names) -> str:
    expect(expr.operand, names, {"bool"}, "the operand of `not`")
    return "bool"


def _call(expr: ast.Call, names: Names) -> str:
    fn = FUNCTIONS.get(str(expr.func))
    if fn is None or expr.domain or expr.keywords or expr.optional:
        return names.error(UNKNOWN_FUNCTION, f"unknown function `{expr.func}`", expr.func.span or expr.span,
                           label=suggestion_label(expr.func, FUNCTIONS),
                           hint="functions: " + ", ".join(sorted(FUNCTIONS)))
    params = _expand(fn.params, len(expr.args))
    required = sum(1 for p in fn.params if not p.endswith("*"))
    if len(expr.args) < required or params is None:
        return names.error(TYPE_ERROR, f"`{expr.func}` takes {_arity(fn.params)}, got {len(expr.args)}",
                           expr.span)
    for arg, param in zip(expr.args, params):
        _argument(str(expr.func), arg, param, names)
    return fn.result


def _expand(params: tuple[str, ...], count: int) -> list[str] | None:
    if params and params[-1].endswith("*"):
        fixed = list(params[:-1])
        return fixed + [params[-1][:-1]] * max(0, count - len(fixed))
    return list(params) if count <= len(params) else None


def _arity(params: tuple[str, ...]) -> str:
    fixed = [p for p in params if not p.endswith("*")]
    more = " or more" if len(fixed) < len(params) else ""
    return f"{len(fixed)}{more} argument{'s' if len(fixed) != 1 or more else ''}"


def _argument(fn: str, arg: ast.Expr, param: str, names: Names) -> None:
    if param in ("var", "alt"):
        _variable_argument(fn, arg, param, names)
    elif param == "num":
        expect(arg, names, NUMERIC | {"list"}, f"the argument of `{fn}`")
    elif param == "list":
        expect(arg, names, {"list", "num", "value", "any"}, f"the argument of `{fn}`")
    elif param == "str":
        expect(arg, names, {"str", "any"}, f"the argument of `{fn}`")
    else:
        type_of(arg, names)


def _variable_argument(fn: str, arg: ast.Expr, param: str, names: Names) -> None:
    if not isinstance(arg, ast.Ident) or arg.name not in names.kinds:
        if isinstance(arg, ast.Ident):
            _ident(arg, names)
            return
        names.error(TYPE_ERROR, f"`{fn}` takes the name of a pattern variable", arg.span,
                    label="not a variable name")
        return
    _ident(arg, names)
    if param == "alt" and arg.name not in names.alternatives:
        names.error(TYPE_ERROR, f"`{arg.name}` is not an alternative (`{fn}` needs one)", arg.span,
                    hint="name an alternative: `v = A(x) | B(x)`, `v = Op?(x)`, or `v: A(x) | B(x)` inline")
    elif param == "alt" and fn == "present" and arg.name not in names.optional:
        names.error(TYPE_ERROR, f"`{arg.name}` is not an optional node (`present` needs `v = Op?(x)`)",
                    arg.span, hint="for other alternatives use `branch(v) == 0`")
    elif param == "var" and names.kinds[arg.name] != "value":
        names.error(TYPE_ERROR, f"`{fn}` takes a value variable; `{arg.name}` is "
                    f"{_ARTICLE[names.kinds[arg.name]]}", arg.span)


def _describe(wanted) -> str:
    words = [_ARTICLE[w] for w in sorted(wanted) if w != "any"]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


_ARTICLE = {"bool": "a condition (true/false)", "num": "a number", "list": "a list", "str": "a name",
            "value": "a matched value", "values": "a list of matched values (`xs...`)",
            "any": "an attribute value"}

_COMPOUND = {
    ast.Unary: _unary,
    ast.Binary: _binary,
    ast.Index: _index,
    ast.Call: _call,
    ast.Compare: _compare,
    ast.Approx: _approx,
    ast.Logical: _logical,
    ast.Not: _not,
}


def names_in(expr: ast.Expr) -> list[str]:
    """The identifiers an expression reads, in order, without repeats (function names excluded)."""
    found: dict[str, None] = {}
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Ident):
            found.setdefault(node.name, None)
        elif isinstance(node, ast.Splat):
            found.setdefault(str(node.name), None)
        else:
            stack.extend(reversed(_children(node)))
    return list(found)


def _children(node) -> list:
    if isinstance(node, ast.ListExpr):
        return list(node.items)
    if isinstance(node, ast.Call):
        return list(node.args) + [k.value for k in node.keywords]
    if isinstance(node, ast.Alternative):
        return list(node.branches)
    if isinstance(node, ast.Approx):
        return [node.left, node.right] + ([node.tol] if node.tol is not None else [])
    for attrs in (("left", "right"), ("operand",), ("base", "index"), ("value",)):
        if all(hasattr(node, a) for a in attrs):
            return [getattr(node, a) for a in attrs]
    return []
