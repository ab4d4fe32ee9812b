"""Binding a statement's options (`key value`) or a pass's arguments (`key = value`) to its parameters.

Passes are dataclasses, so their fields and annotations say which keys exist and what each takes; one
binder serves built-in statements and third-party passes alike, with the same errors.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Sequence, Union

from graphdsl.diagnostics import Diagnostic, ScriptError, Span, suggestion_label
from graphdsl.syntax import ast
from graphdsl.values import as_bool, evaluate

UNKNOWN_OPTION = "GDS111"
BAD_OPTION_VALUE = "GDS115"
DUPLICATE_OPTION = "GDS116"


def parameters(cls: type) -> dict[str, Any]:
    """Field name -> annotation of a pass dataclass, without the span (set by the compiler)."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that cannot be resolved: accept any value for it
        hints = {}
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.name != "span" and f.init}


def bind(cls: type, items: Sequence[ast.Option | ast.Assignment], what: str, *,
         base_dir: Path | None = None, fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments for `cls` from script items; every problem found is reported at once."""
    params = parameters(cls)
    kwargs: dict[str, Any] = dict(fixed or {})
    problems: list[Diagnostic] = []
    for item in items:
        key = str(item.key)
        if key not in params or key in (fixed or {}):
            choices = [p for p in params if p not in (fixed or {})]
            problems.append(Diagnostic(UNKNOWN_OPTION, f"{what} has no option `{key}`", span=item.key.span,
                                       label=suggestion_label(key, choices),
                                       hints=(f"options: {', '.join(choices) or 'none'}",)))
            continue
        if key in kwargs:
            problems.append(Diagnostic(DUPLICATE_OPTION, f"option `{key}` is given twice", span=item.key.span))
            continue
        try:
            kwargs[key] = coerce(evaluate(item.value), params[key], item.value.span, key, base_dir)
        except ScriptError as e:
            problems.extend(e.diagnostics)
    if problems:
        raise ScriptError(problems)
    return kwargs


def coerce(value: object, annotation: Any, span: Span, key: str, base_dir: Path | None = None) -> object:
    """The value in the parameter's type (on/off -> bool, ints -> floats, strings -> paths)."""
    options = _alternatives(annotation)
    if value is None or Any in options or object in options:
        return value
    for option in options:
        converted = _convert(value, option, base_dir)
        if converted is not _NO:
            return converted
    raise ScriptError(Diagnostic(BAD_OPTION_VALUE, f"option `{key}` takes {_describe(options)}, got {value!r}",
                                 span=span, label=f"expected {_describe(options)}"))


_NO = object()


def _convert(value: object, target: Any, base_dir: Path | None) -> object:
    origin = typing.get_origin(target) or target
    if origin is bool:
        b = as_bool(value)
        return _NO if b is None else b
    if origin is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _NO
    if origin is float:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else _NO
    if origin is str:
        return value if isinstance(value, str) else _NO
    if origin is Path:
        return (base_dir or Path()) / value if isinstance(value, str) else _NO
    if origin in (list, tuple, Sequence):
        return list(value) if isinstance(value, list) else _NO
    if origin is dict:
        return value if isinstance(value, dict) else _NO
    return _NO


def _alternatives(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return tuple(a for a in typing.get_args(annotation) if a is not type(None))
    return (annotation,)


def _describe(options: tuple[Any, ...]) -> str:
    names = {bool: "on/off", int: "an integer", float: "a number", str: "a string", Path: "a path string"}
    return " or ".join(names.get(typing.get_origin(o) or o, "a list" if typing.get_origin(o) in (list, tuple)
                                 else getattr(o, "__name__", str(o))) for o in options)

