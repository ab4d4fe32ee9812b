"""Op calls written in a script (`LeakyRelu(x, alpha = 0.02)`) as data, checked and built into nodes.

An argument that is a name or a quoted string is a tensor of the graph; a number or a list of numbers is a
new constant (typed like the call's other tensor inputs, else float32 / int64); a nested call is another
node whose output feeds this one. Keyword arguments are attributes, checked against the op's schema.
The rule engine builds its rewrites from the same objects.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

import numpy as np

from graphdsl.diagnostics import Diagnostic, ScriptError, Span
from graphdsl.opschema import OpInfo, as_schema_type, graph_opsets, schema_at
from graphdsl.syntax import ast
from graphdsl.syntax.names import Name
from graphdsl.values import evaluate

if TYPE_CHECKING:
    import onnx_graphsurgeon as gs

    from graphdsl.check import ModelScope

BAD_ARITY = "GDS107"


@dataclass(frozen=True)
class Const:
    """A literal input: becomes a new initializer."""

    value: object
    span: Span | None = None


Operand = Union[Name, Const, "OpCall"]


@dataclass(frozen=True)
class OpCall:
    op: str
    domain: str
    inputs: tuple[Operand, ...]
    attrs: dict[str, object] = field(default_factory=dict)
    span: Span | None = None

    @property
    def qualified(self) -> str:
        return f"{self.domain}::{self.op}" if self.domain else self.op

    def tensor_names(self) -> list[Name]:
        """Every graph tensor the call reads, nested calls included."""
        out: list[Name] = []
        for operand in self.inputs:
            if isinstance(operand, OpCall):
                out.extend(operand.tensor_names())
            elif isinstance(operand, str):
                out.append(operand)
        return out


def from_ast(call: ast.Call) -> OpCall:
    """The op call a script wrote; attribute values are evaluated now."""
    if call.optional:
        from graphdsl.diagnostics import script_error
        from graphdsl.values import BAD_EXPRESSION

        raise script_error(BAD_EXPRESSION, f"`{call.func}?(...)` (an optional node) is only allowed in rule "
                           "patterns", call.span)
    inputs = tuple(_operand(a) for a in call.args)
    attrs = {Name(str(k.key), k.key.span): _plain(evaluate(k.value)) for k in call.keywords}
    return OpCall(str(call.func), call.domain, inputs, attrs, call.span)


def _operand(expr: ast.Expr) -> Operand:
    if isinstance(expr, ast.Call) and (expr.keywords or expr.domain or expr.func[:1].isupper()):
        return from_ast(expr)
    if isinstance(expr, ast.Ident):
        return Name(expr.name, expr.span)
    if isinstance(expr, ast.Literal) and isinstance(expr.value, str):
        return Name(expr.value, expr.span)
    return Const(evaluate(expr), expr.span)


def _plain(value: object) -> object:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Name) else value


def check(scope: "ModelScope", call: OpCall) -> None:
    """Static checks: the op exists at the scope's opset, attributes fit, arity, tensors exist."""
    info = scope.schema(call.op, call.domain, call.span)
    if info is not None:
        for attr, value in call.attrs.items():
            scope.check_attribute(info, attr, value)
        _check_arity(scope, info, call)
    for operand in call.inputs:
        if isinstance(operand, OpCall):
            check(scope, operand)
        elif isinstance(operand, str):
            scope.require_tensor(operand)


def _check_arity(scope: "ModelScope", info: OpInfo, call: OpCall) -> None:
    n = len(call.inputs)
    if info.min_input <= n <= info.max_input:
        return
    want = f"{info.min_input}" if info.min_input == info.max_input else f"{info.min_input} to {info.max_input}"
    if info.max_input > 1000:
        want = f"at least {info.min_input}"
    scope.error(Diagnostic(BAD_ARITY, f"`{call.op}` takes {want} inputs, got {n}", span=call.span,
                           hints=(f"see https://onnx.ai/onnx/operators/onnx__{call.op}.html",)))


class NodeBuilder:
    """Builds the nodes of op calls into a graph, with names that are unique in it."""

    def __init__(self, graph: "gs.Graph", prefix: str, tensors: dict | None = None, taken: set[str] | None = None,
                 node_names: set[str] | None = None):
        """Names are made unique against the graph's; a caller building many calls into one model (the rule
        engine) passes its own `tensors` (what names in calls refer to), `taken` and `node_names` (every
        name in use, subgraphs included), so the graph is walked once, not per call."""
        self.graph = graph
        self.prefix = prefix
        self.tensors = tensors if tensors is not None else {name: t for name, t in graph.tensors().items() if name}
        self.taken = taken if taken is not None else set(self.tensors)
        self.node_names = node_names if node_names is not None else {n.name for n in graph.nodes}
        self.counter = itertools.count()

    def build(self, call: OpCall, outputs: list["gs.Tensor"]) -> list["gs.Node"]:
        """Nodes computing `call` into `outputs` (nested calls first); the caller adds them to the graph."""
        import onnx_graphsurgeon as gs

        nodes: list[gs.Node] = []
        inputs = [self._input(operand, call, nodes) for operand in call.inputs]
        info = schema_at(call.qualified, graph_opsets(self.graph))
        attrs = {str(k): as_schema_type(v, info.attributes.get(str(k)) if info else None)
                 for k, v in call.attrs.items()}
        nodes.append(gs.Node(call.op, name=self._unique(self.node_names, call.op), attrs=attrs, inputs=inputs,
                             outputs=outputs, domain=call.domain or None))
        return nodes

    def _input(self, operand: Operand, call: OpCall, nodes: list) -> "gs.Tensor":
        import onnx_graphsurgeon as gs

        if isinstance(operand, OpCall):
            out = gs.Variable(self._unique(self.taken, f"{operand.op}_out"))
            self.tensors[out.name] = out
            nodes.extend(self.build(operand, [out]))
            return out
        if isinstance(operand, Const):
            array = np.asarray(operand.value, dtype=self._const_dtype(operand.value, call))
            const = gs.Constant(self._unique(self.taken, "const"), array)
            self.tensors[const.name] = const
            return const
        if operand not in self.tensors:
            from graphdsl.lookup import UNKNOWN_TENSOR, missing_name

            raise ScriptError(missing_name("tensor", operand, self.tensors, UNKNOWN_TENSOR))
        return self.tensors[operand]

    def _const_dtype(self, value: object, call: OpCall) -> np.dtype:
        """Like the call's first typed tensor input (`Add(x_fp16, 1.0)` adds an fp16 one), else by value.

        A numpy array keeps its own type: the rule engine computes constants in the type they must have.
        """
        if isinstance(value, (np.ndarray, np.generic)) and value.dtype != object:
            return value.dtype
        for operand in call.inputs:
            tensor = self.tensors.get(operand) if isinstance(operand, str) else None
            dtype = getattr(tensor, "dtype", None)
            if isinstance(dtype, int):  # newer graphsurgeon keeps ONNX's DataType numbers
                import onnx

                dtype = onnx.helper.tensor_dtype_to_np_dtype(dtype)
            if dtype is not None:
                return np.dtype(dtype)
        floats = any(isinstance(v, float) for v in np.ravel(np.asarray(value, dtype=object)))
        return np.dtype(np.float32 if floats else np.int64)

    def _unique(self, taken: set[str], base: str) -> str:
        name = next(n for n in (f"{self.prefix}/{base}_{i}" for i in self.counter) if n not in taken)
        taken.add(name)
        return name
