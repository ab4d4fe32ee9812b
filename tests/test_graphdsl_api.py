"""The public API is what graphdsl/__init__.py lists, and every name in it exists and is documented."""

import graphdsl

EXPECTED = {
    "Diagnostic", "ExitCode", "GraphdslError", "ModelError", "Pass", "PassContext", "PassResult", "Pipeline",
    "Result", "RunOptions", "ScriptError", "Span", "compile",
}


def test_all_is_the_expected_surface():
    assert set(graphdsl.__all__) == EXPECTED  # a change here is an API change: update docs/python.md


def test_every_public_name_exists_and_has_a_docstring():
    for name in graphdsl.__all__:
        obj = getattr(graphdsl, name)
        assert obj.__doc__, name


def test_compile_accepts_text_and_paths(tmp_path):
    (tmp_path / "s.gds").write_text("cleanup\n")
    assert [type(p).name for p in graphdsl.compile(tmp_path / "s.gds").passes] == ["cleanup"]
    assert [type(p).name for p in graphdsl.compile(str(tmp_path / "s.gds")).passes] == ["cleanup"]
    assert [type(p).name for p in graphdsl.compile("cleanup\ntoposort\n").passes] == ["cleanup", "toposort"]


def test_result_renders_in_jupyter(tmp_path):
    from pathlib import Path

    model = Path(__file__).resolve().parents[1] / "examples" / "models" / "quickstart.onnx"
    result = graphdsl.compile("fold constants\n").run(model)
    bundle = result._repr_mimebundle_()
    assert "text/html" in bundle and "fold constants" in bundle["text/plain"]
    assert result.model.graph.node  # the exported proto
