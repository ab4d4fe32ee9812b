"""Diagnostics: every error a user can make, with where it happened and what to do about it.

One `Diagnostic` type serves script errors (a `Span` in a .gds file), model errors (a node or tensor
name) and environment errors (a path). Renderers are pure functions of it, so golden tests compare text.
This module imports nothing of graphdsl's own: every other layer may use it.
"""

from __future__ import annotations

import difflib
import enum
from dataclasses import dataclass, field
from typing import Iterable, Sequence


class ExitCode(enum.IntEnum):
    """Process exit codes of the CLI (documented in docs/errors.md)."""

    OK = 0
    VERIFY_FAILED = 1
    SCRIPT_ERROR = 2
    MODEL_ERROR = 3
    INTERNAL_ERROR = 70


@dataclass(frozen=True, eq=False)
class SourceFile:
    """The text of one script, kept so diagnostics can quote the offending line."""

    path: str
    text: str

    def line(self, number: int) -> str:
        lines = self.text.splitlines()
        return lines[number - 1] if 0 < number <= len(lines) else ""


@dataclass(frozen=True)
class Span:
    """A region of a script: 1-based line and column of its first and last character (end exclusive)."""

    source: SourceFile = field(compare=False, repr=False)
    line: int
    column: int
    end_line: int
    end_column: int

    @property
    def path(self) -> str:
        return self.source.path

    @property
    def text(self) -> str:
        """The script text the span covers, whitespace runs (newlines included) folded to one space."""
        lines = self.source.text.splitlines()[self.line - 1:self.end_line]
        if not lines:
            return ""
        if len(lines) == 1:
            lines[0] = lines[0][self.column - 1:self.end_column - 1]
        else:
            lines[0], lines[-1] = lines[0][self.column - 1:], lines[-1][:self.end_column - 1]
        return " ".join(" ".join(lines).split())

    def __str__(self) -> str:
        return f"{self.source.path}:{self.line}:{self.column}"


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Diagnostic:
    """One finding: a stable code, a message, and where (a script span, or a model location)."""

    code: str
    message: str
    span: Span | None = None
    label: str = ""
    hints: tuple[str, ...] = ()
    severity: Severity = Severity.ERROR
    location: str = ""  # outside a script: "model.onnx: node 'Conv_0'", a file path, ...

    def with_hint(self, hint: str) -> "Diagnostic":
        return Diagnostic(self.code, self.message, self.span, self.label, self.hints + (hint,),
                          self.severity, self.location)


class GraphdslError(Exception):
    """The one exception type for user errors; the CLI turns it into text and an exit code."""

    def __init__(self, diagnostics: Diagnostic | Sequence[Diagnostic], exit_code: ExitCode = ExitCode.SCRIPT_ERROR):
        self.diagnostics = (diagnostics,) if isinstance(diagnostics, Diagnostic) else tuple(diagnostics)
        self.exit_code = exit_code
        super().__init__("\n".join(render_text(d) for d in self.diagnostics))


class ScriptError(GraphdslError):
    """A mistake in a script (syntax, imports, names, options): exit code 2, nothing ran."""

    def __init__(self, diagnostics: Diagnostic | Sequence[Diagnostic]):
        super().__init__(diagnostics, ExitCode.SCRIPT_ERROR)


class ModelError(GraphdslError):
    """A model that cannot be read or cannot take a pass, or a file that cannot be written: exit code 3."""

    def __init__(self, diagnostics: Diagnostic | Sequence[Diagnostic]):
        super().__init__(diagnostics, ExitCode.MODEL_ERROR)


def model_error(code: str, message: str, location: str = "", hint: str = "", span: Span | None = None) -> ModelError:
    """Shorthand for the common case of one model diagnostic with one hint."""
    return ModelError(Diagnostic(code, message, span=span, location=location, hints=(hint,) if hint else ()))


def script_error(code: str, message: str, span: Span | None, label: str = "", hint: str = "") -> ScriptError:
    return ScriptError(Diagnostic(code, message, span=span, label=label, hints=(hint,) if hint else ()))


def did_you_mean(name: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The closest candidate to a misspelled name, compared case-insensitively, or None."""
    by_lower: dict[str, str] = {}
    for c in candidates:
        by_lower.setdefault(c.lower(), c)
    best = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=cutoff)
    return by_lower[best[0]] if best else None


def suggestion_label(name: str, candidates: Iterable[str]) -> str:
    """`did you mean `X`?` for the caret label, or an empty string when nothing is close."""
    best = did_you_mean(name, candidates)
    return f"did you mean `{best}`?" if best and best != name else ""


def render_text(d: Diagnostic) -> str:
    """ruff-style text: header, location arrow, the source line, a caret under the span, hints."""
    out = [f"{d.severity.value}[{d.code}]: {d.message}"]
    if d.span is not None:
        out.extend(_render_snippet(d.span, d.label))
    elif d.location:
        out.append(f" --> {d.location}")
        if d.label:
            out.append(f"  = {d.label}")
    out.extend(f"  = help: {h}" for h in d.hints)
    return "\n".join(out)


SNIPPET_WIDTH = 100


def _render_snippet(span: Span, label: str) -> list[str]:
    line_text = span.source.line(span.line).replace("\t", " ")
    gutter = " " * len(str(span.line))
    end = span.end_column if span.end_line == span.line else len(line_text) + 1
    start, width = span.column - 1, max(1, end - span.column)
    if len(line_text) > SNIPPET_WIDTH:  # show a window around the span of a very long line
        left = max(0, start - 20)
        width = min(width, SNIPPET_WIDTH - 20)
        shown = line_text[left:left + SNIPPET_WIDTH]
        line_text = ("…" if left else "") + shown + ("…" if left + SNIPPET_WIDTH < len(line_text) else "")
        start = start - left + (1 if left else 0)
    caret = " " * start + "^" * width
    return [
        f"{gutter}--> {span}",
        f"{gutter} |",
        f"{span.line} | {line_text}",
        f"{gutter} | {caret}{' ' + label if label else ''}",
    ]


def render_all(diagnostics: Sequence[Diagnostic]) -> str:
    return "\n\n".join(render_text(d) for d in diagnostics)


def to_json(d: Diagnostic) -> dict:
    """Stable, machine-readable form (keys never renamed; new keys may be added)."""
    out = {"code": d.code, "severity": d.severity.value, "message": d.message, "hints": list(d.hints)}
    if d.span is not None:
        out["file"] = d.span.path
        out["line"], out["column"] = d.span.line, d.span.column
        out["end_line"], out["end_column"] = d.span.end_line, d.span.end_column
    if d.location:
        out["location"] = d.location
    if d.label:
        out["label"] = d.label
    return out
