"""Finding tensors and nodes of a graph by name, with errors that point at the script and suggest names.

Used by passes at run time (names can vanish during a pipeline, e.g. after constant folding) and by the
static checker before anything runs, so both report a misspelled name the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from graphdsl.diagnostics import Diagnostic, ModelError, did_you_mean
from graphdsl.syntax.names import span_of

if TYPE_CHECKING:
    import onnx_graphsurgeon as gs

UNKNOWN_TENSOR = "GDS104"
UNKNOWN_NODE = "GDS105"


def missing_name(kind: str, name: str, candidates: Iterable[str], code: str) -> Diagnostic:
    """The diagnostic for a tensor/node name the model does not have, with a close match if any."""
    candidates = list(candidates)
    best = did_you_mean(name, candidates, cutoff=0.5)
    label = f"did you mean `{best}`?" if best else f"no {kind} of this name in the model"
    hint = (f"list the model's {kind} names with `python -m graphdsl inspect MODEL`"
            if not best else f"{kind} names are case-sensitive and must match exactly")
    return Diagnostic(code, f"unknown {kind} `{name}`", span=span_of(name), label=label,
                      hints=(hint,), location="" if span_of(name) else f"{kind} '{name}'")


def tensor_map(graph: "gs.Graph") -> dict[str, "gs.Tensor"]:
    """Every named tensor of the graph (not of subgraphs), built once per lookup batch."""
    return {name: t for name, t in graph.tensors().items() if name}


def find_tensor(graph: "gs.Graph", name: str, tensors: dict[str, "gs.Tensor"] | None = None) -> "gs.Tensor":
    tensors = tensor_map(graph) if tensors is None else tensors
    try:
        return tensors[name]
    except KeyError:
        raise ModelError(missing_name("tensor", name, tensors, UNKNOWN_TENSOR)) from None


def find_node(graph: "gs.Graph", name: str) -> "gs.Node":
    for node in graph.nodes:
        if node.name == name:
            return node
    raise ModelError(missing_name("node", name, (n.name for n in graph.nodes if n.name), UNKNOWN_NODE))
