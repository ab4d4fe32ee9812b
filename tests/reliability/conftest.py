"""Reliability tests report figures (case counts, times, ratios): `figures` collects them, and they are
printed in pytest's terminal summary under "reliability figures", whether the tests passed or not."""

from __future__ import annotations

import pytest

_LINES: list[str] = []


@pytest.fixture(scope="session")
def figures():
    """Call `figures(line)` to have the line printed in the terminal summary."""
    return _LINES.append


def pytest_terminal_summary(terminalreporter):
    if _LINES:
        terminalreporter.section("reliability figures")
        for line in _LINES:
            terminalreporter.write_line(line)
