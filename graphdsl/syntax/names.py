"""`Name`: a string that remembers where in a script it was written.

Passes take tensor and node names as plain strings (so the Python API stays plain), and when those
strings came from a script they are `Name`s whose `span` lets an error point at the exact word.
"""

from __future__ import annotations

from graphdsl.diagnostics import Span


class Name(str):
    """A `str` with a source span; compares and hashes exactly like the plain string."""

    span: Span | None

    def __new__(cls, value: str, span: Span | None = None) -> "Name":
        obj = super().__new__(cls, value)
        obj.span = span
        return obj

    def __reduce__(self):
        return (Name, (str(self), self.span))


def span_of(value: object, default: Span | None = None) -> Span | None:
    """The span a value was written at, if it came from a script."""
    return getattr(value, "span", None) or default
