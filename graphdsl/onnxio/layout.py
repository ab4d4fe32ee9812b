"""A GraphProto's layout: the parsed proto without its big weights, and where each field lies.

The fast path hands protobuf's C parser one concatenation of the graph's bytes, big initializers
reduced to their headers. Protobuf refuses messages nested more than 100 levels deep, which a model
reaches at about 33 nested If bodies (each adds a node, an attribute and a graph); for those the
layered path parses every graph on its own, with its nodes' subgraphs cut out and laid out in turn.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx
from google.protobuf.message import DecodeError

from graphdsl.onnxio import wire

# Initializers smaller than this stay inside the parsed proto: splitting them saves nothing.
SPLIT_THRESHOLD = 256


@dataclass
class GraphLayout:
    """A parsed GraphProto and where its fields are in the source buffer.

    Attributes:
        proto: The parsed graph (in a layered parse, without its nodes).
        fields: The graph's fields as wire.scan returns them (None: the bytes are not in the source).
        initializers: For a split parse, per initializer: (field start, field end, raw start, raw end),
            the raw range None where the proto kept the data.
        nodes: The parsed nodes, when they are not proto.node (layered parse).
        subgraphs: Layered parse only: node index -> {attribute index -> GraphLayout}.
    """

    proto: onnx.GraphProto
    fields: list | None
    initializers: list | None = None
    nodes: list | None = None
    subgraphs: dict | None = None

    def node_protos(self):
        """The graph's NodeProtos, in order."""
        return self.nodes if self.nodes is not None else self.proto.node


def graph_layout(buf, start: int, end: int) -> GraphLayout:
    """Parse the GraphProto in buf[start:end] without copying its big initializers' raw_data."""
    fields = wire.scan(buf, start, end)
    pieces, initializers = _pieces(buf, fields, split=True, nodes=True)
    try:
        proto = onnx.GraphProto.FromString(b"".join(pieces))
    except DecodeError:
        return _layered(buf, fields)  # nested too deep for protobuf (or corrupt: it will fail there too)
    return GraphLayout(proto, fields, initializers)


def _pieces(buf, fields: list, split: bool, nodes: bool) -> tuple[list, list]:
    """Byte pieces of the graph for the parser (big initializers as headers only, nodes optional)."""
    pieces: list = []
    initializers: list = []
    run = None  # (start, end) of consecutive fields passed to the parser unchanged
    for number, kind, f_start, data, f_end in fields:
        cut = None
        if number == wire.GRAPH_INITIALIZER and kind == wire.LEN:
            cut = split_tensor(buf, data, f_end) if split and f_end - data >= SPLIT_THRESHOLD else None
            initializers.append((f_start, f_end, *(cut[1] if cut else (None, None))))
        elif number == wire.GRAPH_NODE and kind == wire.LEN and not nodes:
            cut = (b"", None)
        if cut is None:
            run = (run[0], f_end) if run else (f_start, f_end)
            continue
        if run:
            pieces.append(buf[run[0]:run[1]])
            run = None
        if cut[0]:
            pieces.append(wire.len_header(wire.GRAPH_INITIALIZER, len(cut[0])))
            pieces.append(cut[0])
    if run:
        pieces.append(buf[run[0]:run[1]])
    return pieces, initializers


def split_tensor(buf, start: int, end: int):
    """(header bytes, (raw start, raw end)) of the TensorProto in buf[start:end], or None without raw_data.

    The header is every field but raw_data; protobuf keeps the last of repeated raw_data fields, so
    the last one is the data, and all of them are left out of the header.
    """
    fields = wire.scan(buf, start, end)
    raws = [f for f in fields if f[0] == wire.TENSOR_RAW_DATA and f[1] == wire.LEN]
    if not raws:
        return None
    header = join(buf, [f for f in fields if not (f[0] == wire.TENSOR_RAW_DATA and f[1] == wire.LEN)])
    return header, (raws[-1][3], raws[-1][4])


def join(buf, fields) -> bytes:
    """The bytes of these fields (tags included), concatenated."""
    return b"".join(buf[f[2]:f[4]] for f in fields)


def _layered(buf, fields: list) -> GraphLayout:
    """Graph by graph, with a work list: as deep as the nesting goes, no recursion anywhere."""
    root, pending = _layer(buf, fields, split=True)
    work = [(root, pending)]
    while work:
        layout, pending = work.pop()
        layout.subgraphs = {}
        for node_index, attr_index, start, end in pending:
            sub, sub_pending = _layer(buf, wire.scan(buf, start, end), split=False)
            layout.subgraphs.setdefault(node_index, {})[attr_index] = sub
            work.append((sub, sub_pending))
    return root


def _layer(buf, fields: list, split: bool) -> tuple[GraphLayout, list]:
    """One graph parsed without its nodes' subgraphs; returns it and where those subgraphs are."""
    pieces, initializers = _pieces(buf, fields, split=split, nodes=False)
    proto = onnx.GraphProto.FromString(b"".join(pieces))
    nodes, pending = [], []
    node_fields = [f for f in fields if f[0] == wire.GRAPH_NODE and f[1] == wire.LEN]
    for index, f in enumerate(node_fields):
        data, graphs = _node_without_graphs(buf, f[3], f[4])
        nodes.append(onnx.NodeProto.FromString(data))
        pending += [(index, attr_index, start, end) for attr_index, (start, end) in graphs.items()]
    return GraphLayout(proto, fields, initializers if split else None, nodes), pending


def _node_without_graphs(buf, start: int, end: int) -> tuple[bytes, dict]:
    """A NodeProto's bytes with each GRAPH attribute's graph removed, and where those graphs were."""
    parts, graphs = [], {}
    attr_index = 0
    for f in wire.scan(buf, start, end):
        if f[0] != wire.NODE_ATTRIBUTE or f[1] != wire.LEN:
            parts.append(buf[f[2]:f[4]])
            continue
        attr = wire.scan(buf, f[3], f[4])
        kept = [a for a in attr if not (a[0] == wire.ATTRIBUTE_G and a[1] == wire.LEN)]
        if len(kept) != len(attr):
            g = [a for a in attr if a[0] == wire.ATTRIBUTE_G and a[1] == wire.LEN][-1]
            graphs[attr_index] = (g[3], g[4])
            payload = join(buf, kept)
            parts.append(wire.len_header(wire.NODE_ATTRIBUTE, len(payload)) + payload)
        else:
            parts.append(buf[f[2]:f[4]])
        attr_index += 1
    return b"".join(parts), graphs
