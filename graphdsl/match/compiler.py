"""Rule statements -> compiled rules, with every mistake that can be found without a model reported.

Checked here, each with a span: unknown ops, domains and attributes in patterns and rewrites (against
every opset version, so `ReduceMean(x, axes=[-1])` is fine for models of any opset), input counts,
names in `where` and `rewrite` that the pattern does not bind (or binds in some alternatives only),
rewrite outputs that are not values the matched nodes compute, type errors in conditions, and patterns
that cannot be searched (not connected, or matching any value).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import onnx

from graphdsl import opschema
from graphdsl.check import ModelScope, attribute_list, type_name, value_fits
from graphdsl.diagnostics import Diagnostic, ScriptError, suggestion_label
from graphdsl.match import typecheck as tc
from graphdsl.match.expr import is_dtype_name
from graphdsl.match.ir import (
    ATTR,
    COMMUTATIVE,
    REST,
    VALUE,
    Alt,
    AttrTest,
    Branch,
    Pattern,
    PNode,
    Pred,
    RCall,
    RConst,
    RExpr,
    RRest,
    RStep,
    Rule,
    RVar,
    Slot,
)
from graphdsl.match.plan import build_programs, root_alternative
from graphdsl.match.view import norm_domain
from graphdsl.syntax import ast
from graphdsl.values import evaluate

BAD_TARGET = "GDS502"
BAD_PATTERN = "GDS505"
UNKNOWN_ATTRIBUTE = "GDS102"
BAD_ARITY = "GDS107"


def compile_rule(stmt: ast.Rule | ast.ReplaceRule, index: int,
                 custom_domains: set[str] = frozenset()) -> Rule:
    """Compile one `rule` or `replace` statement; raises ScriptError with every problem found."""
    if isinstance(stmt, ast.ReplaceRule):
        stmt = _as_rule(stmt)
    builder = _RuleBuilder(ModelScope(custom_domains=set(custom_domains)))
    rule = builder.rule(stmt, index)
    problems = builder.errors + builder.scope.diagnostics + builder.names.errors
    if problems:
        raise ScriptError(sorted(problems, key=lambda d: (d.span.line, d.span.column) if d.span else (0, 0)))
    return rule


def replace_rule_name(stmt: ast.ReplaceRule) -> str:
    """`replace` rules are named FILE:LINE (`fusions:12`), which `explain` accepts."""
    return f"{Path(stmt.span.path).stem}:{stmt.span.line}"


def _as_rule(stmt: ast.ReplaceRule) -> ast.Rule:
    from graphdsl.syntax.names import Name

    root_name = stmt.root or Name("__root__", stmt.pattern.span)
    root = ast.OutName(root_name, False, root_name.span)
    match = (ast.PatternBinding((root,), stmt.pattern, None, stmt.pattern.span),)
    rewrite = (ast.RewriteBinding((root,), stmt.replacement, stmt.replacement.span),)
    name = Name(replace_rule_name(stmt), stmt.span)
    return ast.Rule(name, 0, match, stmt.where, rewrite, stmt.span, stmt.span)


def _is_op(call: ast.Call) -> bool:
    """An op call (`Relu(x)`, `com.microsoft::Gelu(x)`), not a function (`sqrt(2)`)."""
    return bool(call.keywords or call.domain or call.optional or str(call.func)[:1].isupper())


@dataclass
class _RuleBuilder:
    scope: ModelScope
    errors: list[Diagnostic] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)
    nodes: list[PNode] = field(default_factory=list)
    alts: list = field(default_factory=list)
    names_to_slots: dict[str, int] = field(default_factory=dict)
    producers: dict[int, tuple] = field(default_factory=dict)
    seen: dict[str, list] = field(default_factory=dict)  # name -> contexts it appears in
    names: tc.Names = field(default_factory=lambda: tc.Names({}))

    def error(self, code: str, message: str, span, label: str = "", hint: str = "") -> None:
        self.errors.append(Diagnostic(code, message, span=span, label=label, hints=(hint,) if hint else ()))

    # --- the rule -----------------------------------------------------------------------------------

    def rule(self, stmt: ast.Rule, index: int) -> Rule:
        conditions = []
        for binding in stmt.match:
            self._binding(binding)
            if binding.where is not None:
                conditions.append(binding.where)
        if stmt.where is not None:
            conditions.append(stmt.where)
        self._name_kinds()
        preds = tuple(self._pred(c) for cond in conditions for c in _conjuncts(cond))
        pattern = Pattern(tuple(self.slots), tuple(self.nodes), tuple(self.alts),
                          tuple(self.names_to_slots.items()),
                          tuple(sorted(self.producers.items())), preds, tuple(sorted(self.names.maybe)))
        steps, replaced = _RewriteBuilder(self, pattern).build(stmt)
        programs = build_programs(pattern) if not self.errors else ()
        if not self.errors and not programs:
            self._unsearchable(pattern, stmt)
        return Rule(str(stmt.name), stmt.priority, index, pattern, steps, replaced, programs, stmt.header)

    def _unsearchable(self, pattern: Pattern, stmt: ast.Rule) -> None:
        if not pattern.mandatory() and root_alternative(pattern) is None:
            self.error(BAD_PATTERN, "the pattern can match any value", stmt.header,
                       hint="give it at least one op that must be present (not only `Op?(...)` or a name)")
        else:
            self.error(BAD_PATTERN, "the pattern's parts are not connected", stmt.header,
                       hint="every pattern node must share a value with the rest; match separate things in "
                            "separate rules")

    def _binding(self, binding: ast.PatternBinding) -> None:
        if binding.arrow:
            self._arrow_binding(binding)
            return
        (out,) = binding.outputs
        value = binding.value
        if not (isinstance(value, ast.Alternative) or isinstance(value, ast.Call) and _is_op(value)):
            self.error(BAD_PATTERN, f"`{out.name}` must be bound to an op call or an alternative", value.span,
                       label="not a pattern", hint="write the op that computes it: `y = Relu(x)`")
            self._produced(self._var(out.name, VALUE, None, out.span), ("node", -1, 0),
                           None)  # no knock-on errors
            if isinstance(value, ast.Ident):
                self._var(value.name, VALUE, None, value.span)
            return
        self._pattern(value, None, into=self._var(out.name, VALUE, None, out.span))

    def _arrow_binding(self, binding: ast.PatternBinding) -> None:
        call = binding.value
        if call.optional:
            self.error(BAD_PATTERN, "a node with named outputs cannot be optional", call.span)
            return
        outputs, out_rest = [], None
        for index, out in enumerate(binding.outputs):
            if out.rest and index != len(binding.outputs) - 1:
                self.error(BAD_PATTERN, "`rest...` must be the last output", out.span)
            elif out.rest:
                out_rest = self._var(out.name, REST, None, out.span)
            else:
                outputs.append(self._var(out.name, VALUE, None, out.span))
        self._node(call, None, tuple(outputs), out_rest=out_rest, exact=True)

    # --- patterns -----------------------------------------------------------------------------------

    def _pattern(self, expr: ast.Expr, ctx, into: int | None = None) -> int:
        """Compile a sub-pattern; returns the slot of the value it matches."""
        if isinstance(expr, ast.Call) and _is_op(expr):
            slot = into if into is not None else self._anonymous(expr.span)
            if expr.optional:
                return self._optional(expr, ctx, slot)
            self._node(expr, ctx, (slot,))
            return slot
        if isinstance(expr, ast.Alternative):
            return self._alternative(expr, ctx, into)
        if isinstance(expr, ast.Labelled):
            return self._labelled(expr, ctx)
        if into is not None:
            self.error(BAD_PATTERN, "a binding's value must be an op call or an alternative", expr.span)
            return into
        if isinstance(expr, ast.Ident):
            return self._var(expr.name, VALUE, ctx, expr.span)
        return self._literal(expr)

    def _labelled(self, expr: ast.Labelled, ctx) -> int:
        if isinstance(expr.value, (ast.Call, ast.Alternative)):
            return self._pattern(expr.value, ctx, into=self._var(expr.name, VALUE, ctx, expr.name.span))
        slot = self._literal(expr.value)
        if expr.name in self.names_to_slots:
            self.error(BAD_PATTERN,
                       f"`{expr.name}` is already a variable; a labelled constant needs a new name",
                       expr.name.span)
        else:
            self.slots[slot] = replace(self.slots[slot], name=str(expr.name))
            self.names_to_slots[str(expr.name)] = slot
            self.seen.setdefault(str(expr.name), []).append(ctx)
        return slot

    def _literal(self, expr: ast.Expr) -> int:
        if isinstance(expr, ast.Splat):
            self.error(BAD_PATTERN, "`xs...` can only stand for an op's remaining inputs", expr.span)
        elif isinstance(expr, (ast.Compare, ast.Approx, ast.Logical, ast.Not)):
            self.error(BAD_PATTERN, "a condition inside a pattern", expr.span,
                       hint="conditions go after `where`: `d = Div(x, c) where c ~= 1.4142`")
        else:
            try:
                value = evaluate(expr)
                if _numeric(value):
                    return self._new_slot("", VALUE, expr.span, literal=value)
                self.error(BAD_PATTERN, "a literal in a pattern must be a number or a list of numbers",
                           expr.span,
                           hint="quote strings only in attribute values: `Pad(x, mode=\"constant\")`")
            except ScriptError as e:
                self.errors.extend(e.diagnostics)
        return self._anonymous(expr.span)

    def _alternative(self, expr: ast.Alternative, ctx, into: int | None) -> int:
        slot = into if into is not None else self._anonymous(expr.span)
        alt_id = len(self.alts)
        self.alts.append(None)
        branches = []
        for index, branch in enumerate(expr.branches):
            if isinstance(branch, ast.Call) and _is_op(branch) and not branch.optional:
                var = self._anonymous(branch.span)
                self._node(branch, (alt_id, index), (var,))
            else:
                var = self._pattern(branch, (alt_id, index))
            branches.append(Branch(var))
        self.alts[alt_id] = Alt(alt_id, slot, tuple(branches), within=ctx, span=expr.span)
        self._produced(slot, ("alt", alt_id), expr.span)
        return slot

    def _optional(self, call: ast.Call, ctx, slot: int) -> int:
        """`Op?(x, ...)` is `Op(x, ...) | x`: the node may be absent, its first input passing through."""
        if not call.args or isinstance(call.args[0], ast.Splat):
            self.error(BAD_PATTERN,
                       f"`{call.func}?(...)` passes its first input through when absent; give it one",
                       call.span)
            return slot
        passed = self._pattern(call.args[0], ctx)  # there either way, so matched outside the alternative
        alt_id = len(self.alts)
        self.alts.append(None)
        var = self._anonymous(call.span)
        self._node(replace(call, optional=False), (alt_id, 0), (var,), first=passed)
        self.alts[alt_id] = Alt(alt_id, slot, (Branch(var), Branch(passed)), optional=True, within=ctx,
                                span=call.span)
        self._produced(slot, ("alt", alt_id), call.span)
        return slot

    def _node(self, call: ast.Call, ctx, outputs: tuple[int, ...], out_rest: int | None = None,
              exact: bool = False, first: int | None = None) -> int:
        op, domain = str(call.func), norm_domain(call.domain)
        infos = self._schemas(op, domain, call)
        attrs = self._attributes(call, infos, ctx)
        inputs, rest, rest_at = [], None, 0
        for position, arg in enumerate(call.args):
            if isinstance(arg, ast.Splat):
                if rest is not None:
                    self.error(BAD_PATTERN, "one `xs...` per node", arg.span)
                rest, rest_at = self._var(arg.name, REST, ctx, arg.span), len(inputs)
            else:
                inputs.append(first if position == 0 and first is not None else self._pattern(arg, ctx))
        self._check_arity(call, infos, len(inputs), rest is not None)
        pid = len(self.nodes)
        self.nodes.append(PNode(pid, op, domain, tuple(inputs), outputs, attrs, rest, rest_at, out_rest,
                                exact,
                                op in COMMUTATIVE and domain == "", ctx, call.span))
        for index, slot in enumerate(outputs):
            self._produced(slot, ("node", pid, index), call.span)
        return pid

    def _schemas(self, op: str, domain: str, call: ast.Call) -> list:
        infos = opschema.all_versions(op, domain)
        if not infos:
            self.scope.schema(op, domain, call.func.span or call.span)  # reports unknown ops and domains
        return infos

    def _check_arity(self, call: ast.Call, infos: list, count: int, variadic: bool) -> None:
        if not infos:
            return
        low, high = min(i.min_input for i in infos), max(i.max_input for i in infos)
        if count < low and not variadic or count > high:
            want = f"{low}" if low == high else f"{low} to {high}" if high < 1000 else f"at least {low}"
            self.error(BAD_ARITY, f"`{call.func}` takes {want} inputs, the pattern gives {count}", call.span)

    def _attributes(self, call: ast.Call, infos: list, ctx) -> tuple[AttrTest, ...]:
        types = {name: t for info in infos for name, t in info.attributes.items()}
        tests, given = [], set()
        for kw in call.keywords:
            name = str(kw.key)
            if name in given:
                self.error("GDS116", f"attribute `{name}` is given twice", kw.key.span)
            given.add(name)
            if infos and name not in types:
                self.error(UNKNOWN_ATTRIBUTE, f"op `{call.func}` has no attribute `{name}`", kw.key.span,
                           label=suggestion_label(name, types), hint=attribute_list(infos[-1]))
                continue
            tests.append(self._attribute(name, kw, types.get(name), ctx))
        return tuple(tests)

    def _attribute(self, name: str, kw: ast.Assignment, attr_type: int | None, ctx) -> AttrTest:
        value = kw.value
        if isinstance(value, ast.Ident):
            if value.name == "_":
                return AttrTest(name, self._new_slot("", ATTR, value.span), span=kw.span)
            if is_dtype_name(value.name) and attr_type == onnx.AttributeProto.INT:
                from graphdsl import dtypes

                return AttrTest(name, None, dtypes.onnx_dtype(value.name), kw.span)
            return AttrTest(name, self._var(value.name, ATTR, ctx, value.span), span=kw.span)
        try:
            literal = _plain(evaluate(value))
        except ScriptError as e:
            self.errors.extend(e.diagnostics)
            return AttrTest(name, None, None, kw.span)
        if attr_type is not None and not value_fits(literal, attr_type):
            self.error("GDS108", f"attribute `{name}` takes {type_name(attr_type)}, got {literal!r}",
                       value.span)
        return AttrTest(name, None, literal, kw.span)

    # --- variables ----------------------------------------------------------------------------------

    def _new_slot(self, name: str, kind: str, span, literal: object = None) -> int:
        slot = Slot(len(self.slots), name, kind, literal, literal is not None, span)
        self.slots.append(slot)
        return slot.id

    def _anonymous(self, span) -> int:
        return self._new_slot("", VALUE, span)

    def _var(self, name: str, kind: str, ctx, span) -> int:
        if name == "_":
            return self._new_slot("", kind, span)
        self.seen.setdefault(name, []).append(ctx)
        slot = self.names_to_slots.get(name)
        if slot is None:
            slot = self._new_slot(name, kind, span)
            self.names_to_slots[name] = slot
        elif self.slots[slot].kind != kind:
            self.error(BAD_PATTERN,
                       f"`{name}` is used as {_KIND[self.slots[slot].kind]} and as {_KIND[kind]}",
                       span, hint="use a different name for each")
        return slot

    def _produced(self, slot: int, producer: tuple, span) -> None:
        if slot in self.producers:
            name = self.slots[slot].name or "this value"
            self.error(BAD_PATTERN, f"`{name}` is computed by two pattern nodes", span,
                       hint="each value has one producer; to match two nodes, give them different names")
            return
        self.producers[slot] = producer

    def _name_kinds(self) -> None:
        kinds = {VALUE: "value", REST: "values", ATTR: "any"}
        for name, slot in self.names_to_slots.items():
            self.names.kinds[name] = kinds[self.slots[slot].kind]
        for alt in self.alts:
            if alt is not None and self.slots[alt.slot].name:
                self.names.alternatives.add(self.slots[alt.slot].name)
                if alt.optional:
                    self.names.optional.add(self.slots[alt.slot].name)
        self.names.maybe = {n for n in self.names_to_slots if not self._certain(n, None)}

    def _certain(self, name: str, ctx) -> bool:
        """Whether `name` is bound whenever context `ctx` (None, or an alternative's branch) matched."""
        if ctx in self.seen.get(name, ()):
            return True
        return any(all(self._certain(name, (alt.id, b)) for b in range(len(alt.branches)))
                   for alt in self.alts if alt is not None and alt.within == ctx)

    def _pred(self, expr: ast.Expr) -> Pred:
        tc.condition(expr, self.names)
        names = tuple(n for n in tc.names_in(expr) if n in self.names_to_slots)
        return Pred(expr, names, expr.span)


class _RewriteBuilder:
    """The `rewrite` block: targets that are matched values, locals that are used, calls that are ops."""

    def __init__(self, rule: _RuleBuilder, pattern: Pattern):
        self.rule, self.pattern = rule, pattern
        self.locals: dict[str, ast.OutName] = {}
        self.used: set[str] = set()

    def build(self, stmt: ast.Rule) -> tuple[tuple[RStep, ...], tuple[str, ...]]:
        steps, replaced = [], []
        for binding in stmt.rewrite:
            value = self._value(binding)
            self.used.update(n for n in tc.names_in(binding.value) if n in self.locals)
            targets = tuple(str(o.name) for o in binding.outputs)
            for out in binding.outputs:
                self._target(out, replaced)
            if isinstance(value, RConst) and targets[0] in self.locals:
                self.rule.names.kinds[targets[0]] = "num"  # a computed constant later lines may use
            steps.append(RStep(targets, value, binding.span))
        for name, out in self.locals.items():
            if name not in self.used:
                self.rule.error(BAD_TARGET,
                                f"`{name}` is not a value the pattern matched, and nothing reads it",
                                out.span, label="neither replaced nor used",
                                hint="a rewrite gives new values to matched values (`y = Gelu(x)` where the "
                                     "pattern binds `y`); other names are intermediate results")
        if not replaced and stmt.rewrite and not any(e.code == BAD_TARGET for e in self.rule.errors):
            self.rule.error(BAD_TARGET, "the rewrite replaces no matched value", stmt.rewrite[0].span)
        return tuple(steps), tuple(replaced)

    def _value(self, binding: ast.RewriteBinding) -> RExpr:
        value = binding.value
        if binding.arrow:
            if any(o.rest for o in binding.outputs):
                self.rule.error(BAD_TARGET, "a rewrite names each output it writes (no `rest...`)",
                                binding.outputs[-1].span)
            return self._call(value)
        if isinstance(value, ast.Call) and _is_op(value) or isinstance(value, ast.Ident):
            return self._input(value)
        return self._const(value)

    def _target(self, out: ast.OutName, replaced: list[str]) -> None:
        name = str(out.name)
        if name == "_":
            return
        slot = self.pattern.slot_of(name)
        if slot is None:
            if name in self.locals:
                self.rule.error(BAD_TARGET, f"`{name}` is given a value twice", out.span)
            self.locals[name] = out
            return
        if self.pattern.slots[slot].kind != VALUE or slot not in dict(self.pattern.producers):
            self.rule.error(BAD_TARGET, f"`{name}` is an input of the pattern, not a value its nodes compute",
                            out.span, label="only computed values can be replaced",
                            hint="replace the value the matched nodes produce, e.g. the pattern's root")
        elif name in self.rule.names.maybe:
            self.rule.error(tc.UNBOUND, f"`{name}` is matched in some alternatives only", out.span)
        elif name in replaced:
            self.rule.error(BAD_TARGET, f"`{name}` is given a value twice", out.span)
        else:
            replaced.append(name)

    def _call(self, call: ast.Expr) -> RCall:
        if not isinstance(call, ast.Call) or not _is_op(call) or call.optional:
            self.rule.error(BAD_TARGET, "`... -> outputs` needs an op call", call.span)
            return RCall("Identity", "", ())
        op, domain = str(call.func), norm_domain(call.domain)
        infos = opschema.all_versions(op, domain)
        if not infos:
            self.rule.scope.schema(op, domain, call.func.span or call.span)
        inputs = tuple(self._input(a) for a in call.args)
        attrs = tuple(self._attr(kw, infos, call) for kw in call.keywords)
        self.rule._check_arity(call, infos, sum(1 for i in inputs if not isinstance(i, RRest)),
                               any(isinstance(i, RRest) for i in inputs))
        return RCall(op, domain, inputs, attrs, call.span)

    def _input(self, arg: ast.Expr) -> RExpr:
        if isinstance(arg, ast.Call) and _is_op(arg):
            return self._call(arg)
        if isinstance(arg, ast.Splat):
            if self.rule.names.kinds.get(str(arg.name)) != "values":
                self.rule.error(tc.TYPE_ERROR, f"`{arg.name}...` needs a `{arg.name}...` in the pattern",
                                arg.span)
            return RRest(str(arg.name), arg.span)
        if isinstance(arg, ast.Ident) and arg.name in self.locals:
            self.used.add(arg.name)
            return RVar(arg.name, arg.span)
        if isinstance(arg, ast.Ident) and self.rule.names.kinds.get(arg.name) == "value":
            tc.type_of(arg, self.rule.names)  # reports names bound in some alternatives only
            return RVar(arg.name, arg.span)
        return self._const(arg)

    def _const(self, expr: ast.Expr) -> RConst:
        tc.expect(expr, self.rule.names, tc.NUMERIC | {"list"}, "a new constant")
        return RConst(expr, expr.span)

    def _attr(self, kw: ast.Assignment, infos: list, call: ast.Call) -> tuple[str, ast.Expr]:
        name = str(kw.key)
        types = {n: t for info in infos for n, t in info.attributes.items()}
        if infos and name not in types:
            self.rule.error(UNKNOWN_ATTRIBUTE, f"op `{call.func}` has no attribute `{name}`", kw.key.span,
                            label=suggestion_label(name, types), hint=attribute_list(infos[-1]))
        elif not _word(kw.value, types.get(name), self.rule.names):
            tc.expect(kw.value, self.rule.names, tc.NUMERIC | {"list", "str"}, f"attribute `{name}`")
        return name, kw.value


def _word(value: ast.Expr, attr_type: int | None, names: tc.Names) -> bool:
    """A bare word that is a string attribute value (`mode=constant`) or a dtype (`to=float16`)."""
    if not isinstance(value, ast.Ident) or value.name in names.kinds:
        return False
    if attr_type == onnx.AttributeProto.INT:
        return is_dtype_name(value.name)
    return attr_type in (None, onnx.AttributeProto.STRING)


def _conjuncts(expr: ast.Expr) -> list[ast.Expr]:
    """`a and b and c` -> [a, b, c], so each part can run as soon as its names are bound."""
    out, stack = [], [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Logical) and node.op == "and":
            stack.extend((node.right, node.left))
        else:
            out.append(node)
    return out


def _numeric(value: object) -> bool:
    if isinstance(value, list):
        return all(_numeric(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain(value: object) -> object:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, str) else value


_KIND = {VALUE: "a value", REST: "a list of values (`xs...`)", ATTR: "an attribute"}
