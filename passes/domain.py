"""`domain "com.example" 1`: declare a custom op domain and make sure the model imports it."""

from __future__ import annotations

from dataclasses import dataclass

from graphdsl.diagnostics import Span
from graphdsl.pipeline import Pass, PassContext, PassResult


@dataclass
class DeclareDomain(Pass):
    """Ops of a declared domain have no schema, so checks let them through; the opset import is added.

    Args:
        domain: the domain name, e.g. `com.example.plugins`.
        version: the opset version imported for it.
    """

    name = "domain"
    domain: str
    version: int = 1
    span: Span | None = None

    def check(self, scope) -> None:
        scope.custom_domains.add(self.domain)
        scope.opset.setdefault(self.domain, self.version)

    def apply(self, graph, ctx: PassContext) -> PassResult:
        import onnx

        domains = list(graph.import_domains or [onnx.helper.make_opsetid("", graph.opset)])
        if any(d.domain == self.domain for d in domains):
            return PassResult()
        graph.import_domains = domains + [onnx.helper.make_opsetid(self.domain, self.version)]
        return PassResult(changed=True, notes=[f"imports domain {self.domain} version {self.version}"])
