"""Rewriting one match: evaluate the rewrite (before anything changes), then edit the graph.

`prepare` computes every attribute and new constant of the rewrite from the match and checks it can be
applied here (the ops exist at the model's opset, a graph output keeps its name); when it cannot, the
match is simply not applied and the reason is kept for `match`/`explain`. `apply` then edits:

- a replaced value `y` computed by new nodes keeps its tensor: the new node writes `y` itself, so its
  readers, a graph output of that name and subgraphs reading it from outer scope all stay connected;
- `y = x` makes y's readers read x (a graph output `y` makes x's producer write `y` instead);
- matched nodes are removed only when nothing reads their outputs any more;
- new nodes take the position of the first replaced value's producer, so the order stays topological
  without a sort (the driver sorts only when a multi-output rewrite could not be placed that way).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from graphdsl import dtypes
from graphdsl.match import edit
from graphdsl.match import expr as ex
from graphdsl.match.consts import FOLDABLE
from graphdsl.match.ir import RCall, RConst, RExpr, RRest, Rule, RVar
from graphdsl.match.steps import Matcher
from graphdsl.match.view import ATTRIBUTE_INPUTS, GraphView, ModelState
from graphdsl.opcall import Const, NodeBuilder, OpCall
from graphdsl.opschema import MS_DOMAIN, as_schema_type
from graphdsl.syntax.names import Name

_AT = onnx.AttributeProto


class Refused(Exception):
    """The match cannot be rewritten here; the message says why."""


@dataclass
class Prepared:
    """A match with its rewrite evaluated, ready to apply."""

    rule: Rule
    nodes: list  # the matched graph nodes
    tensors: dict[str, object]  # names the rewrite's op calls refer to -> tensors
    replaced: dict[str, object]  # replaced matched values by name -> their tensors
    steps: list = field(default_factory=list)  # (targets, OpCall | tensor | array) per rewrite line


def missing_ops(rule: Rule, view: GraphView) -> str | None:
    """Why the rule's rewrite cannot be built at this graph's opsets, or None."""
    for call in _calls(rule):
        if call.domain not in ("", MS_DOMAIN):
            continue  # custom domains (declared with `domain`) have no schema to consult
        if view.schema(_qualified(call)) is None:
            have = f"{call.domain or 'ai.onnx'} {view.opsets.get(call.domain, 'none')}"
            return f"`{_qualified(call)}` does not exist at the model's opset ({have})"
    return None


def _calls(rule: Rule):
    stack = [step.value for step in rule.rewrite]
    while stack:
        value = stack.pop()
        if isinstance(value, RCall):
            yield value
            stack.extend(value.inputs)


def _qualified(call: RCall) -> str:
    return f"{call.domain}::{call.op}" if call.domain else call.op


# --- prepare ----------------------------------------------------------------------------------------------


def prepare(rule: Rule, matcher: Matcher) -> Prepared:
    """Evaluate the rewrite for the match `matcher` holds; raises Refused."""
    view = matcher.view
    replaced = {name: matcher.vals[matcher.env.slots[name]] for name in rule.replaced}
    prepared = Prepared(rule, [n for n in matcher.nodes if n is not None], {}, replaced)
    matched = {id(n) for n in prepared.nodes}
    for name, tensor in replaced.items():
        if not tensor.inputs or id(tensor.inputs[0]) not in matched:  # `c = Cast?(x)` without the Cast
            raise Refused(f"`{name}` is not computed by a matched node here (an optional node is absent)")
    context = _Context(matcher, prepared)
    for step in rule.rewrite:
        value = context.value(step.value, step.targets)
        prepared.steps.append((step.targets, value))
        _check_target(step.targets, value, context, view)
    return prepared


class _Context:
    """Evaluates rewrite expressions against one match."""

    def __init__(self, matcher: Matcher, prepared: Prepared):
        self.m, self.prepared = matcher, prepared
        self.keys = itertools.count()
        self.env = _RewriteEnv(matcher.env)

    def tensor(self, name: str):
        return self.m.env.lookup(name).tensor

    def value(self, value: RExpr, targets: tuple[str, ...]) -> object:
        if isinstance(value, RCall):
            return self.call(value)
        if isinstance(value, RVar):
            if value.name in self.m.env.slots:
                return self.tensor(value.name)
            if value.name in self.env.locals:
                return self.env.locals[value.name]
            raise Refused(f"`{targets[0]} = {value.name}`: a new node's value cannot be renamed")
        array = self.array(value, None)
        if targets[0] not in self.m.env.slots:
            self.env.locals[targets[0]] = array  # an intermediate constant later lines compute with
        return array

    def call(self, call: RCall) -> OpCall:
        inputs: list = []
        for arg in call.inputs:
            inputs.extend(self.operands(arg))
        if any(isinstance(i, RConst) for i in inputs):
            dtype = self._dtype(self._tensors(inputs))
            inputs = [Const(self.array(i, dtype)) if isinstance(i, RConst) else i for i in inputs]
        attrs = {Name(name): self.attribute(call, name, expr) for name, expr in call.attrs}
        made = OpCall(call.op, call.domain, tuple(inputs), attrs, call.span)
        return _attributes_as_inputs(made, self.m.view)

    def operands(self, arg: RExpr) -> list:
        if isinstance(arg, RCall):
            return [self.call(arg)]
        if isinstance(arg, RRest):
            return [self.key(t) for t in self.m.env.lookup(arg.name)]
        if isinstance(arg, RVar):
            if arg.name in self.m.env.slots:
                return [self.key(self.m.env.lookup(arg.name))]
            if arg.name in self.env.locals:
                return [Const(self.env.locals[arg.name])]
            return [Name(f"%{arg.name}")]  # a local node output: its tensor exists once its line is built
        return [arg]  # an RConst: typed once the call's tensor inputs are known

    def key(self, ref: ex.Ref) -> Name:
        key = Name(f"#{next(self.keys)}")
        self.prepared.tensors[key] = ref.tensor
        return key

    def _dtype(self, tensors: list) -> str | None:
        """The element type new constants of a call take: its tensor inputs' (recorded ones first, since
        asking the view may run shape inference over the whole model)."""
        for tensor in tensors:
            value = self.m.view.const(tensor)
            if value is not None:
                return dtypes.dtype_name(value.dtype)
            if getattr(tensor, "dtype", None) is not None:
                return dtypes.dtype_name(tensor.dtype)
        return next((d for d in map(self.m.view.dtype, tensors) if d is not None), None)

    def _tensors(self, operands: list) -> list:
        known = self.prepared.tensors
        return [known[o] for o in operands if isinstance(o, str) and o in known]

    def array(self, const: RConst, dtype: str | None) -> np.ndarray:
        value = self._evaluate(const.expr)
        if isinstance(value, ex.Ref):
            value = ex.number(value, self.env)
        array = np.asarray(value)
        if array.dtype == object or array.dtype.kind not in "biuf":
            raise Refused(f"`{const.span.text}` is not a number or an array of numbers")
        if isinstance(value, np.ndarray):
            return array  # computed from matched constants: it already has their type
        if dtype is None:
            return array.astype(np.float32 if array.dtype.kind == "f" else np.int64)
        return array.astype(dtypes.numpy_dtype(dtype))

    def attribute(self, call: RCall, name: str, expr) -> object:
        info = self.m.view.schema(_qualified(call))
        attr_type = info.attributes.get(name) if info else None
        value = self._evaluate(expr)
        return to_attribute(value, attr_type, self.env)

    def _evaluate(self, expr) -> object:
        try:
            return ex.evaluate(expr, self.env)
        except ex.EvalFail as e:
            raise Refused(str(e)) from None


class _RewriteEnv:
    """The match's names plus the constants earlier rewrite lines computed."""

    def __init__(self, env):
        self.env = env
        self.locals: dict[str, np.ndarray] = {}

    def lookup(self, name: str) -> object:
        if name in self.locals:
            return self.locals[name]
        return self.env.lookup(name)

    def __getattr__(self, name: str):
        return getattr(self.env, name)


def to_attribute(value: object, attr_type: int | None, env) -> object:
    """A rule value as an attribute of the schema's type (constants as numbers, dtype names as codes)."""
    if isinstance(value, ex.Ref):
        value = ex.number(value, env)
    if isinstance(value, str) and attr_type == _AT.INT and ex.is_dtype_name(value):
        return dtypes.onnx_dtype(value)
    if attr_type == _AT.TENSOR:
        return gs.Constant("", np.asarray(value))
    if isinstance(value, (np.ndarray, np.generic)):
        value = value.reshape(-1).tolist() if attr_type in (_AT.INTS, _AT.FLOATS) else _scalar(value)
    if attr_type == _AT.INT and isinstance(value, float):
        if not value.is_integer():
            raise Refused(f"integer attribute value {value} is not a whole number")
        value = int(value)
    if attr_type == _AT.INTS and isinstance(value, list):
        value = [int(v) for v in value]
    return as_schema_type(value, attr_type)


def _scalar(value) -> object:
    array = np.asarray(value)
    if array.size != 1:
        return array.reshape(-1).tolist()
    return array.reshape(-1)[0].item()


def _attributes_as_inputs(call: OpCall, view: GraphView) -> OpCall:
    """`ReduceMean(x, axes=[-1])` at opset 18 is `ReduceMean(x, [-1])`: attributes the model's opset
    takes as inputs are passed as constant inputs."""
    info = view.schema(call.qualified)
    moved = {k: v for k, v in call.attrs.items()
             if (call.op, str(k)) in ATTRIBUTE_INPUTS and info is not None and str(k) not in info.attributes}
    if not moved:
        return call
    inputs = list(call.inputs)
    for name, value in moved.items():
        index = ATTRIBUTE_INPUTS[(call.op, str(name))]
        if len(inputs) != index:
            raise Refused(f"`{call.op}` needs `{name}` as input {index} at this opset")
        inputs.append(Const(np.asarray(value, dtype=np.int64).reshape(-1)))
    attrs = {k: v for k, v in call.attrs.items() if k not in moved}
    return OpCall(call.op, call.domain, tuple(inputs), attrs, call.span)


def _check_target(targets: tuple[str, ...], value: object, context: _Context, view: GraphView) -> None:
    """A graph output keeps its name: `y = x` needs x to be computed here, `y = constant` is refused."""
    for name in targets:
        if name not in context.m.env.slots:
            continue
        tensor = context.tensor(name)
        if id(tensor) not in view.state.outputs or isinstance(value, OpCall):
            continue
        if isinstance(value, np.ndarray):
            raise Refused(f"graph output `{tensor.name}` cannot become a constant")
        producer = value.inputs[0] if value.inputs else None
        if producer is None or id(producer) not in view.order or id(value) in view.state.outputs:
            raise Refused(f"graph output `{tensor.name}` would be renamed to `{value.name}` (a graph input, "
                          "constant or another output)")


# --- apply -------------------------------------------------------------------------------------------------


class Applier:
    """Applies prepared matches to the graphs of one model, naming new things uniquely."""

    def __init__(self, state: ModelState):
        self.state = state
        self._builder: NodeBuilder | None = None
        self.sequence = itertools.count()

    @property
    def builder(self) -> NodeBuilder:
        """One builder for the whole model, made at the first rewrite (collecting the names in use costs a
        walk over every tensor, which a rule set that matches nothing should not pay)."""
        if self._builder is None:
            self._builder = NodeBuilder(self.state.root, "", tensors={}, taken=self.state.tensor_names,
                                        node_names=self.state.node_names)
        return self._builder

    def apply(self, prepared: Prepared, view: GraphView) -> list:
        """Edit the graph; returns the new nodes (placed in `view.order`, added to `graph.nodes` later)."""
        if any(isinstance(value, OpCall) for _, value in prepared.steps):
            builder = self.builder
            builder.graph, builder.prefix = view.graph, prepared.rule.name
            builder.tensors = dict(prepared.tensors)
        replaced = prepared.replaced
        producers = [t.inputs[0] for t in replaced.values() if t.inputs and id(t.inputs[0]) in view.order]
        at = min(producers, key=lambda n: view.order[id(n)], default=None)
        base = view.order[id(at)] if at is not None else (float("inf"),)
        for targets, value in prepared.steps:
            if isinstance(value, OpCall) and value.domain not in ("", "ai.onnx"):
                # ONNX shape inference cannot see through the new op: keep the types known now
                for name in targets:
                    if name in replaced:
                        view.state.carry(replaced[name])
            for name in targets:
                tensor = replaced.get(name)
                if tensor is not None and (isinstance(value, OpCall) or _renames_output(tensor, value, view)):
                    self._release(tensor)
        new_nodes = []
        for targets, value in prepared.steps:
            new_nodes.extend(self._step(targets, value, replaced, view))
        _remove_dead(prepared.nodes, view)
        self._place(new_nodes, at, base, view, prepared.rule.name)
        return new_nodes

    def _release(self, tensor) -> None:
        """The old producer of a replaced value writes a fresh tensor instead (nothing reads it)."""
        producer = tensor.inputs[0] if tensor.inputs else None
        if producer is None:
            return
        index = next(i for i, t in enumerate(producer.outputs) if t is tensor)
        spare = gs.Variable(self.builder._unique(self.builder.taken, "replaced"))
        edit.set_output(producer, index, spare)

    def _step(self, targets, value, replaced: dict, view: GraphView) -> list:
        if isinstance(value, OpCall):
            outputs = [replaced[t] if t in replaced else self._local(t) for t in targets]
            nodes = self.builder.build(value, outputs)
            _import_domains(view, nodes)
            return nodes
        (target,) = targets
        if target not in replaced:
            return []  # an intermediate constant: it lives on in the values computed from it
        old = replaced[target]
        if isinstance(value, np.ndarray):
            edit.replace_uses(old, gs.Constant(self.builder._unique(self.builder.taken, "const"), value))
        elif _renames_output(old, value, view):
            _take_over(value, old)
        else:
            edit.replace_uses(old, value)
        return []

    def _local(self, name: str):
        tensor = gs.Variable(self.builder._unique(self.builder.taken, name))
        self.builder.tensors[f"%{name}"] = tensor
        return tensor

    def _place(self, nodes: list, at, base: tuple, view: GraphView, rule: str) -> None:
        """Put new nodes just before node `at` (the first replaced value's producer, whose key was
        `base`); flag the view when one of their inputs is computed later (it then sorts the graph)."""
        for node in nodes:
            key = base[:-1] + (base[-1] - 0.5, next(self.sequence))
            view.add(node, key, at)
            for tensor in node.inputs:
                producer = tensor.inputs[0] if tensor.inputs else None
                if producer is not None and view.order.get(id(producer), ()) >= key:
                    view.unsorted = view.unsorted or rule


def _renames_output(old, value, view: GraphView) -> bool:
    return not isinstance(value, (OpCall, np.ndarray)) and id(old) in view.state.outputs


def _take_over(source, output) -> None:
    """`y = x` for a graph output y: x's producer writes y, and x's readers read y."""
    producer = source.inputs[0]
    edit.replace_uses(source, output)
    index = next(i for i, t in enumerate(producer.outputs) if t is source)
    edit.set_output(producer, index, output)


def _remove_dead(nodes: list, view: GraphView) -> None:
    """Matched nodes nothing reads any more leave the graph, the last first (it may free the others);
    then `Constant` nodes and constant chains that only fed them."""
    order, feeders = view.order, []
    for node in sorted(nodes, key=lambda n: order[id(n)], reverse=True):
        if _unused(node, view):
            feeders.extend(t.inputs[0] for t in node.inputs if t.inputs)
            _remove(node, view)
    while feeders:
        node = feeders.pop()
        if id(node) not in order or len(node.outputs) != 1 or not _unused(node, view):
            continue  # removed already (a matched node), or still read
        if node.op == "Constant" or node.op in FOLDABLE and view.const(node.outputs[0]) is not None:
            feeders.extend(t.inputs[0] for t in node.inputs if t.inputs)
            _remove(node, view)


def _unused(node, view: GraphView) -> bool:
    outputs = view.state.outputs
    for tensor in node.outputs:
        if tensor.outputs or id(tensor) in outputs:
            return False
    return True


def _remove(node, view: GraphView) -> None:
    edit.detach(node)
    view.remove(node)


def _import_domains(view: GraphView, nodes: list) -> None:
    """A node of a domain the model does not import yet (`com.microsoft`) gets the import added (to a
    function too, when the node is in one)."""
    for node in nodes:
        domain = node.domain or ""
        if domain in view.opsets or domain in ("", "ai.onnx"):
            continue
        owners = [view.state.root] + ([view.graph] if isinstance(view.graph, gs.Function) else [])
        for owner in owners:
            imports = list(owner.import_domains or [onnx.helper.make_opsetid("", owner.opset)])
            if not any(d.domain == domain for d in imports):
                owner.import_domains = imports + [onnx.helper.make_opsetid(domain, 1)]
        view.imported(domain, 1)
