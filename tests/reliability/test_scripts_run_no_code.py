"""A script can never run Python code: not by importing it, not by naming it, not through its data.

Each attempt would create a marker file if any code ran; every test checks the marker is absent, besides
the diagnostic. Only passes that installed packages register under the `graphdsl.passes` entry point
group are callable (tests/passes/test_apply_entry_point.py; the report names their package).
"""

from __future__ import annotations

import contextlib
import io
import sys
import textwrap

import numpy as np
import onnx
import pytest
from reliability_helpers import small_model

import graphdsl
from graphdsl import cli as gds_cli
from graphdsl.diagnostics import GraphdslError

PAYLOAD = "open({marker!r}, 'w').write('ran')"


@pytest.fixture
def work(tmp_path, monkeypatch):
    marker = tmp_path / "MARKER"
    code = PAYLOAD.format(marker=str(marker))
    (tmp_path / "evil.py").write_text(code + "\n")
    (tmp_path / "evil_gds.gds").write_text(f"# {code}\ncleanup\n")
    onnx.save(small_model(), tmp_path / "m.onnx")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # `evil` is importable: a script still cannot import it
    yield tmp_path, marker, code
    sys.modules.pop("evil", None)


def refused(text: str) -> str:
    with pytest.raises(GraphdslError) as e:
        graphdsl.compile(text)
    return e.value.diagnostics[0].code


SCRIPTS = {
    'import "evil.py"': "GDS103",  # read as .gds text: `open(...)` is an unknown statement, never executed
    'import "evil"': "GDS201",
    "apply evil": "GDS109",  # a module on sys.path is not a pass
    "apply os": "GDS109",
    "apply pip": "GDS109",  # a console script entry point is not a pass
    "apply evil.run": "GDS001",
    "set node mm1 alpha = eval(1)": "GDS114",
    "set node mm1 alpha = __import__(evil)": "GDS114",
    'set node mm1 alpha = open("MARKER")': "GDS114",
    "set node mm1 alpha = exec(1)": "GDS114",
}


@pytest.mark.parametrize("text", list(SCRIPTS))
def test_code_is_never_imported_or_called(work, text):
    root, marker, code = work
    assert refused(text + "\n") == SCRIPTS[text]
    assert not marker.exists()


def test_code_in_strings_stays_text(work):
    root, marker, code = work
    pipeline = graphdsl.compile(f'rename tensor y to "{code}"\n')  # code has no double quotes
    result = pipeline.run(root / "m.onnx", output=root / "out.onnx", quiet=True)
    assert result.passed and not marker.exists()
    assert graphdsl.compile('import "evil_gds.gds"\n').passes  # a comment holding code is a comment


def test_verification_data_is_never_unpickled(work):
    """`verify data` with a pickled object array: refused (GDS403), not loaded."""
    root, marker, code = work

    class Payload:
        def __reduce__(self):
            return (exec, (code,))

    np.savez(root / "evil.npz", x=np.array([Payload()], dtype=object))
    assert not marker.exists()
    (root / "s.gds").write_text('cleanup\nverify data "evil.npz"\n')
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        exit_code = gds_cli.main(["run", str(root / "s.gds"), "-i", str(root / "m.onnx"), "-o",
                                  str(root / "o.onnx")])
    assert exit_code == 3 and "GDS403" in err.getvalue(), err.getvalue()
    assert not marker.exists() and not (root / "o.onnx").exists()


def test_plugin_passes_come_only_from_the_entry_point_group(work):
    """A class that looks like a pass, importable from sys.path, is still not callable by name."""
    root, marker, code = work
    (root / "fake_pass.py").write_text(textwrap.dedent(f"""
        from dataclasses import dataclass
        from graphdsl.pipeline import Pass
        {code}
        @dataclass
        class Fake(Pass):
            name = "fake"
            span: object = None
        """))
    assert refused("apply fake\n") == "GDS109"
    assert refused("apply fake_pass\n") == "GDS109"
    assert not marker.exists()
