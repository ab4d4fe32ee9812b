"""Golden tests: every diagnostic's exact text, as `graphdsl check` prints it.

Each `cases/NAME.gds` (files starting with `_` are helpers that cases import) has `cases/NAME.txt` holding
the expected stderr and exit code. Set GRAPHDSL_UPDATE_GOLDEN=1 to rewrite them, then review the diff.
"""

import contextlib
import io
import os
from pathlib import Path

import pytest

from graphdsl.cli import main

CASES = Path(__file__).with_name("cases")
NAMES = sorted(p.stem for p in CASES.glob("*.gds") if not p.name.startswith("_"))


def run_check(name: str) -> str:
    err, out = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(CASES)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(["check", f"{name}.gds"])
    finally:
        os.chdir(cwd)
    return f"exit {code}\n{out.getvalue()}{err.getvalue()}"


@pytest.mark.parametrize("name", NAMES)
def test_diagnostic_text(name):
    actual = run_check(name)
    expected_file = CASES / f"{name}.txt"
    if os.environ.get("GRAPHDSL_UPDATE_GOLDEN"):
        expected_file.write_text(actual)
    assert actual == expected_file.read_text()


def test_every_case_has_expected_text():
    missing = [n for n in NAMES if not (CASES / f"{n}.txt").exists()]
    assert not missing
