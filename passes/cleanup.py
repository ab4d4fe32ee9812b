"""`cleanup`: drop nodes, tensors and functions that no graph output depends on (graphsurgeon's cleanup)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import onnx_graphsurgeon as gs

from graphdsl.diagnostics import Span
from graphdsl.pipeline import Pass, PassContext, PassResult

if TYPE_CHECKING:
    from graphdsl.check import ModelScope


@dataclass
class Cleanup(Pass):
    """Remove what does not contribute to any graph output.

    `y = Relu(x); dead = Neg(x)` with output y -> `y = Relu(x)`

    Args:
        remove_unused_graph_inputs: also drop graph inputs nothing reads (changes the model's interface).
        remove_unused_functions: also drop model-local functions no node calls, directly or through
            other functions.
    """

    name = "cleanup"
    remove_unused_graph_inputs: bool = False
    remove_unused_functions: bool = True
    span: Span | None = None

    def check(self, scope: "ModelScope") -> None:
        # which nodes are dead depends on edges the scope does not model
        scope.uncertain = True

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        before = _sizes(graph)
        graph.cleanup(remove_unused_graph_inputs=self.remove_unused_graph_inputs)
        if self.remove_unused_functions:
            graph.functions = [f for f in graph.functions if f.unique_id in used_functions(graph)]
        after = _sizes(graph)
        counts = {key: before[key] - after[key] for key in before}
        return PassResult(changed=any(counts.values()), counts={k: v for k, v in counts.items() if v})


def _sizes(graph: gs.Graph) -> dict[str, int]:
    return {"nodes_removed": len(graph.nodes), "tensors_removed": len(graph.tensors()),
            "inputs_removed": len(graph.inputs), "functions_removed": len(graph.functions)}


def used_functions(graph: gs.Graph) -> set[tuple[str, str]]:
    """(domain, name) of every local function the graph calls, directly or through other functions."""
    by_id = {f.unique_id: f for f in graph.functions}
    used: set[tuple[str, str]] = set()
    pending = list(_calls(graph.nodes, graph, by_id))
    while pending:
        fid = pending.pop()
        if fid not in used:
            used.add(fid)
            pending.extend(_calls(by_id[fid].nodes, by_id[fid], by_id))
    return used


def _calls(nodes: Iterable[gs.Node], owner: gs.Graph, by_id: dict) -> list[tuple[str, str]]:
    everything = list(nodes) + [n for sub in owner.subgraphs(recursive=True) for n in sub.nodes]
    return [(n.domain or "", n.op) for n in everything if (n.domain or "", n.op) in by_id]


__all__ = ["Cleanup", "used_functions"]
