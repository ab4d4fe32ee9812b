"""Semantic checks before anything runs: names the model lacks, ops and attributes against onnx.defs.

`ModelScope` is an abstract model: which tensor and node names exist, each node's op, and the opsets.
Each pass's `check(scope)` reads the names it needs and updates the scope with the names it creates,
renames or removes, so a typo in the last statement of a script is found before the first one runs.
After a pass whose effect on names cannot be known statically (constant folding, third-party passes)
the scope turns `uncertain`: missing names are then left for the pass to report when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

import onnx.defs

from graphdsl import opschema
from graphdsl.diagnostics import Diagnostic, Span, suggestion_label
from graphdsl.opschema import OpInfo
from graphdsl.lookup import UNKNOWN_NODE, UNKNOWN_TENSOR, missing_name
from graphdsl.syntax.names import span_of

if TYPE_CHECKING:
    import onnx_graphsurgeon as gs

UNKNOWN_OP = "GDS101"
UNKNOWN_ATTRIBUTE = "GDS102"
BAD_ATTRIBUTE_VALUE = "GDS108"
UNKNOWN_DOMAIN = "GDS112"


@dataclass
class ModelScope:
    """What the checker knows about the model at one point of the script."""

    tensors: set[str] | None = None  # None: no model known, so names cannot be checked
    nodes: dict[str, str] = field(default_factory=dict)  # node name -> "domain::Op" or "Op"
    opset: dict[str, int] = field(default_factory=lambda: {"": onnx.defs.onnx_opset_version()})
    custom_domains: set[str] = field(default_factory=set)  # declared by `domain` statements
    inputs: list[str] = field(default_factory=list)  # graph input names, in order
    outputs: list[str] = field(default_factory=list)
    uncertain: bool = False
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @classmethod
    def from_graph(cls, graph: "gs.Graph") -> "ModelScope":
        from graphdsl.graphwalk import tensor_names  # (graphsurgeon is imported only once a model is)

        opset = dict(graph.import_domains and {d.domain: d.version for d in graph.import_domains} or {})
        opset.setdefault("", graph.opset)
        return cls(
            tensors=tensor_names(graph),
            nodes={n.name: _qualified(n.domain, n.op) for n in graph.nodes if n.name},
            opset=opset,
            inputs=[t.name for t in graph.inputs],
            outputs=[t.name for t in graph.outputs],
        )

    @property
    def knows_model(self) -> bool:
        return self.tensors is not None

    def error(self, diagnostic: Diagnostic) -> None:
        self.diagnostics.append(diagnostic)

    # --- names -------------------------------------------------------------------------------------

    def require_tensor(self, name: str) -> bool:
        """Report a tensor name the model lacks (unless the scope cannot know); True if it exists."""
        if self.tensors is None or name in self.tensors:
            return True
        if not self.uncertain:
            self.error(missing_name("tensor", name, sorted(self.tensors), UNKNOWN_TENSOR))
        return False

    def require_node(self, name: str) -> str | None:
        """The node's op (as `domain::Op` for non-default domains) or None, reporting a missing name."""
        if self.tensors is None:
            return None
        if name in self.nodes:
            return self.nodes[name]
        if not self.uncertain:
            self.error(missing_name("node", name, sorted(self.nodes), UNKNOWN_NODE))
        return None

    def rename_tensor(self, old: str, new: str) -> None:
        if self.tensors is not None and old in self.tensors:
            self.tensors.discard(old)
            self.tensors.add(new)

    def rename_node(self, old: str, new: str) -> None:
        if old in self.nodes:
            self.nodes[new] = self.nodes.pop(old)

    def remove_node(self, name: str) -> None:
        self.nodes.pop(name, None)

    def keep_only(self, tensors: Iterable[str]) -> None:
        """After `extract`: which tensors survive is known only once the graph is cut."""
        self.uncertain = True

    # --- ops and attributes ------------------------------------------------------------------------

    def schema(self, op: str, domain: str = "", span: Span | None = None) -> OpInfo | None:
        """The op's schema at the scope's opset for its domain; reports unknown ops and domains."""
        domain = "" if domain == "ai.onnx" else domain
        if domain in self.custom_domains:
            return None  # custom ops have no schema: ORT or TensorRT decide when they meet them
        if domain not in opschema.known_domains():
            self.error(Diagnostic(UNKNOWN_DOMAIN, f"unknown op domain `{domain}`", span=span,
                                  label=suggestion_label(domain, opschema.known_domains() | self.custom_domains),
                                  hints=(f'declare a custom domain with `domain "{domain}" 1`',)))
            return None
        version = self.opset.get(domain, onnx.defs.onnx_opset_version() if domain == "" else 1)
        info = opschema.lookup(op, domain, version)
        if info is not None:
            return info
        if opschema.exists_in_any_version(op, domain):
            since = opschema.first_version(op, domain)
            self.error(Diagnostic(UNKNOWN_OP, f"op `{op}` needs opset {since} of `{domain or 'ai.onnx'}`, "
                                  f"the model has {version}", span=span,
                                  hints=(f"convert the model first: `convert opset {since}`",)))
        else:
            self.error(Diagnostic(UNKNOWN_OP, f"unknown op `{op}`", span=span,
                                  label=suggestion_label(op, opschema.op_names(domain)),
                                  hints=(f"ops of `{domain or 'ai.onnx'}` are listed at "
                                         "https://onnx.ai/onnx/operators/",)))
        return None

    def check_attribute(self, schema: OpInfo, attr: str, value: object) -> None:
        """Report attribute names the op lacks and values of the wrong type."""
        if attr not in schema.attributes:
            self.error(Diagnostic(UNKNOWN_ATTRIBUTE, f"op `{schema.name}` has no attribute `{attr}`",
                                  span=span_of(attr), label=suggestion_label(attr, schema.attributes),
                                  hints=(attribute_list(schema),)))
            return
        expected = schema.attributes[attr]
        if not value_fits(value, expected):
            self.error(Diagnostic(BAD_ATTRIBUTE_VALUE,
                                  f"attribute `{attr}` of `{schema.name}` takes {type_name(expected)}, "
                                  f"got {value!r}", span=span_of(attr), hints=(attribute_list(schema),)))


def scope_for(model: object) -> ModelScope:
    """The scope of a model given as a LoadedModel (anything with `.graph`), a gs.Graph, or None."""
    import onnx_graphsurgeon as gs

    if model is None:
        return ModelScope()
    # a gs.Graph answers any attribute lookup (its op registry), so test the type, not `.graph`
    return ModelScope.from_graph(model if isinstance(model, gs.Graph) else model.graph)


def _qualified(domain: str | None, op: str) -> str:
    return f"{domain}::{op}" if domain and domain != "ai.onnx" else op


def split_qualified(op: str) -> tuple[str, str]:
    """`com.microsoft::Gelu` -> (`com.microsoft`, `Gelu`); plain `Relu` -> (``, `Relu`)."""
    domain, _, name = op.rpartition("::")
    return domain, name


_AT = onnx.AttributeProto


def value_fits(value: object, expected: int) -> bool:
    """Whether a script value can become an attribute of the schema's type (ints widen to floats)."""
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    def is_num(v):
        return is_int(v) or isinstance(v, float)

    is_list = isinstance(value, (list, tuple))
    checks = {
        _AT.INT: lambda: is_int(value) or isinstance(value, bool),
        _AT.FLOAT: lambda: is_num(value),
        _AT.STRING: lambda: isinstance(value, str),
        _AT.INTS: lambda: is_list and all(is_int(v) for v in value),
        _AT.FLOATS: lambda: is_list and all(is_num(v) for v in value),
        _AT.STRINGS: lambda: is_list and all(isinstance(v, str) for v in value),
    }
    check = checks.get(expected)
    return check() if check else True  # tensors, graphs, types: left to onnx.checker at run time


def type_name(t: int) -> str:
    return {_AT.INT: "an integer", _AT.FLOAT: "a number", _AT.STRING: "a string", _AT.INTS: "a list of integers",
            _AT.FLOATS: "a list of numbers", _AT.STRINGS: "a list of strings"}.get(
        t, _AT.AttributeType.Name(t).lower())


def attribute_list(schema: OpInfo) -> str:
    attrs = ", ".join(f"{n} ({type_name(a)})" for n, a in sorted(schema.attributes.items()))
    return f"`{schema.name}` attributes: {attrs or 'none'}"
