"""onnx-graphsurgeon's log, captured so that its messages become diagnostics, not stray stdout lines.

graphsurgeon prints through its own logger (`print`, with colour codes); a pass that calls into it wraps
the call in `captured_gs_log()` and turns what was logged into `ctx.warn(...)` diagnostics.
"""

from __future__ import annotations

import contextlib
import io
import re
from typing import Iterator

from onnx_graphsurgeon.logger import G_LOGGER

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PREFIX = re.compile(r"^\[[A-Z]\] ", re.MULTILINE)
# graphsurgeon's note about its optional colour package is about the terminal, not the model
_NOISE = ("colored module is not installed",)


@contextlib.contextmanager
def captured_gs_log(level: int = G_LOGGER.WARNING) -> Iterator[list[str]]:
    """Collect graphsurgeon's messages of `level` and above into the yielded list (filled on exit)."""
    messages: list[str] = []
    buffer = io.StringIO()
    try:
        with G_LOGGER.suppress(level), contextlib.redirect_stdout(buffer):
            yield messages
    finally:
        messages.extend(split_messages(buffer.getvalue()))


def split_messages(text: str) -> list[str]:
    """`[W] first\\n    more\\n[E] second` -> ["first\\n    more", "second"], colour codes removed."""
    text = _ANSI.sub("", text)
    parts = _PREFIX.split(text)
    return [p.strip() for p in parts if p.strip() and not p.strip().startswith(_NOISE)]
