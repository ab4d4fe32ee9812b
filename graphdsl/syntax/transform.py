"""Lark parse tree -> typed AST. One small method per grammar rule, each returning a frozen dataclass."""

from __future__ import annotations

import ast as pyast
import warnings
from dataclasses import dataclass, replace

from lark import Token, Transformer, v_args

from graphdsl.diagnostics import SourceFile, Span
from graphdsl.syntax import ast
from graphdsl.syntax.names import Name

_SIZE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def unquote(text: str) -> str:
    r"""A STRING token's value: the usual backslash escapes, decoded as Python decodes them. An unknown
    escape stays as written (`"C:\models"`), without the warning Python prints for it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pyast.literal_eval(text)


@dataclass(frozen=True)
class _Clause:
    """A `where`, `match` or `rewrite` part of a rule, tagged until `rule_stmt` puts it in place."""

    kind: str
    value: object
    end: tuple[int, int] = (0, 0)  # (line, column) where the part ends


def parse_size(text: str) -> int:
    number = text.rstrip("KMGTiB")
    unit = text[len(number):]
    return int(float(number) * _SIZE_UNITS[unit])


@v_args(meta=True)
class ToAst(Transformer):
    """Builds AST nodes; `source` is attached to every span so diagnostics can quote the line."""

    def __init__(self, source: SourceFile):
        super().__init__(visit_tokens=False)
        self.source = source

    # --- helpers ------------------------------------------------------------------------------------

    def _span(self, meta) -> Span:
        return Span(self.source, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok_span(self, tok: Token) -> Span:
        return Span(self.source, tok.line, tok.column, tok.end_line, tok.end_column)

    def _name(self, tok: Token) -> Name:
        text = unquote(tok) if tok.type == "STRING" else str(tok)
        return Name(text, self._tok_span(tok))

    # --- statements ---------------------------------------------------------------------------------

    def start(self, meta, stmts):
        return tuple(stmts)

    def import_stmt(self, meta, c):
        return ast.Import(unquote(c[0]), self._span(meta))

    def model_stmt(self, meta, c):
        return ast.ModelStmt(unquote(c[0]), self._span(meta))

    def save_stmt(self, meta, c):
        return ast.Save(unquote(c[0]), c[1], self._span(meta))

    def domain_stmt(self, meta, c):
        return ast.DomainDecl(unquote(c[0]), int(c[1], 0), self._span(meta))

    def extract_stmt(self, meta, c):
        return ast.Extract(c[0], c[1], self._span(meta))

    def tensor_specs(self, meta, c):
        return tuple(c)

    def tensor_spec(self, meta, c):
        name, rest = c[0], c[1:]
        shape = next((r for r in rest if isinstance(r, tuple)), None)
        dtype = next((self._name(r) for r in rest if isinstance(r, Token)), None)
        return ast.TensorSpec(name, shape, dtype, self._span(meta))

    def fold_stmt(self, meta, c):
        return ast.FoldConstants(c[0], self._span(meta))

    def cleanup_stmt(self, meta, c):
        return ast.Cleanup(c[0], self._span(meta))

    def toposort_stmt(self, meta, c):
        return ast.Toposort(self._span(meta))

    def inline_stmt(self, meta, c):
        return ast.InlineFunctions(self._span(meta))

    def remove_stmt(self, meta, c):
        return ast.RemoveNodes(c[0], c[1], self._span(meta))

    def rename_tensor(self, meta, c):
        return ast.Rename("tensor", c[0], c[1], self._span(meta))

    def rename_node(self, meta, c):
        return ast.Rename("node", c[0], c[1], self._span(meta))

    def set_input(self, meta, c):
        return ast.SetTensor("input", c[0], c[1], self._span(meta))

    def set_output(self, meta, c):
        return ast.SetTensor("output", c[0], c[1], self._span(meta))

    def set_node(self, meta, c):
        return ast.SetNode(c[0], c[1], self._span(meta))

    def set_batch(self, meta, c):
        return ast.SetBatch(c[0], self._span(meta))

    def tensor_props(self, meta, c):
        return tuple(c)

    def prop_shape(self, meta, c):
        return ast.TensorProp("shape", c[0], self._span(meta))

    def prop_dtype(self, meta, c):
        return ast.TensorProp("dtype", self._name(c[0]), self._span(meta))

    def prop_dim(self, meta, c):
        return ast.TensorProp("dim", (int(c[0], 0), c[1]), self._span(meta))

    def assignments(self, meta, c):
        return tuple(c)

    arguments = assignments

    def assignment(self, meta, c):
        return ast.Assignment(self._name(c[0]), c[1], self._span(meta))

    def convert_opset(self, meta, c):
        return ast.Convert("opset", int(c[0], 0), self._span(meta))

    def convert_ir(self, meta, c):
        return ast.Convert("ir", int(c[0], 0), self._span(meta))

    def verify_stmt(self, meta, c):
        options = tuple(x for x in c if isinstance(x, ast.Option))
        shapes = tuple(x for x in c if isinstance(x, ast.TensorSpec))
        return ast.Verify(options, shapes, self._span(meta))

    def verify_off(self, meta, c):
        return ast.Verify((), (), self._span(meta), compare=False)

    def verify_shape(self, meta, c):
        return ast.TensorSpec(c[0], c[1], None, self._span(meta))

    def apply_stmt(self, meta, c):
        args = c[1] if len(c) > 1 else ()
        return ast.ApplyPass(self._name(c[0]), args, self._span(meta))

    # --- shared pieces ------------------------------------------------------------------------------

    def refs(self, meta, c):
        return tuple(c)

    def name_ref(self, meta, c):
        return self._name(c[0])

    string_ref = name_ref

    def shape(self, meta, c):
        return tuple(c)

    def dim_int(self, meta, c):
        return int(c[0], 0)

    def dim_name(self, meta, c):
        return self._name(c[0])

    def dim_unknown(self, meta, c):
        return None

    def options(self, meta, c):
        return tuple(c)

    def option(self, meta, c):
        return ast.Option(self._name(c[0]), c[1], self._span(meta))

    # --- expressions --------------------------------------------------------------------------------

    def int_lit(self, meta, c):
        return ast.Literal(int(c[0], 0), str(c[0]), self._span(meta))

    def float_lit(self, meta, c):
        return ast.Literal(float(c[0]), str(c[0]), self._span(meta))

    def size_lit(self, meta, c):
        return ast.Literal(parse_size(str(c[0])), str(c[0]), self._span(meta))

    def string_lit(self, meta, c):
        return ast.Literal(unquote(c[0]), str(c[0]), self._span(meta))

    def name_lit(self, meta, c):
        return ast.Ident(str(c[0]), self._span(meta))

    def list_lit(self, meta, c):
        return ast.ListExpr(tuple(c), self._span(meta))

    def call(self, meta, c):
        domain, func = c[0]
        args = tuple(a for a in c[1:] if not isinstance(a, ast.Assignment))
        keywords = tuple(a for a in c[1:] if isinstance(a, ast.Assignment))
        return ast.Call(func, args, self._span(meta), keywords, domain)

    def plain_callee(self, meta, c):
        return "", self._name(c[0])

    def domain_callee(self, meta, c):
        return ".".join(str(t) for t in c[:-1]), self._name(c[-1])

    def keyword_arg(self, meta, c):
        return ast.Assignment(self._name(c[0]), c[1], self._span(meta))

    def replace_node_stmt(self, meta, c):
        return ast.ReplaceNode(c[0], c[1], self._span(meta))

    def add_node_stmt(self, meta, c):
        return ast.AddNode(c[0], c[1], self._span(meta))

    # --- expressions of rules ---------------------------------------------------------------------

    def optional_call(self, meta, c):
        return replace(self.call(meta, c), optional=True)

    def labelled_arg(self, meta, c):
        return ast.Labelled(self._name(c[0]), c[1], self._span(meta))

    def splat_arg(self, meta, c):
        return ast.Splat(self._name(c[0]), self._span(meta))

    def alternative(self, meta, c):
        left = c[0].branches if isinstance(c[0], ast.Alternative) else (c[0],)
        return ast.Alternative(left + (c[1],), self._span(meta))

    def or_test(self, meta, c):
        return ast.Logical("or", c[0], c[1], self._span(meta))

    def and_test(self, meta, c):
        return ast.Logical("and", c[0], c[1], self._span(meta))

    def not_test(self, meta, c):
        return ast.Not(c[0], self._span(meta))

    def compare(self, meta, c):
        return ast.Compare(str(c[1]), c[0], c[2], self._span(meta))

    def approx(self, meta, c):
        return ast.Approx(c[0], c[1], c[2] if len(c) > 2 else None, self._span(meta))

    # --- rules --------------------------------------------------------------------------------------

    def rule_stmt(self, meta, c):
        name = self._name(c[0])
        parts = {p.kind: p for p in c[1:] if isinstance(p, _Clause)}
        line, column = parts["priority"].end if "priority" in parts else (name.span.end_line, name.span.end_column)
        header = Span(self.source, meta.line, meta.column, line, column)
        priority = parts["priority"].value if "priority" in parts else 0
        where = parts["where"].value if "where" in parts else None
        return ast.Rule(name, priority, parts["match"].value, where, parts["rewrite"].value,
                        self._span(meta), header)

    def priority(self, meta, c):
        return _Clause("priority", int(c[-1], 0), (meta.end_line, meta.end_column))

    def negative_priority(self, meta, c):
        return _Clause("priority", -int(c[-1], 0), (meta.end_line, meta.end_column))

    def match_block(self, meta, c):
        return _Clause("match", tuple(c))

    def rewrite_block(self, meta, c):
        return _Clause("rewrite", tuple(c))

    def where_clause(self, meta, c):
        return _Clause("where", c[0])

    def pattern_binding(self, meta, c):
        out = ast.OutName(self._name(c[0]), False, self._tok_span(c[0]))
        return ast.PatternBinding((out,), c[1], _where(c[2:]), self._span(meta))

    def pattern_outputs(self, meta, c):
        return ast.PatternBinding(c[1], c[0], _where(c[2:]), self._span(meta), arrow=True)

    def rewrite_binding(self, meta, c):
        out = ast.OutName(self._name(c[0]), False, self._tok_span(c[0]))
        return ast.RewriteBinding((out,), c[1], self._span(meta))

    def rewrite_outputs(self, meta, c):
        return ast.RewriteBinding(c[1], c[0], self._span(meta), arrow=True)

    def out_list(self, meta, c):
        return tuple(c)

    def single_out(self, meta, c):
        return ast.OutName(self._name(c[0]), False, self._span(meta))

    def rest_out(self, meta, c):
        return ast.OutName(self._name(c[0]), True, self._span(meta))

    def replace_rule_stmt(self, meta, c):
        root = self._name(c[0]) if isinstance(c[0], Token) else None
        rest = c[1:] if root is not None else c
        return ast.ReplaceRule(rest[0], _where(rest[1:-1]), rest[-1], self._span(meta), root)

    def index(self, meta, c):
        return ast.Index(c[0], c[1], self._span(meta))

    def neg(self, meta, c):
        return ast.Unary("-", c[0], self._span(meta))

    def _binary(op):  # noqa: N805 - a method factory used only in this class body
        def build(self, meta, c):
            return ast.Binary(op, c[0], c[1], self._span(meta))
        return build

    add, sub, mul, div = _binary("+"), _binary("-"), _binary("*"), _binary("/")


def _where(parts) -> object:
    return next((p.value for p in parts if isinstance(p, _Clause) and p.kind == "where"), None)
