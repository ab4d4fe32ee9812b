"""The standard library's tests report figures (cases rewritten per rule, match counts on real models):
`std_figures` collects them, and they are printed in pytest's terminal summary under "standard library
figures", whether the tests passed or not."""

from __future__ import annotations

import pytest

_LINES: list[str] = []


@pytest.fixture(scope="session")
def std_figures():
    """Call `std_figures(line)` to have the line printed in the terminal summary."""
    return _LINES.append


def pytest_terminal_summary(terminalreporter):
    if _LINES:
        terminalreporter.section("standard library figures")
        for line in _LINES:
            terminalreporter.write_line(line)
