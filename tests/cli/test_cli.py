"""The command line, end to end on real files: exit codes, outputs, reports, and what is never written."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from graphdsl.cli import main

REPO = Path(__file__).resolve().parents[2]
QUICKSTART_MODEL = REPO / "examples" / "models" / "quickstart.onnx"


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """A folder holding the quickstart model, as the current directory."""
    shutil.copy(QUICKSTART_MODEL, tmp_path / "model.onnx")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def run_cli(*args: str) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "graphdsl", *args], capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


def ort_run(path: Path, batch: int = 1) -> np.ndarray:
    x = np.random.default_rng(1).standard_normal((batch, 3, 32, 32)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_quickstart_runs_and_writes_a_verified_model(tmp_path):
    shutil.copytree(REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("out"))
    code, out, err = run_cli("run", str(tmp_path / "examples" / "quickstart.gds"))
    assert code == 0, err
    written = tmp_path / "examples" / "out" / "quickstart.opt.onnx"
    model = onnx.load(written)
    onnx.checker.check_model(model, full_check=True)
    ops = [n.op_type for n in model.graph.node]
    assert "Identity" not in ops and "Concat" not in ops and "Sqrt" not in ops
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    assert model.graph.output[0].name == "logits"
    # the same numbers as the input model, at batch 1 and (newly possible) batch 3
    np.testing.assert_allclose(ort_run(written), ort_run(QUICKSTART_MODEL), rtol=1e-5, atol=1e-6)
    assert ort_run(written, batch=3).shape == (3, 10)
    assert "PASS" in out and "fold constants" in out


def test_script_error_exit_code_and_caret(work):
    write(work / "bad.gds", 'model "model.onnx"\nremove node debug_identiy\n')
    code, out, err = run_cli("run", "bad.gds", "-o", "out.onnx")
    assert code == 2
    assert "error[GDS105]: unknown node `debug_identiy`" in err and "did you mean `debug_identity`?" in err
    assert "bad.gds:2:13" in err and "Traceback" not in err
    assert not (work / "out.onnx").exists()


def test_missing_and_corrupt_models_are_model_errors(work):
    write(work / "s.gds", "cleanup\n")
    code, _, err = run_cli("run", "s.gds", "-i", "nope.onnx")
    assert code == 3 and "GDS301" in err and "Traceback" not in err
    (work / "corrupt.onnx").write_bytes(QUICKSTART_MODEL.read_bytes()[:1000])
    code, _, err = run_cli("run", "s.gds", "-i", "corrupt.onnx")
    assert code == 3 and "GDS302" in err and "Traceback" not in err


def test_failed_verification_exits_1_and_writes_nothing_unless_forced(work):
    # changing an attribute changes what the model computes: verification must catch it
    write(work / "s.gds", 'model "model.onnx"\nset node fc alpha = 2.0\nsave "out.onnx"\n')
    code, out, err = run_cli("run", "s.gds")
    assert code == 1 and "FAIL" in out
    assert not (work / "out.onnx").exists()
    assert [p.name for p in work.iterdir() if p.name.startswith(".") or "tmp" in p.name] == []
    code, out, err = run_cli("run", "s.gds", "--force")
    assert code == 1 and (work / "out.onnx").exists()


def test_verify_each_names_the_pass_that_broke_the_model(work):
    write(work / "s.gds", 'model "model.onnx"\nfold constants\nset node fc alpha = 2.0\ncleanup\n')
    code, _, err = run_cli("run", "s.gds", "--verify-each", "-o", "out.onnx")
    assert code == 1 and "GDS401" in err and "set node fc alpha = 2.0" in err and "s.gds:3:1" in err
    assert not (work / "out.onnx").exists()


def test_no_verify_still_runs_the_checker(work):
    write(work / "s.gds", 'model "model.onnx"\nfold constants\n')
    code, out, _ = run_cli("run", "s.gds", "--no-verify", "-o", "out.onnx", "--json")
    data = json.loads(out)
    assert code == 0 and data["verification"] is None and (work / "out.onnx").exists()


def test_output_may_not_overwrite_the_input(work):
    write(work / "s.gds", 'model "model.onnx"\ncleanup\nsave "model.onnx"\n')
    before = (work / "model.onnx").read_bytes()
    code, _, err = run_cli("run", "s.gds")
    assert code == 3 and "GDS304" in err
    assert (work / "model.onnx").read_bytes() == before
    code, _, err = run_cli("run", "s.gds", "--overwrite-input")
    assert code == 0, err


def test_reports_html_svg_json(work):
    write(work / "s.gds", 'model "model.onnx"\nfold constants\ncleanup\n')
    for name in ("r.html", "r.svg", "r.json"):
        code, _, err = run_cli("run", "s.gds", "--quiet", "--report", name)
        assert code == 0, err
        assert "fold" in (work / name).read_text() and "cleanup" in (work / name).read_text()
    data = json.loads((work / "r.json").read_text())
    assert {"passes", "before", "after", "verification"} <= set(data)


def test_same_script_same_model_gives_identical_bytes(work):
    write(work / "s.gds", 'model "model.onnx"\nfold constants\nremove node debug_identity\nset batch N\n'
                          'save "out.onnx"\n')
    outputs = []
    for seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        subprocess.run([sys.executable, "-m", "graphdsl", "run", "s.gds", "-q"], check=True, env=env)
        outputs.append((work / "out.onnx").read_bytes())
    assert outputs[0] == outputs[1]


def test_check_reads_no_more_than_it_must(work):
    write(work / "s.gds", 'model "model.onnx"\nrename tensor images to pixels\nset input pixels dtype float16\n')
    before = (work / "model.onnx").stat().st_mtime_ns
    assert main(["check", "s.gds"]) == 0
    assert (work / "model.onnx").stat().st_mtime_ns == before
    assert sorted(p.name for p in work.iterdir()) == ["model.onnx", "s.gds"]


def test_help_for_each_command():
    for command in ("run", "check", "inspect"):
        code, out, _ = run_cli(command, "--help")
        assert code == 0 and "usage: graphdsl " + command in out


def test_inspect_lists_io_and_nodes():
    code, out, err = run_cli("inspect", str(QUICKSTART_MODEL), "--nodes", "--json")
    data = json.loads(out)
    assert code == 0, err
    assert [i["name"] for i in data["inputs"]] == ["images"]
    assert "debug_identity" in {n["name"] for n in data["nodes"]}
