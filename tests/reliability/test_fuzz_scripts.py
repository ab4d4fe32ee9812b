"""Hostile and malformed scripts: every one is either compiled or refused with diagnostics, never a crash.

Hypothesis drives a generator that derives scripts from graphdsl's own grammar (gds_fuzz.py) and a
mutator that breaks them and the scripts shipped in the repository; raw bytes go through the file path
(invalid UTF-8). Each case must compile, or raise GraphdslError whose diagnostics carry a stable code, a
message and a span inside the script, and render as text and JSON. A smaller number of generated scripts
go through `graphdsl check` (in-process `cli.main`) against a small model, whose exit code must be 0, 2 or 3.
Runs are reproducible (derandomized, no example database); the case count and time are printed in the
terminal summary.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import random
import re
import time
from pathlib import Path

import onnx
import pytest
from gds_fuzz import GrammarGenerator, mutate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import REPO, assert_clean_exit, cli, small_model

import graphdsl
from graphdsl import cli as gds_cli
from graphdsl.diagnostics import ExitCode, GraphdslError, render_all, to_json


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


GENERATED, CORPUS, BYTES, CHECKS = 8000, 2500, 2000, 1000  # cases: 2 per generated example, 1 per other
CODE = re.compile(r"GDS\d{3}")

# Exceptions that known bugs of other modules raise, recognised so the fuzz run counts them instead of
# failing on them; each is described in the report of issue 6 and removed with its fix.
# They are matched on "ExceptionType: message", as raised or as the CLI's internal-error line shows it.
KNOWN_BUGS: dict = {}  # name -> pattern of an internal error still allowed (none now)


def known_bug(text: str) -> str | None:
    return next((name for name, pattern in KNOWN_BUGS.items() if pattern.search(text)), None)


class Tally:
    """Cases run, by outcome, over the whole module (printed once at the end)."""

    def __init__(self):
        self.outcomes: collections.Counter = collections.Counter()
        self.codes: collections.Counter = collections.Counter()
        self.known: collections.Counter = collections.Counter()
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()

    @property
    def cases(self) -> int:
        return sum(self.outcomes.values())


TALLY = Tally()


def check_diagnostics(e: GraphdslError, text: str) -> None:
    """A refusal worth the name: codes, messages, spans inside the script, text and JSON renderings."""
    assert e.diagnostics and e.exit_code in (ExitCode.SCRIPT_ERROR, ExitCode.MODEL_ERROR)
    lines = max(1, len(text.splitlines()) + 1)
    for d in e.diagnostics:
        assert CODE.fullmatch(d.code) and d.message, d
        if d.span is not None and d.span.source.text == text:
            assert 1 <= d.span.line <= lines and d.span.column >= 1, d
    rendered = render_all(e.diagnostics)
    assert all(f"[{d.code}]" in rendered for d in e.diagnostics)
    json.loads(json.dumps([to_json(d) for d in e.diagnostics]))


def compile_case(text: str, kind: str) -> str:
    """Compile one script (always as text: the trailing newline keeps a `x.gds` line from being a path)."""
    text = text if text.endswith("\n") else text + "\n"
    try:
        graphdsl.compile(text)
    except GraphdslError as e:
        check_diagnostics(e, text)
        TALLY.outcomes[f"{kind} refused"] += 1
        TALLY.codes.update(d.code for d in e.diagnostics)
        return e.diagnostics[0].code
    except Exception as e:  # noqa: BLE001 - only known bugs are counted; anything else fails the test
        bug = known_bug(f"{type(e).__name__}: {e}")
        if bug is None:
            raise
        TALLY.known[bug] += 1
        TALLY.outcomes[f"{kind} known bug"] += 1
        return bug
    TALLY.outcomes[f"{kind} ok"] += 1
    return "ok"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """The folder scripts are compiled in: files that generated imports and models name."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "lib.gds").write_text("cleanup\ntoposort\n")
    (root / "cycle_a.gds").write_text('import "cycle_b.gds"\n')
    (root / "cycle_b.gds").write_text('import "cycle_a.gds"\n')
    (root / "has_model.gds").write_text('model "m.onnx"\n')
    (root / "bad_utf8.gds").write_bytes(b"cleanup\n\xff\xfe\n")
    onnx.save(small_model(), root / "m.onnx")
    old = Path.cwd()
    os.chdir(root)
    yield root
    os.chdir(old)


@pytest.fixture(scope="module")
def generator():
    return GrammarGenerator(max_depth=6)


def _corpus() -> list[str]:
    """The repository's scripts, split at blank lines (a rule, a few statements): mutating a short text
    costs a parse of that text, not of a whole rule library."""
    folders = ("examples", "passes/std", "tests/diagnostics/cases")
    texts = [p.read_bytes().decode("utf-8", "replace")
             for folder in folders for p in sorted((REPO / folder).rglob("*.gds"))]
    for doc in ("docs/language.md", "README.md"):
        texts += re.findall(r"```gds\n(.*?)```", (REPO / doc).read_text("utf-8"), re.DOTALL)
    return [part for text in texts for part in re.split(r"\n\s*\n", text) if part.strip()]


CORPUS_TEXTS = _corpus()


@fuzz_settings(GENERATED)
@given(seed=st.integers(0, 2**64 - 1), edits=st.integers(1, 4))
def test_generated_and_mutated_scripts(workdir, generator, seed, edits):
    rng = random.Random(seed)
    text = generator.script(rng) if rng.random() < 0.15 else generator.script(rng, rng.choice((1, 1, 2, 3)))
    compile_case(text, "generated")
    compile_case(mutate(text, rng, edits), "mutated")


@fuzz_settings(CORPUS)
@given(index=st.integers(0, len(CORPUS_TEXTS) - 1), seed=st.integers(0, 2**64 - 1), edits=st.integers(1, 6))
def test_mutated_repository_scripts(workdir, index, seed, edits):
    compile_case(mutate(CORPUS_TEXTS[index], random.Random(seed), edits), "corpus")


SCRIPT_BYTES = st.one_of(
    st.binary(max_size=120),
    st.builds(lambda a, b, c: a + b + c,
              st.sampled_from([b"", b"cleanup\n", b'set node mm1 alpha = "', b"# \xc3"]),
              st.sampled_from([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82",
                               b"\x00", b"\xef\xbb\xbf", b"\r", b"\xc3\xa9", b"\x80"]),
              st.binary(max_size=40)),
)


@fuzz_settings(BYTES)
@given(data=SCRIPT_BYTES)
def test_script_files_of_any_bytes(workdir, data):
    path = workdir / "bytes.gds"
    path.write_bytes(data)
    try:
        graphdsl.compile(path)
    except GraphdslError as e:
        check_diagnostics(e, data.decode("utf-8", "replace"))
        TALLY.codes.update(d.code for d in e.diagnostics)
        TALLY.outcomes["bytes refused"] += 1
        return
    TALLY.outcomes["bytes ok"] += 1


@fuzz_settings(CHECKS)
@given(seed=st.integers(0, 2**64 - 1), as_json=st.booleans())
def test_check_against_a_model(workdir, generator, seed, as_json):
    """`graphdsl check SCRIPT -i m.onnx` through the CLI's own entry point: exit 0, 2 or 3, no crash."""
    rng = random.Random(seed)
    text = generator.script(rng, rng.choice((1, 2, 3)))
    path = workdir / "check.gds"
    path.write_text(text, "utf-8", errors="surrogatepass")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = gds_cli.main(["check", str(path), "-i", str(workdir / "m.onnx")] + ["--json"] * as_json)
    bug = known_bug(err.getvalue()) if code == ExitCode.INTERNAL_ERROR else None
    if bug:
        TALLY.known[bug] += 1
        TALLY.outcomes["check known bug"] += 1
        return
    assert code in (0, 2, 3) and "internal error" not in err.getvalue(), (text, err.getvalue())
    if as_json:
        json.loads(out.getvalue())
    TALLY.outcomes[f"check exit {code}"] += 1


def test_fuzz_totals(figures):
    """Runs after the fuzz tests above (file order): the count and time, for the report."""
    seconds, cpu = time.perf_counter() - TALLY.start, time.process_time() - TALLY.cpu_start
    figures(f"script fuzz: {TALLY.cases} cases in {seconds:.1f} s ({cpu:.1f} s CPU); " +
            ", ".join(f"{k} {v}" for k, v in sorted(TALLY.outcomes.items())) +
            f"; known bugs hit: {dict(TALLY.known) or 'none'}; most frequent codes: " +
            ", ".join(f"{c} {n}" for c, n in TALLY.codes.most_common(12)))
    if TALLY.cases:  # the module may have been run in part (-k)
        assert not [k for k in TALLY.outcomes if "unhandled" in k]


# --- hand-made hostile scripts ------------------------------------------------------------------------

NESTINGS = {
    "parens": lambda n: "(" * n + "1" + ")" * n,
    "lists": lambda n: "[" * n + "1" + "]" * n,
    "minus": lambda n: "-" * n + "1",
    "calls": lambda n: "max(" * n + "1" + ")" * n,
    "index": lambda n: "[1]" + "[0]" * n,
    "not": lambda n: "not " * n + "x",
}
# Binary operators (`1+1+...`, `(1+(1-(...)))`) are left out here: graphdsl/values.py evaluates both
# operands twice, so time doubles with each level (reported with issue 6). Chains too long for the parser
# are checked below.


@pytest.mark.parametrize("depth", [10, 63, 64, 65, 300, 900, 3000, 20_000])
@pytest.mark.parametrize("kind", sorted(NESTINGS))
def test_deeply_nested_expressions(workdir, kind, depth):
    expr = NESTINGS[kind](depth)
    start = time.perf_counter()
    code = compile_case(f"set node mm1 alpha = {expr}\nfold constants size_threshold {expr}\n", "nested")
    assert time.perf_counter() - start < 20, "nesting must cost about linear time"
    if depth > 64 and kind in ("parens", "lists", "minus", "calls"):
        assert code == "GDS119"


@pytest.mark.parametrize("op", ["+", "*", "-", "/", " | ", " and ", " or ", " < "])
def test_operator_chains_too_long_to_parse(workdir, op):
    expr = op.join(["1"] * 20_000)  # deeper than Python's recursion limit: the tree is left-deep
    assert compile_case(f"set node mm1 alpha = {expr}\n", "nested") in ("GDS119", "GDS114", "GDS001")


@pytest.mark.parametrize("depth", [50, 500, 5000])
@pytest.mark.parametrize("where", ["rule", "replace", "add"])
def test_deeply_nested_op_calls(workdir, where, depth):
    call = "Relu(" * depth + "x" + ")" * depth
    text = {"rule": f"rule deep {{\n  match {{ y = {call} }}\n  rewrite {{ y = Relu(x) }}\n}}\n",
            "replace": f"replace {call} with Relu(x)\n",
            "add": f"add node {call} -> out\n"}[where]
    compile_case(text, "nested")


HUGE_LITERALS = {
    "string of 4 MB": 'set node mm1 alpha = "' + "a" * (4 << 20) + '"',
    "name of 1 MB": "set node mm1 " + "a" * (1 << 20) + " = 1",
    "statement name of 1 MB": "b" * (1 << 20),
    "integer of 100k digits": "set node mm1 alpha = " + "9" * 100_000,
    "opset of 100k digits": "convert opset " + "7" * 100_000,
    "float of 100k digits": "set node mm1 alpha = 1" + "0" * 100_000 + ".5",
    "exponent": "set node mm1 alpha = 1e999999999999",
    "size of 100k digits": "fold constants size_threshold " + "9" * 100_000 + "TiB",
    "dim of 2^62": "set input x shape [4611686018427387904, 16]",
    "opset 2^64": "convert opset 18446744073709551616",
    "list of 50k items": "set node mm1 pads = [" + ",".join(["1"] * 50_000) + "]",
    "line of 1M spaces": " " * 1_000_000 + "cleanup",
    "1M string escapes": 'set node mm1 alpha = "' + "\\n" * (1 << 19) + '"',
    "unterminated string of 1 MB": 'model "' + "m" * (1 << 20),
}


@pytest.mark.parametrize("name", sorted(HUGE_LITERALS))
def test_huge_literals(workdir, name):
    start = time.perf_counter()
    compile_case(HUGE_LITERALS[name], "huge")
    assert time.perf_counter() - start < 20


def test_many_statements_and_many_errors(workdir):
    start = time.perf_counter()
    assert compile_case("cleanup\n" * 10_000, "many") == "ok"
    assert compile_case("clean up\n" * 5_000, "many") in ("GDS001", "GDS103")
    assert compile_case("set node nope alpha = 1/0\n" * 2_000, "many") == "GDS114"
    assert time.perf_counter() - start < 60


UTF8_CASES = {
    "invalid start byte": b"cleanup\n\xff\n", "overlong NUL": b"\xc0\x80cleanup\n",
    "encoded surrogate": b'rename tensor "\xed\xa0\x80" to y\n', "above U+10FFFF": b"\xf4\x90\x80\x80\n",
    "truncated at the end": b"cleanup # caf\xc3", "continuation byte alone": b"toposort\n\x80\n",
    "bad byte in a string": b'model "m\xfe.onnx"\n', "UTF-16 file": "cleanup\n".encode("utf-16"),
    "Latin-1 file": "set node mm1 alpha = 1 # café\n".encode("latin-1"),
}


@pytest.mark.parametrize("name", sorted(UTF8_CASES))
def test_invalid_utf8_is_gds003_at_the_right_place(workdir, name):
    path = workdir / "utf8.gds"
    path.write_bytes(UTF8_CASES[name])
    with pytest.raises(GraphdslError) as e:
        graphdsl.compile(path)
    d = e.value.diagnostics[0]
    assert d.code in ("GDS003", "GDS001", "GDS002"), render_all(e.value.diagnostics)  # UTF-16: a BOM
    check_diagnostics(e.value, UTF8_CASES[name].decode("utf-8", "replace"))
    if d.code == "GDS003":
        good = UTF8_CASES[name][:UTF8_CASES[name].index(bytes([int(d.message.split("0x")[1][:2], 16)]))]
        assert d.span.line == good.count(b"\n") + 1


ODD_TEXT = {
    "BOM": "\ufeffcleanup\n", "NUL": "clean\x00up\n", "CR only": "cleanup\rtoposort\r",
    "CRLF": "cleanup\r\ntoposort\r\n", "right-to-left override": "cleanup \u202e# x\n",
    "no-break space": "fold\u00a0constants\n", "full-width keyword": "ｃｌｅａｎｕｐ\n",
    "tabs in error": "\t\t@\n",
    "escape at end of file": "cleanup \\", "only a comment": "# just a comment", "empty": "",
    "lone surrogate in text": 'rename tensor "\ud800" to y\n', "emoji name": 'rename tensor x to "😀"\n',
}


@pytest.mark.parametrize("name", sorted(ODD_TEXT))
def test_odd_characters(workdir, name):
    compile_case(ODD_TEXT[name], "odd")


HOSTILE_FILES = {
    "deep.gds": "set node mm1 alpha = " + "(" * 100_000 + "1" + ")" * 100_000 + "\n",
    "long.gds": "set node mm1 alpha = " + "9" * 100_000 + "\n",
    "chain.gds": "fold constants size_threshold " + "+".join(["1"] * 20_000) + "\n",
}


def test_hostile_scripts_through_the_cli(workdir):
    """In a fresh process, as a user runs it: exit 2, diagnostics, no traceback."""
    for name, text in HOSTILE_FILES.items():
        (workdir / name).write_text(text)
    (workdir / "bad.gds").write_bytes(b"cleanup\n\xff\n")
    for command, name in [("run", n) for n in HOSTILE_FILES] + [("check", "bad.gds"), ("run", "bad.gds")]:
        proc = cli(command, workdir / name, "-i", workdir / "m.onnx", cwd=workdir)
        assert_clean_exit(proc, 2)
        assert re.search(r"error\[GDS\d{3}\]", proc.stderr)
