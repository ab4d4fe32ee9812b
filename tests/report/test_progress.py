"""progress(): a transient bar on terminals, nothing anywhere else."""

from __future__ import annotations

import io

from rich.console import Console

from graphdsl.report.progress import progress


def test_quiet_draws_nothing():
    out = io.StringIO()
    with progress(Console(file=out, force_terminal=True), quiet=True) as update:
        update("verify: sample 1/2", 0.5)
    assert out.getvalue() == ""


def test_not_a_terminal_draws_nothing():
    out = io.StringIO()
    with progress(Console(file=out, width=100, color_system=None), quiet=False) as update:
        update("verify: sample 1/2", 0.5)
    assert out.getvalue() == ""


def test_terminal_bar_is_transient():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    with progress(console, quiet=False) as update:
        update("verify: sample 1/2", 0.5)
        update("verify: done", 7.0)  # clamped to 1
    text = out.getvalue()
    assert "verify: done" in text and "100%" in text  # the last update shows, clamped to 1
    assert text.endswith("\r\x1b[1A\x1b[2K")  # transient: the bar's line is erased on exit
