"""The docs stay true: every diagnostic code is documented, every example in language.md parses."""

import re
from pathlib import Path

import pytest

from graphdsl.syntax.parser import parse

REPO = Path(__file__).resolve().parents[2]
CODE = re.compile(r'"(GDS\d{3})"')


def codes_in_source() -> set[str]:
    found = set()
    for folder in ("graphdsl", "passes"):
        for path in (REPO / folder).rglob("*.py"):
            found |= set(CODE.findall(path.read_text()))
    return found


def test_every_diagnostic_code_is_documented():
    documented = set(re.findall(r"^\| (GDS\d{3}) \|", (REPO / "docs" / "errors.md").read_text(), re.M))
    assert codes_in_source() - documented == set()
    assert documented - codes_in_source() == set(), "documented codes nothing raises"


def gds_blocks(path: Path) -> list[str]:
    return re.findall(r"```gds\n(.*?)```", path.read_text(), re.S)


@pytest.mark.parametrize("doc", ["docs/language.md", "README.md"])
def test_examples_in_docs_parse(doc):
    blocks = gds_blocks(REPO / doc)
    assert blocks
    for block in blocks:
        parse(block, doc)


def test_every_statement_keyword_is_documented():
    from graphdsl.syntax.parser import STATEMENT_KEYWORDS

    text = (REPO / "docs" / "language.md").read_text()
    missing = [k for k in STATEMENT_KEYWORDS if f"### `{k}" not in text]
    assert missing == []


@pytest.mark.parametrize("script", sorted(p.relative_to(REPO).as_posix() for p in (REPO / "examples").rglob("*.gds")))
def test_example_scripts_compile(script):
    import graphdsl

    graphdsl.compile(REPO / script)


def test_every_standard_library_file_and_rule_is_documented():
    text = (REPO / "docs" / "stdlib.md").read_text()
    for path in sorted((REPO / "passes" / "std").glob("*.gds")):
        assert f"`std/{path.name}`" in text, path.name
        for rule in re.findall(r"^rule (\w+)", path.read_text(), re.M):
            documented = rule in text or any(rule.startswith(p.rstrip("*")) for p in
                                             re.findall(r"`(\w+\*)`", text))
            assert documented, f"rule {rule} of std/{path.name} is not in docs/stdlib.md"
