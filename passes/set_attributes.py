"""`set node relu_1 alpha = 0.02`: set a node's attributes, checked against its op's schema."""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import onnx
import onnx_graphsurgeon as gs

from graphdsl.check import ModelScope
from graphdsl.diagnostics import ScriptError, Span
from graphdsl.lookup import find_node
from graphdsl.opschema import OpInfo, as_schema_type, graph_opsets, schema_at
from graphdsl.pipeline import Pass, PassContext, PassResult

_AT = onnx.AttributeProto


@dataclass
class SetAttributes(Pass):
    """Set attributes of one node; names and value types must fit the op's schema at the model's opset.

    `LeakyRelu(x)` with alpha = 1 -> `LeakyRelu(x, alpha=1.0)` (an int becomes a float where the
    schema takes a float). Ops without a schema (custom domains) take any attribute.

    Args:
        node: the node's name.
        attrs: attribute name -> value (int, float, str, or a list of one of those).
    """

    name = "set_attributes"
    node: str
    attrs: dict[str, object]
    span: Span | None = None

    def check(self, scope: ModelScope) -> None:
        op = scope.require_node(self.node)
        info = schema_at(op, scope.opset) if op is not None else None
        for attr, value in self.attrs.items():
            if info is not None:
                scope.check_attribute(info, attr, value)

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        node = find_node(graph, self.node)
        info = schema_at(f"{node.domain}::{node.op}" if node.domain else node.op, graph_opsets(graph))
        if info is not None:
            self._require_valid(info)
        changed = 0
        for attr, value in self.attrs.items():
            value = as_schema_type(value, info.attributes.get(attr) if info else None)
            changed += int(_differs(node.attrs.get(str(attr), _MISSING), value))
            node.attrs[str(attr)] = value
        return PassResult(changed=bool(changed), counts={"attributes_set": changed} if changed else {})

    def _require_valid(self, info: OpInfo) -> None:
        # the same checks as before the run, for callers of the Python API that skipped `check`
        scope = ModelScope()
        for attr, value in self.attrs.items():
            scope.check_attribute(info, attr, value)
        if scope.diagnostics:
            raise ScriptError(scope.diagnostics)


_MISSING = object()


def _differs(old: object, new: object) -> bool:
    if isinstance(old, float) and isinstance(new, float):
        return np.float32(old) != np.float32(new)  # ONNX stores FLOAT attributes in single precision
    try:
        return bool(old != new)
    except ValueError:  # numpy arrays (tensor attributes) compare element-wise
        return True


__all__ = ["SetAttributes"]
