"""Every node of a model, for `graphdsl inspect --nodes`: the names a script's statements refer to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import onnx_graphsurgeon as gs
from rich import box
from rich.table import Table


@dataclass(frozen=True)
class NodeRow:
    """One node: where it lives (`main`, or the path of the subgraph), its name, op, inputs and outputs."""

    graph: str
    name: str
    op: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """Keys: graph, name, op, domain, inputs, outputs."""
        return {"graph": self.graph, "name": self.name, "op": self.op, "domain": self.domain,
                "inputs": list(self.inputs), "outputs": list(self.outputs)}


class NodeTable:
    """The nodes of a graph in order, each subgraph's nodes right after the node that holds it.

    Args:
        graph: the graph to list (it is only read).
    """

    def __init__(self, graph: gs.Graph):
        self.rows: list[NodeRow] = []
        self._walk(graph, "main")

    def _walk(self, graph: gs.Graph, where: str) -> None:
        for node in graph.nodes:
            self.rows.append(NodeRow(where, node.name, node.op, node.domain or "",
                                     tuple(t.name for t in node.inputs), tuple(t.name for t in node.outputs)))
            for key, value in node.attrs.items():
                if isinstance(value, gs.Graph):
                    self._walk(value, f"{where}/{node.name or node.op}.{key}")

    def to_json(self) -> list[dict[str, Any]]:
        """One `NodeRow.to_json()` per node, in graph order."""
        return [row.to_json() for row in self.rows]

    def __rich_console__(self, console, options):
        from graphdsl.report.render import add_row

        table = Table(title=f"Nodes ({len(self.rows):,})", box=box.SIMPLE_HEAD, title_justify="left",
                      pad_edge=False)
        for name in ("#", "name", "op", "inputs", "outputs"):
            table.add_column(name, overflow="fold", justify="right" if name == "#" else "left")
        for index, row in enumerate(self.rows):
            op = f"{row.domain}::{row.op}" if row.domain and row.domain != "ai.onnx" else row.op
            name = row.name if row.graph == "main" else f"{row.graph}/{row.name}"
            add_row(table, str(index), name, op, ", ".join(row.inputs), ", ".join(row.outputs))
        yield table

    def _repr_mimebundle_(self, include=None, exclude=None):
        from graphdsl.report.render import mimebundle

        return mimebundle(self)
