"""The pass registries: graphdsl's own passes by name, and installed packages' through entry points.

The plugin tests pip-install real (tiny) packages into a temporary folder put on sys.path, so the
entry points are found by importlib.metadata exactly as in a user's environment.
"""

import dataclasses
import importlib
import subprocess
import sys
import textwrap
import warnings

import pytest

from graphdsl.diagnostics import Severity
from graphdsl.passes.apply_entry_point import PluginWarning, builtin_passes, load_entry_point_passes
from graphdsl.pipeline import Pass

DEMO_MODULE = '''
from dataclasses import dataclass

from graphdsl.pipeline import Pass, PassResult


@dataclass
class StampDoc(Pass):
    """Writes a doc string into the graph."""

    name = "stamp_doc"
    text: str = "stamped"
    span: object = None

    def apply(self, graph, ctx):
        graph.doc_string = self.text
        return PassResult(changed=True)


def not_a_pass():
    return None
'''

DEMO_ENTRY_POINTS = '''
[project.entry-points."graphdsl.passes"]
stamp_doc = "gds_demo_pass:StampDoc"
not_a_pass = "gds_demo_pass:not_a_pass"
cleanup = "gds_demo_pass:StampDoc"
'''


# A PEP 517 backend in ~30 lines, shipped inside each test package (`backend-path`), so that pip builds
# and installs the packages offline and without setuptools/wheel versions getting in the way.
TINY_BACKEND = '''
import base64, hashlib, pathlib, tomllib, zipfile


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    data = tomllib.loads(pathlib.Path("pyproject.toml").read_text())
    project, modules = data["project"], data["tool"]["tiny"]["modules"]
    stem = f"{project['name'].replace('-', '_')}-{project['version']}"
    info = f"{stem}.dist-info"
    groups = project.get("entry-points", {})
    files = {f"{m}.py": pathlib.Path(f"{m}.py").read_text() for m in modules}
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\\nName: {project['name']}\\nVersion: {project['version']}\\n"
    files[f"{info}/WHEEL"] = "Wheel-Version: 1.0\\nGenerator: tiny\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    files[f"{info}/entry_points.txt"] = "".join(
        f"[{g}]\\n" + "".join(f"{k} = {v}\\n" for k, v in eps.items()) for g, eps in groups.items())
    record = [f"{path},sha256={_digest(text)},{len(text.encode())}" for path, text in files.items()]
    files[f"{info}/RECORD"] = "\\n".join(record + [f"{info}/RECORD,,"]) + "\\n"
    wheel = f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(pathlib.Path(wheel_directory) / wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def _digest(text):
    raw = hashlib.sha256(text.encode()).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
'''


def _package(root, dist: str, version: str, module: str, source: str, entry_points: str):
    folder = root / dist
    folder.mkdir()
    (folder / f"{module}.py").write_text(textwrap.dedent(source))
    (folder / "tiny_backend.py").write_text(TINY_BACKEND)
    (folder / "pyproject.toml").write_text(textwrap.dedent(f'''
        [build-system]
        requires = []
        build-backend = "tiny_backend"
        backend-path = ["."]

        [tool.tiny]
        modules = ["{module}"]

        [project]
        name = "{dist}"
        version = "{version}"
        ''') + entry_points)
    return folder


@pytest.fixture(scope="module")
def plugins(tmp_path_factory):
    pytest.importorskip("tomllib")  # the packages' tiny build backend reads pyproject.toml with it
    root = tmp_path_factory.mktemp("plugins")
    demo = _package(root, "graphdsl-demo-pass", "1.2.3", "gds_demo_pass", DEMO_MODULE, DEMO_ENTRY_POINTS)
    broken = _package(root, "graphdsl-broken-plugin", "0.1.0", "gds_broken",
                      "raise ImportError('needs libfoo')\n",
                      '[project.entry-points."graphdsl.passes"]\nbroken = "gds_broken:Broken"\n')
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-build-isolation",
                    "--target", str(target), str(demo), str(broken)], check=True, capture_output=True)
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    yield target
    sys.path.remove(str(target))
    for module in ("gds_demo_pass", "gds_broken"):
        sys.modules.pop(module, None)


def test_builtin_registry_names_every_pass_by_its_name():
    registry = builtin_passes()
    assert set(registry) == {"extract", "fold_constants", "cleanup", "toposort", "remove_nodes", "rename_tensor",
                             "rename_node", "set_attributes", "set_tensor", "dynamic_batch", "convert_opset",
                             "convert_ir", "inline_functions"}
    for name, cls in registry.items():
        assert issubclass(cls, Pass) and dataclasses.is_dataclass(cls) and cls.name == name
        assert [f.name for f in dataclasses.fields(cls)][-1] == "span"
        assert cls.__doc__ and "Args:" in cls.__doc__ or not [f for f in dataclasses.fields(cls) if f.name != "span"]


def test_loads_a_plugin_with_its_package_and_version(plugins):
    problems = []
    found = load_entry_point_passes(problems)
    entry = found["stamp_doc"]
    assert entry.package == "graphdsl-demo-pass" and entry.version == "1.2.3"
    assert entry.cls.__name__ == "StampDoc" and entry.target == "gds_demo_pass:StampDoc"
    p = entry.cls(text="hi")
    assert p.params() == {"text": "hi"} and p.describe() == "stamp_doc(text='hi')"


def test_broken_plugins_are_warnings_naming_the_package(plugins):
    problems = []
    found = load_entry_point_passes(problems)
    assert set(found) == {"stamp_doc"}
    by_entry = {d.location.rsplit(": ", 1)[1].split(" =")[0]: d for d in problems}
    assert all(d.severity == Severity.WARNING for d in problems)
    assert by_entry["broken"].code == "GDS321" and "`graphdsl-broken-plugin`" in by_entry["broken"].message
    assert "needs libfoo" in by_entry["broken"].message
    assert by_entry["not_a_pass"].code == "GDS321" and "not name a graphdsl Pass" in by_entry["not_a_pass"].message
    assert by_entry["cleanup"].code == "GDS322" and "graphdsl itself" in by_entry["cleanup"].message


def test_without_a_list_problems_are_python_warnings(plugins):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_entry_point_passes()
    assert len([w for w in caught if issubclass(w.category, PluginWarning)]) == 3


def test_scripts_call_plugins_and_the_pipeline_knows_their_package(plugins):
    import graphdsl
    from graphdsl.passes.cleanup import Cleanup

    pipeline = graphdsl.compile('apply stamp_doc(text = "hi")\napply cleanup\n')
    stamp, cleanup = pipeline.passes
    assert type(stamp).__name__ == "StampDoc" and stamp.text == "hi"
    assert type(cleanup) is Cleanup  # a plugin cannot shadow graphdsl's own pass
    assert pipeline.origins == {0: "graphdsl-demo-pass 1.2.3"}
    assert sorted(d.code for d in pipeline.warnings) == ["GDS321", "GDS321", "GDS322"]


def test_report_and_json_name_the_package_of_each_plugin_pass(plugins, tmp_path):
    """Which installed package a pass came from is in the report: the pass table and `--json`."""
    import contextlib
    import io
    import json

    import onnx
    from helpers import make_model, node, value
    from rich.console import Console

    import graphdsl
    from graphdsl.cli import main

    model = tmp_path / "m.onnx"
    relu = make_model([node("Relu", ["x"], ["y"], name="relu")], [value("x", [2])], [value("y", [2])])
    onnx.save(relu, model)
    script = tmp_path / "s.gds"
    script.write_text('apply stamp_doc(text = "hi")\ncleanup\n')
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["run", str(script), "-i", str(model), "-o", str(tmp_path / "o.onnx"), "--json"]) == 0
    passes = json.loads(out.getvalue())["passes"]
    assert [(p["name"], p["package"]) for p in passes] == [("stamp_doc", "graphdsl-demo-pass 1.2.3"),
                                                            ("cleanup", None)]
    result = graphdsl.compile(script).run(model, output=tmp_path / "o2.onnx", quiet=True)
    console = Console(file=io.StringIO(), width=140, color_system=None)
    console.print(result.report)
    assert "from graphdsl-demo-pass 1.2.3" in console.file.getvalue()
