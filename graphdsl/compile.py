"""Script -> Pipeline: imports resolved (cycles refused), statements turned into passes, settings collected.

`compile` checks everything that can be checked without a model (syntax, imports, options, ops and
attributes against the default opset); `Pipeline.check(model)` adds the model's names and opsets.
"""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from graphdsl import dtypes, opcall
from graphdsl.check import scope_for
from graphdsl.diagnostics import Diagnostic, GraphdslError, ScriptError, Span, script_error, suggestion_label
from graphdsl.params import bind
from graphdsl.pipeline import Pass
from graphdsl.syntax import ast
from graphdsl.syntax.names import Name
from graphdsl.syntax.parser import decode_source, parse
from graphdsl.values import evaluate

IMPORT_NOT_FOUND = "GDS201"
IMPORT_CYCLE = "GDS202"
NOT_IN_LIBRARY = "GDS203"
DUPLICATE_MODEL = "GDS117"
UNKNOWN_PASS = "GDS109"
SCRIPT_NOT_FOUND = "GDS204"
DUPLICATE_RULE = "GDS506"

STD_PREFIX = "std/"


@dataclass
class Pipeline:
    """A compiled script: the passes in order and the settings around them. Run it with `run`."""

    passes: list[Pass]
    source: str  # the script's path, or "<script>"
    model_path: Path | None = None
    verify: dict[str, Any] = field(default_factory=dict)  # VerifySettings keyword arguments
    verify_span: Span | None = None
    verify_shapes: dict[str, list] = field(default_factory=dict)  # input name -> shape for random data
    compare: bool = True  # False after `verify off`: onnx.checker only, no ONNX Runtime comparison
    warnings: list[Diagnostic] = field(default_factory=list)  # e.g. an installed plugin failed to load
    origins: dict[int, str] = field(default_factory=dict)  # pass index -> "package version" (entry points)

    def check(self, model=None) -> None:
        """Static checks against a model (a LoadedModel, gs.Graph or None); raises ScriptError."""
        scope = scope_for(model)
        for p in self.passes:
            check = getattr(p, "check", None)
            if check is not None:
                check(scope)
        if scope.diagnostics:
            raise ScriptError(scope.diagnostics)

    def run(self, model=None, **options) -> "Result":  # noqa: F821 - defined in graphdsl.run
        """Run on a model (path, onnx.ModelProto or LoadedModel; default: the script's `model`).

        Keyword options are those of `graphdsl.run.RunOptions` (output, verify_each, no_verify, force,
        atol, rtol, console, quiet).
        """
        from graphdsl.run import run_pipeline

        return run_pipeline(self, model, **options)


def compile(script: str | Path) -> Pipeline:  # noqa: A001 - the public name users expect
    """Compile a script given as text or as a path (a `Path`, or a one-line string ending in `.gds`)."""
    if isinstance(script, Path) or ("\n" not in script and script.strip().endswith(".gds")):
        path = Path(script)
        statements = _Expander().expand_file(path, span=None)
        return _Builder(path.parent).build(statements, str(path))
    parsed = parse(script)
    statements = _Expander().expand(parsed, Path.cwd(), ())
    return _Builder(Path.cwd()).build(statements, "<script>")


# --- imports -----------------------------------------------------------------------------------------


class _Expander:
    """Inlines imported files where they are imported; each file once, cycles refused."""

    def __init__(self):
        self.seen: set[Path] = set()

    def expand_file(self, path: Path, span: Span | None, stack: tuple[Path, ...] = ()) -> list:
        script = _read_script(path, span)
        return self.expand(script, path.parent, stack + (path.resolve(),))

    def expand(self, script: ast.Script, base: Path, stack: tuple[Path, ...]) -> list:
        out: list = []
        for stmt in script.statements:
            if not isinstance(stmt, ast.Import):
                out.append(stmt)
                continue
            target = _resolve_import(stmt, base)
            if target.resolve() in stack:
                chain = " -> ".join(p.name for p in stack[stack.index(target.resolve()):]) + f" -> {target.name}"
                raise script_error(IMPORT_CYCLE, f"import cycle: {chain}", stmt.span,
                                   label="this import closes the cycle",
                                   hint="move what both files need into a third file that imports neither")
            if target.resolve() in self.seen:
                continue  # imported once already: rules and declarations are not repeated
            self.seen.add(target.resolve())
            out.extend(_library_only(self.expand_file(target, stmt.span, stack)))
        return out


def _read_script(path: Path, span: Span | None) -> ast.Script:
    try:
        data = path.read_bytes()
    except (OSError, ValueError) as e:  # ValueError: a path the OS cannot take (embedded NUL)
        code = IMPORT_NOT_FOUND if span else SCRIPT_NOT_FOUND
        raise ScriptError(Diagnostic(code, f"cannot read script `{path}`: {getattr(e, 'strerror', None) or e}", span=span,
                                     location="" if span else str(path),
                                     hints=("paths in `import` are relative to the importing file; "
                                            "the standard library is `std/NAME.gds`",))) from None
    return parse(decode_source(data, str(path)).text, str(path))


def _resolve_import(stmt: ast.Import, base: Path) -> Path:
    try:  # a NUL or a lone surrogate (from an escape) is no file name this system can open
        os.fsencode(stmt.path)
        valid = "\0" not in stmt.path
    except UnicodeEncodeError:
        valid = False
    if not valid:
        raise script_error(IMPORT_NOT_FOUND, f"`{stmt.path!r}` is not a valid file name", stmt.span,
                           hint="import paths are plain relative paths like \"lib/common.gds\"")
    if stmt.path.startswith(STD_PREFIX):
        target = std_library_dir() / stmt.path[len(STD_PREFIX):]
        if not target.is_file():
            names = [p.name for p in std_library_dir().glob("*.gds")]
            raise script_error(IMPORT_NOT_FOUND, f"no standard library file `{stmt.path}`", stmt.span,
                               label=suggestion_label(Path(stmt.path).name, names),
                               hint="standard library: " + ", ".join(f"std/{n}" for n in sorted(names)))
        return target
    return base / stmt.path


def std_library_dir() -> Path:
    """passes/std as installed (graphdsl.passes), else in the source tree."""
    try:
        return Path(str(importlib.resources.files("graphdsl.passes").joinpath("std")))
    except ModuleNotFoundError:  # pragma: no cover - running from an uninstalled tree
        return Path(__file__).resolve().parents[1] / "passes" / "std"


def _library_only(statements: list) -> list:
    """An imported file is a library: it may not name the model or write files."""
    for stmt in statements:
        if isinstance(stmt, (ast.ModelStmt, ast.Save)):
            word = "model" if isinstance(stmt, ast.ModelStmt) else "save"
            raise script_error(NOT_IN_LIBRARY, f"`{word}` is not allowed in an imported file", stmt.span,
                               hint="keep `model` and `save` in the script you run")
    return statements


# --- statements -> passes ------------------------------------------------------------------------------


class _Builder:
    def __init__(self, base_dir: Path):
        self.base_dir = base_dir
        self.pipeline = Pipeline(passes=[], source="")
        self.problems: list[Diagnostic] = []
        self.entry_points: dict | None = None
        self.domains: set[str] = set()  # declared by `domain` statements, for the ops of rules
        self.rules: dict[str, object] = {}  # rule name -> compiled rule, across the script and its imports
        self.rule_set = None  # the ApplyRules pass the previous statement added to, if it was a rule

    def build(self, statements: list, source: str) -> Pipeline:
        self.pipeline.source = source
        for stmt in statements:
            try:
                self._statement(stmt)
            except ScriptError as e:
                self.problems.extend(e.diagnostics)
        if self.problems:
            raise ScriptError(self.problems)
        self.pipeline.check(None)  # ops and attributes against the default opset; names need a model
        return self.pipeline

    def _statement(self, stmt) -> None:
        handler: Callable = getattr(self, "_" + type(stmt).__name__)
        if not isinstance(stmt, (ast.Rule, ast.ReplaceRule)):
            self.rule_set = None
        result = handler(stmt)
        if result is not None:
            self.pipeline.passes.append(replace(result, span=stmt.span))

    def _ModelStmt(self, stmt: ast.ModelStmt):
        if self.pipeline.model_path is not None:
            raise script_error(DUPLICATE_MODEL, "the script names a model twice", stmt.span,
                               hint="keep one `model` statement (the CLI's -i overrides it)")
        self.pipeline.model_path = self.base_dir / stmt.path

    def _Save(self, stmt: ast.Save):
        from graphdsl.passes.save import Save

        return Save(**bind(Save, stmt.options, "`save`", fixed={"path": self.base_dir / stmt.path}))

    def _DomainDecl(self, stmt: ast.DomainDecl):
        from graphdsl.passes.domain import DeclareDomain

        self.domains.add(stmt.domain)
        return DeclareDomain(stmt.domain, stmt.version)

    def _Rule(self, stmt: ast.Rule | ast.ReplaceRule):
        """Consecutive rules of one file form one rule set, applied together to a fixpoint."""
        from graphdsl.match.compiler import compile_rule
        from graphdsl.passes.apply_rules import ApplyRules

        rule = compile_rule(stmt, len(self.rules), self.domains)
        if rule.name in self.rules:
            first = self.rules[rule.name]
            raise script_error(DUPLICATE_RULE, f"a rule named `{rule.name}` exists already", rule.span,
                               hint=f"the first is at {first.span}; rule names must be unique (`explain` uses them)")
        self.rules[rule.name] = rule
        same_file = self.rule_set is not None and self.rule_set.span.path == stmt.span.path
        if same_file:
            self.rule_set.rules.append(rule)
            return None
        self.rule_set = ApplyRules([rule], span=rule.span)
        self.pipeline.passes.append(self.rule_set)
        return None

    _ReplaceRule = _Rule

    def _Extract(self, stmt: ast.Extract):
        from graphdsl.passes.extract import Extract, TensorSpec

        def spec(s: ast.TensorSpec) -> TensorSpec:
            if s.dtype is not None:
                dtypes.onnx_dtype(s.dtype)
            return TensorSpec(s.name, list(s.shape) if s.shape is not None else None,
                              str(s.dtype) if s.dtype is not None else None)

        return Extract([spec(s) for s in stmt.inputs], [spec(s) for s in stmt.outputs])

    def _FoldConstants(self, stmt: ast.FoldConstants):
        from graphdsl.passes.fold_constants import FoldConstants

        return FoldConstants(**bind(FoldConstants, stmt.options, "`fold constants`"))

    def _Cleanup(self, stmt: ast.Cleanup):
        from graphdsl.passes.cleanup import Cleanup

        return Cleanup(**bind(Cleanup, stmt.options, "`cleanup`"))

    def _Toposort(self, stmt: ast.Toposort):
        from graphdsl.passes.toposort import Toposort

        return Toposort()

    def _InlineFunctions(self, stmt: ast.InlineFunctions):
        from graphdsl.passes.inline_functions import InlineFunctions

        return InlineFunctions()

    def _RemoveNodes(self, stmt: ast.RemoveNodes):
        from graphdsl.passes.remove_node import RemoveNodes

        return RemoveNodes(**bind(RemoveNodes, stmt.options, "`remove node`", fixed={"names": list(stmt.names)}))

    def _ReplaceNode(self, stmt: ast.ReplaceNode):
        from graphdsl.passes.replace_node import ReplaceNode

        return ReplaceNode(stmt.node, opcall.from_ast(stmt.call))

    def _AddNode(self, stmt: ast.AddNode):
        from graphdsl.passes.add_node import AddNode

        return AddNode(opcall.from_ast(stmt.call), list(stmt.outputs))

    def _Rename(self, stmt: ast.Rename):
        from graphdsl.passes.rename import RenameNode, RenameTensor

        cls = RenameTensor if stmt.kind == "tensor" else RenameNode
        return cls(stmt.old, stmt.new)

    def _SetTensor(self, stmt: ast.SetTensor):
        from graphdsl.passes.set_tensor import SetTensor

        kwargs: dict[str, Any] = {"kind": stmt.kind, "name": stmt.name}
        for prop in stmt.props:
            if prop.key in kwargs or (prop.key == "dim" and "dims" in kwargs and prop.value[0] in kwargs["dims"]):
                raise script_error("GDS116", f"`{prop.key}` is given twice", prop.span)
            if prop.key == "shape":
                kwargs["shape"] = list(prop.value)
            elif prop.key == "dtype":
                dtypes.onnx_dtype(prop.value)
                kwargs["dtype"] = str(prop.value)
            else:
                index, dim = prop.value
                kwargs.setdefault("dims", {})[index] = dim
        return SetTensor(**kwargs)

    def _SetNode(self, stmt: ast.SetNode):
        from graphdsl.passes.set_attributes import SetAttributes

        attrs: dict[str, object] = {}
        for a in stmt.assignments:
            if a.key in attrs:
                raise script_error("GDS116", f"attribute `{a.key}` is set twice", a.key.span)
            attrs[a.key] = _plain(evaluate(a.value))
        return SetAttributes(stmt.node, attrs)

    def _SetBatch(self, stmt: ast.SetBatch):
        from graphdsl.passes.dynamic_batch import DynamicBatch

        return DynamicBatch(stmt.dim)

    def _Convert(self, stmt: ast.Convert):
        from graphdsl.passes.convert_version import ConvertOpset, SetIRVersion

        return ConvertOpset(stmt.version) if stmt.target == "opset" else SetIRVersion(stmt.version)

    def _Verify(self, stmt: ast.Verify):
        from graphdsl.verify import VerifySettings

        self.pipeline.compare = stmt.compare
        self.pipeline.verify.update(bind(VerifySettings, stmt.options, "`verify`", base_dir=self.base_dir,
                                         fixed={"dims": {}}))
        for spec in stmt.shapes:
            self.pipeline.verify_shapes[spec.name] = list(spec.shape or ())
        self.pipeline.verify_span = stmt.span

    def _ApplyPass(self, stmt: ast.ApplyPass):
        from graphdsl.passes.apply_entry_point import builtin_passes, load_entry_point_passes

        if self.entry_points is None:  # loaded once per script, so a broken plugin is reported once
            self.entry_points = load_entry_point_passes(self.pipeline.warnings)
        registry = {name: e.cls for name, e in self.entry_points.items()} | builtin_passes()
        cls = registry.get(str(stmt.name))
        if cls is None:
            names = sorted(registry)
            raise script_error(UNKNOWN_PASS, f"no pass named `{stmt.name}`", stmt.name.span,
                               label=suggestion_label(stmt.name, names),
                               hint="passes come from graphdsl and from installed packages (entry point "
                                    "group `graphdsl.passes`): " + ", ".join(names))
        entry = self.entry_points.get(str(stmt.name))
        if entry is not None and entry.cls is cls:  # the report names the package a pass came from
            self.pipeline.origins[len(self.pipeline.passes)] = f"{entry.package} {entry.version}"
        return cls(**bind(cls, stmt.arguments, f"pass `{stmt.name}`", base_dir=self.base_dir))


def _plain(value: object) -> object:
    """Names used as attribute values are plain strings (`auto_pad = SAME_UPPER`)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Name) else value


__all__ = ["Pipeline", "compile", "GraphdslError"]
