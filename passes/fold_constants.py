"""`fold constants`: evaluate what depends only on constants, with graphsurgeon and ONNX Runtime."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import onnx_graphsurgeon as gs

from graphdsl.diagnostics import Span, model_error
from graphdsl.passes.gs_log import captured_gs_log
from graphdsl.passes.toposort import is_sorted, sort_graph
from graphdsl.pipeline import Pass, PassContext, PassResult

if TYPE_CHECKING:
    from graphdsl.check import ModelScope

FOLD_WARNING = "GDS326"
FOLD_FAILED = "GDS327"


@dataclass
class FoldConstants(Pass):
    """Replace subexpressions of constants by their value, then drop the nodes that computed them.

    `Add(input, Add(Add(a, b), d))` with constants a, b, d -> `Add(input, e)` with e = a + b + d

    Args:
        size_threshold: do not fold tensors larger than this many bytes (e.g. a Tile of a constant);
            None folds everything.
        fold_shapes: also fold `Shape` (and what follows from it) where the input's shape is static.
        partitioning: when ONNX Runtime fails on part of the constant subgraph, keep folding the rest
            (graphsurgeon's "recursive" partitioning); without it one failure folds nothing.
        flatten_subgraphs: inline `If` branches whose condition folded to a constant.
    """

    name = "fold_constants"
    size_threshold: int | None = None
    fold_shapes: bool = True
    partitioning: bool = False
    flatten_subgraphs: bool = True
    span: Span | None = None

    def check(self, scope: "ModelScope") -> None:
        scope.uncertain = True  # which nodes fold is known only once ONNX Runtime has run them

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        before = len(graph.nodes)
        graph.cleanup()  # dead nodes first, so that the count below is what folding removed
        dead = before - len(graph.nodes)
        if not is_sorted(graph):  # graphsurgeon's folding walks nodes in order and needs them sorted
            sort_graph(graph, self.span)
        folding = len(graph.nodes)
        self._fold(graph, ctx)
        folded = folding - len(graph.nodes)
        counts = {k: v for k, v in (("folded", folded), ("dead_removed", dead)) if v}
        return PassResult(changed=bool(folded or dead), counts=counts)

    def _fold(self, graph: gs.Graph, ctx: PassContext) -> None:
        try:
            with captured_gs_log() as messages:
                graph.fold_constants(fold_shapes=self.fold_shapes, size_threshold=self.size_threshold,
                                     partitioning="recursive" if self.partitioning else None,
                                     flatten_subgraphs=self.flatten_subgraphs, error_ok=True)
                graph.cleanup()
        except Exception as e:  # noqa: BLE001 - folding exports the graph and runs it in ORT: any failure
            # there is the model's (an op ORT cannot run, an invalid graph), reported as such
            raise model_error(FOLD_FAILED, f"constant folding failed: {_first_line(e)}", span=self.span,
                              hint="`fold constants partitioning on` folds around the part that fails",
                              ) from None
        for message in messages:
            ctx.warn(FOLD_WARNING, f"constant folding: {_first_line(message)}",
                     hint="" if self.partitioning else "`partitioning on` folds around parts that fail")


def _first_line(message: object, limit: int = 400) -> str:
    """graphsurgeon's message on one line ("Inference failed ... Error was:" is followed by the error)."""
    text = " ".join(str(message).split()) or type(message).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["FoldConstants"]
