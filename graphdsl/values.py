"""Evaluating constant expressions of a script (attribute values, options, pass arguments).

Bare words evaluate to `Name`s (strings with spans) so the consumer decides what they mean: `on` for a
flag, `float16` for a dtype, `batch` for a symbolic dim.
"""

from __future__ import annotations

import math

from graphdsl.diagnostics import script_error
from graphdsl.syntax import ast
from graphdsl.syntax.names import Name

BAD_EXPRESSION = "GDS114"

_FUNCTIONS = {"sqrt": math.sqrt, "exp": math.exp, "log": math.log, "abs": abs, "min": min, "max": max,
              "int": int, "float": float, "len": len}
_CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf}
_TRUE, _FALSE = {"on", "true", "yes"}, {"off", "false", "no"}
_RULE_ONLY = (ast.Compare, ast.Approx, ast.Logical, ast.Not, ast.Alternative, ast.Labelled, ast.Splat)


def evaluate(expr: ast.Expr) -> object:
    """The Python value of a constant expression; errors point at the sub-expression at fault."""
    if isinstance(expr, ast.Literal):
        return expr.value
    if isinstance(expr, ast.Ident):
        return _CONSTANTS.get(expr.name, Name(expr.name, expr.span))
    if isinstance(expr, ast.ListExpr):
        return [evaluate(item) for item in expr.items]
    if isinstance(expr, ast.Unary):
        return -_number(expr.operand)
    if isinstance(expr, ast.Binary):
        return _binary(expr)
    if isinstance(expr, ast.Call):
        return _call(expr)
    if isinstance(expr, ast.Index):
        return _index(expr)
    if isinstance(expr, _RULE_ONLY):
        raise script_error(BAD_EXPRESSION, "comparisons, `and`/`or`/`not`, `|`, `name: ...` and `xs...` are only "
                           "allowed in rules", expr.span, hint="see the Rules section of docs/language.md")
    raise TypeError(f"not an expression: {expr!r}")  # pragma: no cover - the grammar admits no other


def _number(expr: ast.Expr) -> int | float:
    value = evaluate(expr)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise script_error(BAD_EXPRESSION, f"expected a number, got {_show(value)}", expr.span,
                           label="not a number")
    return value


def _binary(expr: ast.Binary) -> object:
    left, right = evaluate(expr.left), evaluate(expr.right)
    if expr.op == "+" and isinstance(left, list) and isinstance(right, list):
        return left + right
    a, b = _number(expr.left), _number(expr.right)
    if expr.op == "/":
        if b == 0:
            raise script_error(BAD_EXPRESSION, "division by zero", expr.right.span, label="this is zero")
        return a // b if isinstance(a, int) and isinstance(b, int) and a % b == 0 else a / b
    return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b}[expr.op]()


def _call(expr: ast.Call) -> object:
    if expr.keywords or expr.domain or expr.optional:
        raise script_error(BAD_EXPRESSION, "an op call is not a constant value", expr.span,
                           hint="op calls build nodes in `replace node` and `add node`")
    fn = _FUNCTIONS.get(str(expr.func))
    if fn is None:
        from graphdsl.diagnostics import suggestion_label

        raise script_error(BAD_EXPRESSION, f"unknown function `{expr.func}`", expr.func.span,
                           label=suggestion_label(expr.func, _FUNCTIONS),
                           hint="functions: " + ", ".join(sorted(_FUNCTIONS)))
    args = [evaluate(a) for a in expr.args]
    try:
        return fn(*args)
    except (TypeError, ValueError, OverflowError) as e:
        raise script_error(BAD_EXPRESSION, f"`{expr.func}` failed: {e}", expr.span) from None


def _index(expr: ast.Index) -> object:
    base, index = evaluate(expr.base), evaluate(expr.index)
    if not isinstance(base, list) or not isinstance(index, int) or isinstance(index, bool):
        raise script_error(BAD_EXPRESSION, "only lists can be indexed, by an integer", expr.span)
    if not -len(base) <= index < len(base):
        raise script_error(BAD_EXPRESSION, f"index {index} is out of range for a list of {len(base)}",
                           expr.index.span)
    return base[index]


def as_bool(value: object) -> bool | None:
    """`on`/`off`/`true`/`false`/`yes`/`no` (and 1/0) as a bool; None when it is none of them."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.lower()
        return True if word in _TRUE else False if word in _FALSE else None
    return None


def _show(value: object) -> str:
    return f"`{value}`" if isinstance(value, Name) else repr(value)
