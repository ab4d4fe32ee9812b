"""Malformed, hostile and extreme models through the CLI: a documented exit code, never a traceback.

Every model goes through `inspect`, `check` and `run` (the default pipeline) with `cli.main`, the CLI's own
entry point, in this process; a selection also through `python -m graphdsl` in a fresh process, and the
external-data ones only that way: their data paths name FIFOs, which block whoever opens them, so a
refusal that comes after any file is opened shows as a timeout instead of an exit code.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import hostile_models as hm
import onnx
import pytest
from reliability_helpers import assert_clean_exit, cli, default_script

from graphdsl import cli as gds_cli

INSPECT, CHECK, RUN = "inspect", "check", "run"

# case -> (builder, exit codes of inspect, check, run). 3: the model is refused (GDS3xx, or GDS402 when
# ONNX Runtime cannot load the input); 0: the model is valid.
CASES = {
    "valid": (hm.valid, 0, 0, 0),
    "truncated to 1%": (lambda f: hm.truncated(f, 0.01), 3, 3, 3),
    "truncated to 50%": (lambda f: hm.truncated(f, 0.5), 3, 3, 3),
    "truncated to 99%": (lambda f: hm.truncated(f, 0.99), 3, 3, 3),
    **{f"3 bits flipped (seed {s})": ((lambda s: lambda f: hm.bit_flipped(f, s))(s), 3, 3, 3)
       for s in range(8)},
    "IR version 999": (lambda f: hm.with_versions(f, 999, 17), 0, 0, 3),
    "IR version 0": (lambda f: hm.with_versions(f, 0, 17), 0, 0, 0),  # written with a valid IR version
    "opset 999": (lambda f: hm.with_versions(f, 8, 999), 0, 0, 3),
    "opset 1": (lambda f: hm.with_versions(f, 8, 1), 0, 0, 3),
    "cycle": (hm.cycle, 0, 0, 3),
    "duplicate tensor names": (hm.duplicate_names, 0, 0, 3),
    "duplicate node names": (hm.duplicate_node_names, 0, 0, 3),
    "dangling input": (hm.dangling_input, 0, 0, 3),
    "dangling output": (hm.dangling_output, 0, 0, 3),
    "input dims of 2^62": (hm.huge_dims, 0, 0, 3),
    "weight dims of 2^62": (hm.huge_weight_dims, 3, 3, 3),
    "external data `../`": (lambda f: hm.external(f, "../w.data", "parent.onnx"), 3, 3, 3),
    "external data absolute": (lambda f: hm.external(f, "/etc/passwd", "absolute.onnx"), 3, 3, 3),
    "external data short": (lambda f: (hm.external_data_file(f, "short.data", 100),
                                       hm.external(f, "short.data", "short.onnx"))[1], 3, 3, 3),
    "external data missing": (lambda f: hm.external(f, "missing.data", "missing.onnx"), 3, 3, 3),
    "If bodies reading outer names": (hm.if_outer_scope, 0, 0, 0),
    "30 nested If bodies": (lambda f: hm.nested_ifs(f, 30), 0, 0, 0),
    "50 nested If bodies": (lambda f: hm.nested_ifs(f, 50), 0, 0, 3),  # ORT cannot parse it: GDS402
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    (root / "default.gds").write_text(default_script() + "verify samples 6\n")
    (root / "noop.gds").write_text("cleanup\n")
    return root


def main(*args) -> tuple[int, str]:
    """`graphdsl ARGS` through cli.main: (exit code, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = gds_cli.main([str(a) for a in args])
    return code, err.getvalue()


def commands(folder: Path, model: Path) -> dict[str, list]:
    return {INSPECT: [INSPECT, model, "--nodes"], CHECK: [CHECK, folder / "noop.gds", "-i", model],
            RUN: [RUN, folder / "default.gds", "-i", model, "-o", folder / "out" / model.name, "-q"]}


@pytest.mark.parametrize("name", list(CASES))
def test_model_through_inspect_check_and_run(folder, name):
    build, *codes = CASES[name]
    model = build(folder)
    for (command, args), expected in zip(commands(folder, model).items(), codes):
        code, err = main(*args)
        assert code == expected and "internal error" not in err, f"{command}: exit {code}\n{err}"
        if code == 3:
            assert "error[GDS3" in err or "error[GDS4" in err, err
        if command == RUN:
            assert (folder / "out" / model.name).exists() == (code == 0)


SUBPROCESS_CASES = ["truncated to 50%", "3 bits flipped (seed 1)", "cycle", "input dims of 2^62",
                    "If bodies reading outer names", "50 nested If bodies"]


def test_selection_in_a_fresh_process(folder):
    for name in SUBPROCESS_CASES:
        build, *codes = CASES[name]
        model = build(folder)
        assert_clean_exit(cli(*commands(folder, model)[RUN]), codes[2])


def test_50_nested_if_bodies_without_verification(folder):
    """The whole pipeline and the writer handle it; only protobuf (onnx.checker, ORT) cannot parse it: a
    warning, and the result is written."""
    model = hm.nested_ifs(folder, 50)
    out = folder / "out" / "nested_no_verify.onnx"
    code, err = main(RUN, folder / "default.gds", "-i", model, "-o", out, "--no-verify")
    assert code == 0 and out.exists(), err
    from graphdsl.onnxio import read_model

    graph = read_model(out).graph
    for _ in range(50):
        graph = next(n for n in graph.nodes if n.op == "If").attrs["then_branch"]


def _fifo_model(folder: Path, kind: str) -> Path:
    """A model whose external data names a FIFO outside its folder: `../`, an absolute path, a symlink."""
    sub = folder / f"fifo_{kind}"
    sub.mkdir()
    target = hm.fifo(folder / f"outside_{kind}.fifo")
    location = {"parent": f"../{target.name}", "absolute": str(target), "symlink": "link.data"}[kind]
    if kind == "symlink":
        os.symlink(target, sub / "link.data")
    return hm.external(sub, location, "model.onnx")


@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs")
@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink"])
def test_external_data_outside_the_folder_refused_before_any_file_is_read(folder, kind):
    model = _fifo_model(folder, kind)
    for args in commands(folder, model).values():
        proc = cli(*args, timeout=60)  # opening the FIFO would block: a timeout fails the test
        assert_clean_exit(proc, 3)
        assert "GDS303" in proc.stderr


def test_200k_node_chain_through_the_default_pipeline(folder):
    """No recursion over the graph anywhere: import, fold, cleanup, toposort, export, checker, report.
    Fresh process, default recursion limit; ORT's comparison of 200k nodes takes a minute and a half,
    it is checked on a shorter chain below (and in full by the slow test)."""
    model = hm.chain(folder, 200_000)
    proc = cli(RUN, folder / "default.gds", "-i", model, "-o", folder / "out" / "chain.onnx", "--no-verify",
               "--json")
    assert_clean_exit(proc, 0)
    assert len(onnx.load(folder / "out" / "chain.onnx").graph.node) == 200_000
    proc = cli(INSPECT, model, "--json")
    assert_clean_exit(proc, 0)


@pytest.fixture
def recursion_limit():
    old = sys.getrecursionlimit()
    yield sys.setrecursionlimit
    sys.setrecursionlimit(old)


def test_verified_chain_under_a_low_recursion_limit(folder, recursion_limit):
    """20,000 nodes under a recursion limit of 400: anything recursing over the chain fails at once."""
    import graphdsl

    model = hm.chain(folder, 20_000)
    pipeline = graphdsl.compile(default_script())
    recursion_limit(400)
    result = pipeline.run(model, output=folder / "out" / "chain20k.onnx", quiet=True)
    assert result.passed and result.verification.passed


@pytest.mark.slow
def test_200k_node_chain_verified(folder):
    """The 200k chain with ONNX Runtime's comparison (about 90 s; covered faster by the two tests above)."""
    model = hm.chain(folder, 200_000)
    out = folder / "out" / "chain_v.onnx"
    assert_clean_exit(cli(RUN, folder / "default.gds", "-i", model, "-o", out, "-q", timeout=600), 0)
