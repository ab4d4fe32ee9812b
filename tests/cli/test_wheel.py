"""The built wheel installs into a fresh environment and runs a script there.

It must carry the grammar and the standard library as package data, install `passes/` as
`graphdsl.passes`, and claim no top-level `passes` or `grammar` module.
"""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(out)],
                   check=True)
    (found,) = out.glob("graphdsl-*.whl")
    return found


def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "graphdsl/grammar/gds.lark" in names
    assert "graphdsl/passes/std/tidy.gds" in names
    assert "graphdsl/passes/save.py" in names
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_level == {"graphdsl"}


def test_wheel_runs_the_quickstart_in_a_fresh_venv(wheel, tmp_path):
    venv = tmp_path / "venv"
    # system site packages provide onnx/ORT/lark/rich; graphdsl itself comes only from the wheel
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    work = tmp_path / "work"
    shutil.copytree(REPO / "examples", work, ignore=shutil.ignore_patterns("out"))
    env = {"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1", "HOME": str(tmp_path)}
    where = subprocess.run([str(python), "-c", "import graphdsl, graphdsl.passes as p; print(graphdsl.__file__);"
                            "print(p.__file__)"], cwd=work, env=env, capture_output=True, text=True, check=True)
    assert str(REPO) not in where.stdout and str(venv) in where.stdout
    run = subprocess.run([str(python), "-m", "graphdsl", "run", "quickstart.gds", "--quiet"], cwd=work, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (work / "out" / "quickstart.opt.onnx").is_file()
    missing = subprocess.run([str(python), "-c", "import passes"], cwd=tmp_path, env=env, capture_output=True)
    assert missing.returncode != 0
