"""Parsing .gds text into an AST, with syntax errors turned into diagnostics.

The grammar is loaded once (Lark LALR is fast to run but slow to build). A syntax error does not stop
the parse: the offending line is blanked out and the text parsed again, so one run reports every line
that is wrong (up to `MAX_ERRORS`), like a compiler does.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

from lark import Lark, Token, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.exceptions import VisitError

from graphdsl.diagnostics import Diagnostic, ScriptError, SourceFile, Span, suggestion_label
from graphdsl.syntax import ast
from graphdsl.syntax.transform import ToAst

MAX_ERRORS = 20
SYNTAX_ERROR = "GDS001"
UNEXPECTED_CHARACTER = "GDS002"
INVALID_UTF8 = "GDS003"
UNTERMINATED_STRING = "GDS004"
UNKNOWN_STATEMENT = "GDS103"
BAD_LITERAL = "GDS113"
TOO_DEEP = "GDS119"
MAX_NESTING = 64

STATEMENT_KEYWORDS = ("import", "model", "save", "domain", "extract", "fold", "cleanup", "toposort", "inline",
                      "remove", "rename", "set", "convert", "verify", "apply", "replace", "add", "rule")

# What users call the grammar's terminals, for "expected one of ..." messages.
_TERMINAL_WORDS = {
    "NAME": "a name", "STRING": "a quoted string", "INT": "an integer", "FLOAT": "a number",
    "SIZE": "a size like 16MiB", "_NL": "end of line", "SEMICOLON": "`;`", "COMMA": "`,`", "COLON": "`:`",
    "LSQB": "`[`", "RSQB": "`]`", "LPAR": "`(`", "RPAR": "`)`", "EQUAL": "`=`", "QMARK": "`?`",
    "PLUS": "`+`", "MINUS": "`-`", "STAR": "`*`", "SLASH": "`/`", "$END": "end of file",
    "LBRACE": "`{`", "RBRACE": "`}`", "VBAR": "`|`", "COMPARE": "a comparison", "DOT": "`.`",
}


class _TooDeep(Exception):
    def __init__(self, token: Token):
        self.token = token


class _BracketNewlines:
    """Post-lexer: newlines inside () and [] do not end a statement, so lists can span lines.

    It also bounds bracket nesting, so a hostile script cannot drive the tree transformer (which recurses)
    into Python's recursion limit.
    """

    always_accept = ("_NL",)

    def process(self, stream):
        depth = signs = 0
        for tok in stream:
            signs = signs + 1 if tok.type == "MINUS" else 0
            if signs > MAX_NESTING:
                raise _TooDeep(tok)
            if tok.type in ("LPAR", "LSQB"):
                depth += 1
                if depth > MAX_NESTING:
                    raise _TooDeep(tok)
            elif tok.type in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            elif tok.type == "_NL" and depth:
                continue
            yield tok


def grammar_text() -> str:
    """The grammar as installed (package data `graphdsl.grammar`), else from the source tree."""
    try:
        return importlib.resources.files("graphdsl.grammar").joinpath("gds.lark").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return (Path(__file__).resolve().parents[2] / "grammar" / "gds.lark").read_text("utf-8")


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(grammar_text(), parser="lalr", lexer="contextual", postlex=_BracketNewlines(),
                propagate_positions=True, maybe_placeholders=False)  # tests build it with strict=True


def decode_source(data: bytes, path: str) -> SourceFile:
    """UTF-8 text of a script; invalid bytes are a diagnostic at the line and column they sit at."""
    try:
        return SourceFile(path, data.decode("utf-8"))
    except UnicodeDecodeError as e:
        good = data[: e.start].decode("utf-8")
        line = good.count("\n") + 1
        column = len(good) - (good.rfind("\n") + 1) + 1
        shown = SourceFile(path, data.decode("utf-8", errors="replace"))
        raise ScriptError(Diagnostic(
            INVALID_UTF8, f"the script is not valid UTF-8 (byte 0x{data[e.start]:02x})",
            span=Span(shown, line, column, line, column + 1), label="invalid byte",
            hints=("save the file as UTF-8",))) from None


def parse(text: str, path: str = "<script>") -> ast.Script:
    """Parse a whole script; raises ScriptError carrying every syntax error found."""
    source = SourceFile(path, text)
    diagnostics: list[Diagnostic] = []
    current = text
    while True:
        try:
            tree = _parser().parse(current)
            break
        except _TooDeep as e:
            raise ScriptError(_too_deep(source, e.token.line, e.token.column)) from None
        except RecursionError:  # e.g. thousands of unary minus signs in a row
            raise ScriptError(_too_deep(source, 1, 1)) from None
        except UnexpectedInput as e:
            diagnostics.append(_diagnostic(e, source))
            blanked = _blank_line(current, e.line)
            if isinstance(e, UnexpectedEOF) or blanked == current or len(diagnostics) >= MAX_ERRORS:
                raise ScriptError(diagnostics) from None
            current = blanked
    if diagnostics:
        raise ScriptError(diagnostics)
    try:
        statements = ToAst(source).transform(tree)
    except RecursionError:
        raise ScriptError(_too_deep(source, 1, 1)) from None
    except VisitError as e:  # a literal the grammar admits but Python cannot read (e.g. a bad escape)
        raise ScriptError(Diagnostic(BAD_LITERAL, f"invalid literal: {e.orig_exc}",
                                     span=_meta_span(source, e.obj))) from None
    return ast.Script(statements, source)


def _too_deep(source: SourceFile, line: int, column: int) -> Diagnostic:
    return Diagnostic(TOO_DEEP, f"expression nested too deeply (more than {MAX_NESTING} levels)",
                      span=Span(source, line, column, line, column + 1), label="too deep from here",
                      hints=("split the expression, or compute the value outside the script",))


def _blank_line(text: str, line: int) -> str:
    """The text with one line's characters replaced by spaces (positions elsewhere stay the same)."""
    lines = text.split("\n")
    if not 0 < line <= len(lines) or not lines[line - 1].strip():
        return text
    lines[line - 1] = " " * len(lines[line - 1])
    return "\n".join(lines)


def _meta_span(source: SourceFile, obj) -> Span | None:
    meta = getattr(obj, "meta", None)
    if meta is None or getattr(meta, "empty", True):
        return None
    return Span(source, meta.line, meta.column, meta.end_line, meta.end_column)


def _diagnostic(e: UnexpectedInput, source: SourceFile) -> Diagnostic:
    line = max(getattr(e, "line", 1) or 1, 1)
    column = max(getattr(e, "column", 1) or 1, 1)
    if isinstance(e, UnexpectedCharacters):
        return _unexpected_character(e, source, line, column)
    if isinstance(e, UnexpectedEOF):
        last = source.text.rstrip().count("\n") + 1
        end = len(source.line(last)) + 1
        return Diagnostic(SYNTAX_ERROR, "unexpected end of file", span=Span(source, last, end, last, end + 1),
                          label=_expected(e.expected), hints=("is a bracket or statement left open?",))
    assert isinstance(e, UnexpectedToken)
    return _unexpected_token(e, source)


def _unexpected_character(e: UnexpectedCharacters, source: SourceFile, line: int, column: int) -> Diagnostic:
    char = source.text[e.pos_in_stream] if e.pos_in_stream < len(source.text) else ""
    span = Span(source, line, column, line, column + 1)
    if char == '"':
        rest = source.line(line)[column - 1:]
        return Diagnostic(UNTERMINATED_STRING, "unterminated string",
                          span=Span(source, line, column, line, column + len(rest)),
                          label="this string has no closing quote", hints=('close it with `"` on the same line',))
    return Diagnostic(UNEXPECTED_CHARACTER, f"unexpected character `{char}`", span=span,
                      label=_expected(e.allowed) if e.allowed else "",
                      hints=('names with other characters must be quoted: "my/tensor:0"',))


def _unexpected_token(e: UnexpectedToken, source: SourceFile) -> Diagnostic:
    tok: Token = e.token
    if tok.type == "$END":
        return _diagnostic(UnexpectedEOF(e.expected), source)
    text = str(tok).replace("\n", "\\n") if tok.type != "_NL" else "end of line"
    width = max(1, len(str(tok))) if tok.type != "_NL" else 1
    span = Span(source, tok.line, tok.column, tok.line, tok.column + width)
    expected = set(e.expected)
    if tok.type == "NAME" and any(k.upper() in expected for k in ("import", "model", "fold")):
        return Diagnostic(UNKNOWN_STATEMENT, f"unknown statement `{tok}`", span=span,
                          label=suggestion_label(str(tok), STATEMENT_KEYWORDS),
                          hints=("statements: " + ", ".join(STATEMENT_KEYWORDS),))
    return Diagnostic(SYNTAX_ERROR, f"unexpected {'`' + text + '`' if tok.type != '_NL' else text}",
                      span=span, label=_expected(expected))


def _expected(expected) -> str:
    words = sorted({_TERMINAL_WORDS.get(t, f"`{t.lower()}`" if t.isupper() and t.isalpha() else t)
                    for t in expected if not t.startswith("__")})
    if not words:
        return ""
    if len(words) > 8:
        words = words[:8] + ["..."]
    return "expected " + (words[0] if len(words) == 1 else "one of " + ", ".join(words))
