"""`inline functions`: replace calls of model-local functions by the functions' bodies (onnx's inliner)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import onnx.inliner
import onnx_graphsurgeon as gs

from graphdsl.diagnostics import Span, model_error
from graphdsl.passes.naming import name_unnamed_nodes
from graphdsl.pipeline import Pass, PassContext, PassResult

if TYPE_CHECKING:
    from graphdsl.check import ModelScope

INLINE_FAILED = "GDS320"


@dataclass
class InlineFunctions(Pass):
    """Inline every call of a model-local function, then drop the functions; graph inputs/outputs stay.

    `y = local::Gelu(x)` with Gelu = { t = Div(x, c); ... } -> `t' = Div(x, c'); ...; y = ...`
    (inside If/Loop bodies too). TensorRT and some runtimes cannot run model-local functions.
    """

    name = "inline_functions"
    span: Span | None = None

    def check(self, scope: "ModelScope") -> None:
        scope.uncertain = True  # call nodes vanish and the bodies' nodes get generated names

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        if not graph.functions:
            return PassResult()
        calls = count_calls(graph)
        model = gs.export_onnx(graph)
        try:
            inlined = onnx.inliner.inline_local_functions(model)
        except Exception as e:  # noqa: BLE001 - the inliner reports invalid functions as bare C++ errors
            raise model_error(INLINE_FAILED, f"cannot inline the model's functions: {e}", span=self.span,
                              hint="check the functions with `onnx.checker`; a function calling itself "
                                   "cannot be inlined") from None
        new = gs.import_onnx(inlined)
        name_unnamed_nodes(new, "inlined")
        return PassResult(changed=True, graph=new,
                          counts={"calls_inlined": calls, "functions_removed": len(graph.functions)})


def count_calls(graph: gs.Graph) -> int:
    """Nodes of the graph and its subgraphs that call one of its local functions."""
    ids = {f.unique_id for f in graph.functions}
    nodes = list(graph.nodes) + [n for sub in graph.subgraphs(recursive=True) for n in sub.nodes]
    return sum(1 for n in nodes if (n.domain or "", n.op) in ids)


__all__ = ["InlineFunctions", "count_calls"]
