"""The grammar and the parser: what parses into what, with which spans, and how errors are reported."""

import pytest
from lark import Lark

from graphdsl.diagnostics import GraphdslError, ScriptError
from graphdsl.syntax import ast
from graphdsl.syntax.parser import MAX_ERRORS, grammar_text, parse


def codes(text: str) -> list[str]:
    with pytest.raises(ScriptError) as e:
        parse(text, "t.gds")
    return [d.code for d in e.value.diagnostics]


def test_grammar_is_lalr_without_conflicts_or_terminal_collisions():
    # strict=True refuses shift/reduce conflicts and (with interegular) colliding terminals
    Lark(grammar_text(), parser="lalr", lexer="contextual", strict=True)


def test_empty_and_comment_only_scripts():
    assert parse("").statements == ()
    assert parse("# nothing\n\n   # here\n").statements == ()


def test_statements_separated_by_newlines_and_semicolons():
    script = parse("cleanup; toposort\n\nfold constants ;; inline functions\n")
    assert [type(s) for s in script.statements] == [ast.Cleanup, ast.Toposort, ast.FoldConstants,
                                                    ast.InlineFunctions]


def test_spans_are_one_based_and_point_at_names():
    script = parse('model "m.onnx"\nrename tensor  "a/b:0" to c\n', "x.gds")
    rename = script.statements[1]
    assert (rename.span.line, rename.span.column) == (2, 1)
    assert rename.old == "a/b:0" and (rename.old.span.line, rename.old.span.column) == (2, 16)
    assert rename.new.span.column == 27
    assert str(rename.span) == "x.gds:2:1"


def test_lists_may_span_lines_inside_brackets():
    script = parse("set input x shape [1,\n  3,\n  224, 224]\n")
    (prop,) = script.statements[0].props
    assert prop.value == (1, 3, 224, 224)


def test_extract_specs_with_shapes_symbolic_dims_and_dtypes():
    (stmt,) = parse('extract inputs x[N, 3, "h", ?]:float16, "y:0" outputs out\n').statements
    x, y = stmt.inputs
    assert x.shape == ("N", 3, "h", None)
    assert x.dtype == "float16" and y.name == "y:0" and y.shape is None
    assert [o.name for o in stmt.outputs] == ["out"]


def test_sizes_numbers_and_expressions():
    (stmt,) = parse("fold constants size_threshold 1.5KiB\n").statements
    assert stmt.options[0].value.value == 1536
    (stmt,) = parse("set node n a = 0x10, b = 1e-3, c = [1, -2], d = 1/6, e = SAME_UPPER\n").statements
    values = [a.value for a in stmt.assignments]
    assert values[0].value == 16 and values[1].value == 0.001
    assert isinstance(values[3], ast.Binary) and isinstance(values[4], ast.Ident)


def test_keywords_are_still_usable_as_names():
    # the contextual lexer only treats a keyword as one where the grammar expects it
    (stmt,) = parse("rename tensor model to shape\n").statements
    assert (stmt.old, stmt.new) == ("model", "shape")


def test_verify_options_and_input_shapes():
    (stmt,) = parse('verify atol 1e-4 shape x [1, 3, 64, 64] samples 3 data "d.npz"\n').statements
    assert [str(o.key) for o in stmt.options] == ["atol", "samples", "data"]
    assert stmt.shapes[0].name == "x" and stmt.shapes[0].shape == (1, 3, 64, 64)


def test_apply_with_and_without_arguments():
    a, b = parse("apply mine(k = 1, mode = fast)\napply other\n").statements
    assert [str(x.key) for x in a.arguments] == ["k", "mode"] and b.arguments == ()


def test_several_errors_reported_at_once():
    assert codes("fodl constants\ncleanup\nset node x a == 2\nextract inputs x outputs\n") == [
        "GDS103", "GDS001", "GDS001"]


def test_error_count_is_bounded():
    text = "".join(f"bogus{i} statement\n" for i in range(MAX_ERRORS + 10))
    assert len(codes(text)) == MAX_ERRORS


def test_unterminated_string_and_unexpected_character():
    assert codes('model "m.onnx\n') == ["GDS004"]
    assert codes("cleanup @\n") == ["GDS002"]


def test_unclosed_bracket_is_end_of_file_error():
    assert codes("set input x shape [1, 2\n") == ["GDS001"]


@pytest.mark.parametrize("text", [
    "set node a x = " + "(" * 500 + "1" + ")" * 500,
    "set node a x = " + "[" * 5000,
    "set node a x = " + "-" * 3000 + "1",
])
def test_deep_nesting_is_a_diagnostic_not_a_crash(text):
    assert codes(text) == ["GDS119"]


def test_huge_literals():
    (stmt,) = parse("set node a x = " + "9" * 4000 + "\n").statements
    assert stmt.assignments[0].value.value == int("9" * 4000)
    assert codes("set node a x = " + "9" * 5000 + "\n") == ["GDS113"]  # beyond Python's int parsing


def test_bad_escape_in_string_is_a_diagnostic():
    with pytest.raises(GraphdslError) as e:
        parse('model "\\N{nope}"\n')
    assert e.value.diagnostics[0].code == "GDS113"


def test_unknown_escape_stays_as_written_without_a_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (stmt,) = parse('model "C:\\models\\yolo.onnx"\n').statements
    assert stmt.path == "C:\\models\\yolo.onnx"
