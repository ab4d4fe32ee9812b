"""Evaluating the expressions of rules (predicates, computed attributes, new constants) against a match.

A fixed table of functions backed by numpy: a script can call these and nothing else, so it can never
run arbitrary Python. Names resolve through an `Env` (the match's bindings and the graph around them):
a value variable is a `Ref` to its tensor, turned into the tensor's constant value where arithmetic or
a comparison needs a number (and the match fails when it is not a constant).

Comparisons are exact unless a rule states a tolerance: `c == 0.1` compares in the constant's own
element type (so a float32 0.1 equals it), `c ~= 1.4142 tol 1e-6` is a relative tolerance,
`|c - 1.4142| <= 1e-6 * |1.4142|`, element by element.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from graphdsl import dtypes
from graphdsl.syntax import ast

DEFAULT_TOLERANCE = 1e-6  # `~=` without `tol`: relative, about float32's precision on a literal
CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf, "true": True, "false": False}
MAX_ELEMENTS = 1 << 24  # computed arrays larger than this fail the match instead of eating memory


class EvalFail(Exception):
    """The expression cannot be evaluated for this match (not a constant, unknown shape, ...)."""


@dataclass(frozen=True)
class Ref:
    """A tensor bound to a pattern variable, with the variable's name for messages."""

    name: str
    tensor: object


class Env(Protocol):
    """What an expression can see of a match and its graph."""

    def lookup(self, name: str) -> object:
        """The value of a rule variable; KeyError when `name` is none."""

    def const(self, tensor) -> np.ndarray | None:
        """The tensor's constant value, or None."""

    def shape(self, tensor) -> list | None:
        """The tensor's shape (ints, symbolic names, None for unknown dims), or None."""

    def dtype(self, tensor) -> str | None:
        """The tensor's element type name (`float32`), or None."""

    def uses(self, tensor) -> int:
        """How many nodes read the tensor, plus one if it is a graph output."""

    def branch(self, name: str) -> int | None:
        """Which branch of the named alternative matched, or None."""


def is_dtype_name(name: str) -> bool:
    """Whether a bare word names an element type (`float16`, `fp16`, `int64`, ...)."""
    return name in dtypes.NAMES or name in dtypes.ALIASES


def evaluate(expr: ast.Expr, env: Env) -> object:
    """The value of a rule expression for one match; raises EvalFail when it has none."""
    handler = _HANDLERS.get(type(expr))
    if handler is None:
        raise EvalFail(f"`{expr.span.text}` cannot be evaluated here")
    return handler(expr, env)


def truth(expr: ast.Expr, env: Env) -> bool:
    """Evaluate a condition; EvalFail when it is not true/false."""
    value = evaluate(expr, env)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise EvalFail(f"`{expr.span.text}` is not true or false")


# --- names and literals -------------------------------------------------------------------------------


def _ident(expr: ast.Ident, env: Env) -> object:
    try:
        return env.lookup(expr.name)
    except KeyError:
        pass
    if expr.name in CONSTANTS:
        return CONSTANTS[expr.name]
    if is_dtype_name(expr.name):
        return dtypes.ALIASES.get(expr.name, expr.name)
    return expr.name  # an attribute value such as `mode=constant` (the compiler allowed it there)


def number(value: object, env: Env, what: str | ast.Expr = "value") -> object:
    """A number or numpy array for arithmetic: a tensor's constant value, a list as an array.

    `what` names the value in messages: a phrase, or the expression it came from (its text is looked up
    only when there is a message to write, since it costs more than the arithmetic)."""
    if isinstance(value, Ref):
        return _const(value, env)
    if isinstance(value, (bool, np.bool_)):
        raise EvalFail(f"{_what(what)} is true/false, not a number")
    if isinstance(value, (int, float, np.ndarray, np.generic)):
        return value
    if isinstance(value, (list, tuple)):
        items = [number(v, env, what) if v is not None else None for v in value]
        if any(v is None for v in items):
            raise EvalFail("a dimension is unknown")
        return np.asarray(items)
    if value is None:
        raise EvalFail("a dimension is unknown")
    raise EvalFail(f"{_what(what)} {value!r} is not a number")


def _what(what: str | ast.Expr) -> str:
    return what if isinstance(what, str) else f"`{what.span.text}`"


def _const(ref: Ref, env: Env) -> np.ndarray:
    value = env.const(ref.tensor)
    if value is None:
        raise EvalFail(f"`{ref.name}` is not a constant")
    return value


def _list(expr: ast.ListExpr, env: Env) -> list:
    return [evaluate(item, env) for item in expr.items]


# --- arithmetic ---------------------------------------------------------------------------------------


def _unary(expr: ast.Unary, env: Env) -> object:
    return -number(evaluate(expr.operand, env), env, expr.operand)


def _binary(expr: ast.Binary, env: Env) -> object:
    left, right = evaluate(expr.left, env), evaluate(expr.right, env)
    if expr.op == "+" and isinstance(left, list) and isinstance(right, list):
        return left + right
    a = number(left, env, expr.left)
    b = number(right, env, expr.right)
    return _checked(_ARITHMETIC[expr.op](a, b))


def _divide(a, b):
    if isinstance(a, int) and isinstance(b, int):
        if b == 0:
            raise EvalFail("division by zero")
        return a // b if a % b == 0 else a / b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.true_divide(a, b)


_ARITHMETIC = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": _divide}


def _checked(value):
    if isinstance(value, np.ndarray) and value.size > MAX_ELEMENTS:
        raise EvalFail(f"a computed array of {value.size} elements is too large")
    return value


def _index(expr: ast.Index, env: Env) -> object:
    base = evaluate(expr.base, env)
    index = evaluate(expr.index, env)
    if isinstance(base, Ref):
        base = _const(base, env)
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
        raise EvalFail(f"index `{expr.index.span.text}` is not an integer")
    if not isinstance(base, (list, tuple, np.ndarray)) or not -len(base) <= index < len(base):
        raise EvalFail(f"`{expr.span.text}`: index {index} is out of range")
    item = base[int(index)]
    return item.item() if isinstance(item, np.generic) else item


# --- comparisons and logic ----------------------------------------------------------------------------


def _compare(expr: ast.Compare, env: Env) -> bool:
    left, right = evaluate(expr.left, env), evaluate(expr.right, env)
    if expr.op in ("==", "!="):
        same = equal(left, right, env)
        return same if expr.op == "==" else not same
    if type(left) is type(right) and type(left) in _PLAIN:
        return _ORDER_PLAIN[expr.op](left, right)
    a, b = _comparable(left, right, env)
    with np.errstate(invalid="ignore"):
        return bool(np.all(_ORDER[expr.op](a, b)))


_ORDER = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}
# Two Python ints or two floats compare as numpy would compare them, without making arrays.
_PLAIN = (int, float)
_ORDER_PLAIN = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def equal(left: object, right: object, env: Env) -> bool:
    """Exact equality; a tensor's constant compares in its own element type, dtype names with dtype codes,
    lists item by item (a symbolic dimension equals the same symbol; an unknown one is unknown)."""
    if type(left) is type(right) and type(left) in _PLAIN:  # ranks, sizes, dims: what numpy would say
        return left == right
    if left is None or right is None:
        raise EvalFail("a dimension is unknown")
    if isinstance(left, str) or isinstance(right, str):
        return _text(left) == _text(right)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all([equal(a, b, env) for a, b in zip(left, right)])
    a, b = _comparable(left, right, env)
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape and a.size != 1 and b.size != 1:
        return False
    return bool(np.all(a == b))


def _text(value: object) -> object:
    """A dtype code (Cast's `to`) as its name, so `t == float16` reads naturally."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return dtypes.dtype_name(int(value))
    return value


def _comparable(left: object, right: object, env: Env) -> tuple:
    """Numbers for a comparison: a literal takes the element type of the constant it is compared with."""
    a, b = number(left, env), number(right, env)
    if isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
        b = _as_type(b, a.dtype)
    elif isinstance(b, np.ndarray) and not isinstance(a, np.ndarray):
        a = _as_type(a, b.dtype)
    return a, b


def _as_type(value, dtype: np.dtype):
    if dtype.kind in "fc":
        return np.asarray(value, dtype=dtype)
    return value  # an integer or bool constant compares with the literal as written


def _approx(expr: ast.Approx, env: Env) -> bool:
    a = number(evaluate(expr.left, env), env, expr.left)
    b = number(evaluate(expr.right, env), env, expr.right)
    tol = DEFAULT_TOLERANCE if expr.tol is None else number(evaluate(expr.tol, env), env, "the tolerance")
    if _one(a) and _one(b) and _one(tol):  # scalars (the usual case) without array operations
        x, y = float(np.asarray(a).flat[0]), float(np.asarray(b).flat[0])
        return abs(x - y) <= float(np.asarray(tol).flat[0]) * abs(y)
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    try:
        return bool(np.all(np.abs(a64 - b64) <= tol * np.abs(b64)))
    except ValueError:  # shapes that do not broadcast
        return False


def _one(value) -> bool:
    return isinstance(value, (int, float)) or getattr(value, "size", 0) == 1


def _logical(expr: ast.Logical, env: Env) -> bool:
    first = truth(expr.left, env)
    if expr.op == "and":
        return first and truth(expr.right, env)
    return first or truth(expr.right, env)


def _not(expr: ast.Not, env: Env) -> bool:
    return not truth(expr.operand, env)


# --- functions ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Function:
    """A function scripts may call. `params` are kinds for the type checker: `var` (a value variable by
    name), `vars` (a `xs...` variable), `alt` (an alternative's name), `num`, `list`, `str`, `any`; a
    trailing `*` repeats the last one."""

    params: tuple[str, ...]
    result: str
    impl: Callable
    doc: str


def _ref(value: object, fn: str) -> Ref:
    if not isinstance(value, Ref):
        raise EvalFail(f"`{fn}` takes a pattern variable")
    return value


def _rank(env: Env, v) -> int:
    shape = _shape(env, v)
    if shape is None:
        raise EvalFail(f"the rank of `{v.name}` is unknown")
    return len(shape)


def _shape(env: Env, v) -> list:
    """Dimensions: integers, symbolic names as strings, None where unknown."""
    shape = env.shape(_ref(v, "shape").tensor)
    if shape is None:
        raise EvalFail(f"the shape of `{v.name}` is unknown")
    return [d if isinstance(d, (int, str)) and d != "" else None for d in shape]


def _dtype(env: Env, v) -> str:
    name = env.dtype(_ref(v, "dtype").tensor)
    if name is None:
        raise EvalFail(f"the element type of `{v.name}` is unknown")
    return name


def _scalar(env: Env, v) -> bool:
    value = env.const(_ref(v, "scalar").tensor)
    return value is not None and value.size == 1


def _is_const(env: Env, v) -> bool:
    return env.const(_ref(v, "is_const").tensor) is not None


def _const_fn(env: Env, v) -> np.ndarray:
    return _const(v, env) if isinstance(v, Ref) else np.asarray(number(v, env))


def _size(env: Env, v) -> int:
    shape = _shape(env, v)
    if any(not isinstance(d, int) for d in shape):
        raise EvalFail(f"the shape of `{v.name}` has unknown dimensions")
    return int(np.prod(shape, dtype=np.int64))


def _branch(env: Env, name) -> int:
    index = env.branch(name)
    if index is None:
        raise EvalFail(f"`{name}` is not an alternative")
    return index


def _len(env: Env, v) -> int:
    if isinstance(v, Ref):
        return len(_const(v, env))
    if isinstance(v, (list, tuple, np.ndarray)):
        return len(v)
    raise EvalFail("`len` takes a list")


def _math(fn: Callable) -> Callable:
    def run(env: Env, v):
        with np.errstate(all="ignore"):
            result = fn(number(v, env))
        return result.item() if isinstance(result, np.generic) else result
    return run


def _minmax(reduce: Callable) -> Callable:
    def run(env: Env, *values):
        items = [number(v, env) for v in values]
        if len(items) == 1:
            return _scalarize(reduce(items[0]))
        result = items[0]
        for item in items[1:]:
            result = np.maximum(result, item) if reduce is np.max else np.minimum(result, item)
        return _scalarize(result)
    return run


def _scalarize(value):
    if isinstance(value, np.generic) or isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


def _reshape(env: Env, v, shape) -> np.ndarray:
    try:
        return np.reshape(np.asarray(number(v, env)), [int(d) for d in number(shape, env).tolist()])
    except ValueError as e:
        raise EvalFail(f"reshape: {e}") from None


def _transpose(env: Env, v, perm=None) -> np.ndarray:
    axes = None if perm is None else [int(d) for d in np.asarray(number(perm, env)).tolist()]
    try:
        return np.transpose(np.asarray(number(v, env)), axes)
    except ValueError as e:
        raise EvalFail(f"transpose: {e}") from None


def _take(env: Env, v, indices) -> object:
    """`take(p, q)[i] = p[q[i]]`: composes permutations (`Transpose(Transpose(x, p), q)` is `take(p, q)`)."""
    values, picks = np.asarray(number(v, env)), np.asarray(number(indices, env)).astype(np.int64)
    if picks.size and (picks.max() >= len(values) or picks.min() < -len(values)):
        raise EvalFail("take: index out of range")
    result = np.take(values, picks, axis=0)
    return result.tolist() if isinstance(v, list) or isinstance(indices, list) else result


def _cast(env: Env, v, dtype) -> np.ndarray:
    if not isinstance(dtype, str) or not is_dtype_name(dtype):
        raise EvalFail(f"cast: {dtype!r} is not a dtype name")
    return np.asarray(number(v, env)).astype(dtypes.numpy_dtype(dtype))


def _concat(env: Env, *values) -> np.ndarray:
    arrays = [np.atleast_1d(np.asarray(number(v, env))) for v in values]
    try:
        return np.concatenate(arrays)
    except ValueError as e:
        raise EvalFail(f"concat: {e}") from None


def _filled(fill: float) -> Callable:
    def run(env: Env, shape, value=fill):
        dims = [int(d) for d in np.asarray(number(shape, env)).reshape(-1).tolist()]
        if int(np.prod(dims, dtype=np.int64)) > MAX_ELEMENTS:
            raise EvalFail("the array would be too large")
        return np.full(dims, number(value, env), dtype=np.float32)
    return run


def _range(env: Env, n) -> list:
    count = number(n, env)
    if not isinstance(count, (int, np.integer)) or count > MAX_ELEMENTS:
        raise EvalFail("range takes a (not huge) integer")
    return list(range(int(count)))


def _reduce(fn: Callable) -> Callable:
    def run(env: Env, v):
        return _scalarize(fn(np.asarray(number(v, env))))
    return run


def _all_any(fn: Callable) -> Callable:
    def run(env: Env, v):
        return bool(fn(np.asarray(v if isinstance(v, (bool, np.bool_)) else number(v, env))))
    return run


def _list_of(env: Env, v) -> list:
    value = number(v, env)
    return value.tolist() if isinstance(value, np.ndarray) else [value]


def _argsort(env: Env, v) -> list:
    return np.argsort(np.asarray(number(v, env)), kind="stable").tolist()


def _int(env: Env, v) -> object:
    value = number(v, env)
    return value.astype(np.int64) if isinstance(value, np.ndarray) and value.ndim else int(_scalarize(value))


def _float(env: Env, v) -> object:
    value = number(v, env)
    if isinstance(value, np.ndarray) and value.ndim:
        return value.astype(np.float64)
    return float(_scalarize(value))


FUNCTIONS: dict[str, Function] = {
    # what the graph knows about a matched value
    "const": Function(("any",), "num", _const_fn, "the constant value of a matched value (the match fails "
                      "if it is not constant); in a rewrite input it is spelled out for clarity"),
    "is_const": Function(("var",), "bool", _is_const, "the value is constant (initializer, `Constant` node "
                         "or a foldable chain of them)"),
    "scalar": Function(("var",), "bool", _scalar, "the value is a constant with exactly one element"),
    "rank": Function(("var",), "num", _rank, "number of dimensions"),
    "shape": Function(("var",), "list", _shape, "the dimensions; an unknown or symbolic one is unknown"),
    "size": Function(("var",), "num", _size, "number of elements (static shapes only)"),
    "dtype": Function(("var",), "str", _dtype, "element type name: `float32`, `float16`, `int64`, ..."),
    "uses": Function(("var",), "num", lambda env, v: env.uses(_ref(v, "uses").tensor),
                     "how many nodes read the value, plus one if it is a graph output"),
    "branch": Function(("alt",), "num", _branch, "which branch of an alternative matched (0, 1, ...)"),
    "present": Function(("alt",), "bool", lambda env, name: _branch(env, name) == 0,
                        "an optional node `v = Op?(x)` was there"),
    # numbers and arrays
    "len": Function(("any",), "num", _len, "length of a list or of a `xs...` variable"),
    "abs": Function(("num",), "num", _math(np.abs), "absolute value"),
    "sqrt": Function(("num",), "num", _math(np.sqrt), "square root"),
    "exp": Function(("num",), "num", _math(np.exp), "e to the power"),
    "log": Function(("num",), "num", _math(np.log), "natural logarithm"),
    "int": Function(("num",), "num", _int, "round towards zero to an integer"),
    "float": Function(("num",), "num", _float, "as a float"),
    "min": Function(("num", "num*"), "num", _minmax(np.min), "smallest of the arguments, or of one array"),
    "max": Function(("num", "num*"), "num", _minmax(np.max), "largest of the arguments, or of one array"),
    "sum": Function(("num",), "num", _reduce(np.sum), "sum of the elements"),
    "mean": Function(("num",), "num", _reduce(np.mean), "mean of the elements"),
    "prod": Function(("num",), "num", _reduce(np.prod), "product of the elements"),
    "all": Function(("any",), "bool", _all_any(np.all), "every element is non-zero"),
    "any": Function(("any",), "bool", _all_any(np.any), "some element is non-zero"),
    "reshape": Function(("num", "list"), "num", _reshape, "the array with a new shape (-1 allowed once)"),
    "transpose": Function(("num", "list*"), "num", _transpose, "the array with its axes permuted"),
    "take": Function(("any", "any"), "any", _take, "`take(p, q)[i] = p[q[i]]`; composes permutations"),
    "argsort": Function(("any",), "list", _argsort, "indices that sort the values; inverts a permutation"),
    "cast": Function(("num", "str"), "num", _cast, "the array converted to an element type"),
    "concat": Function(("num", "num*"), "num", _concat, "arrays joined along their first axis"),
    "zeros": Function(("list",), "num", _filled(0.0), "a float32 array of zeros of a shape"),
    "ones": Function(("list",), "num", _filled(1.0), "a float32 array of ones of a shape"),
    "range": Function(("num",), "list", _range, "[0, 1, ..., n-1]"),
    "list": Function(("num",), "list", _list_of, "the elements of an array as a list"),
}


def _call(expr: ast.Call, env: Env) -> object:
    fn = FUNCTIONS.get(str(expr.func))
    if fn is None or expr.keywords or expr.domain:
        raise EvalFail(f"`{expr.func}` is not a function")
    if fn.params and fn.params[0] == "alt":
        return fn.impl(env, expr.args[0].name)
    args = [evaluate(a, env) for a in expr.args]
    try:
        return _checked(fn.impl(env, *args))
    except (TypeError, ValueError, OverflowError, IndexError) as e:
        raise EvalFail(f"`{expr.func}` failed: {e}") from None


_HANDLERS = {
    ast.Literal: lambda expr, env: expr.value,
    ast.Ident: _ident,
    ast.ListExpr: _list,
    ast.Unary: _unary,
    ast.Binary: _binary,
    ast.Index: _index,
    ast.Call: _call,
    ast.Compare: _compare,
    ast.Approx: _approx,
    ast.Logical: _logical,
    ast.Not: _not,
}
