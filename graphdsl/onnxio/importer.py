"""Parsed ONNX protos -> a graphsurgeon Graph, with the semantics of gs.import_onnx, faster.

Differences from gs.import_onnx, each deliberate:
- objects are built field by field (see construct.py), attributes parsed by a small type switch;
- no recursion: subgraphs (If/Loop/Scan bodies) are queued and imported after their parent, each
  seeing the tensors of every enclosing graph by name, as gs's combined tensor maps do;
- attribute types gs skips with a warning are kept: TENSORS, GRAPHS, SPARSE_TENSOR(S) and
  TYPE_PROTO(S) hold their onnx protos, which onnx.helper.make_attribute (and so gs's exporter) accepts;
- every node, graph and value-info remembers where its bytes are in the source, so the writer can copy
  whatever no pass changed (see exporter.py); Constants get lazy values that view the mapped file.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import onnx
import onnx_graphsurgeon as gs
from onnx import AttributeProto, TensorProto
from onnx_graphsurgeon.ir.tensor import SparseValues
from onnx_graphsurgeon.util import misc

from graphdsl.diagnostics import model_error
from graphdsl.onnxio import construct, wire
from graphdsl.onnxio.codes import MODEL_CORRUPT
from graphdsl.onnxio.external import ExternalRef, parse_entries
from graphdsl.onnxio.layout import GraphLayout
from graphdsl.onnxio.source import ModelSource
from graphdsl.onnxio.values import (
    ExternalValues,
    MappedValues,
    ProtoValues,
    TensorValues,
    gs_dtype,
    raw_nbytes,
)
from graphdsl.onnxio.wire import text

log = logging.getLogger(__name__)


@dataclass
class GraphOrigin:
    """Where an imported graph's value-infos and extra fields lie in its source buffer.

    Attributes:
        source: The buffer's owner.
        value_infos: For each of "input", "output", "value_info": tensor name -> (start, payload start,
            end, signature) of its ValueInfoProto field, signature being (dtype, shape tuple, type) as
            imported.
        extra: Spans of the fields gs.Graph has no place for (quantization annotations, metadata_props,
            unknown fields), re-emitted as they were.
    """

    source: ModelSource
    value_infos: dict[str, dict[str, tuple]] = field(default_factory=dict)
    extra: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class _Job:
    """A graph waiting to be imported: its layout, the graph object to fill, the enclosing scopes."""

    layout: GraphLayout
    target: gs.Graph
    outer: list[dict]


_SCALAR = {AttributeProto.FLOAT: "f", AttributeProto.INT: "i"}
_LISTS = {AttributeProto.FLOATS: "floats", AttributeProto.INTS: "ints"}
_PROTOS = {AttributeProto.SPARSE_TENSOR: "sparse_tensor", AttributeProto.TYPE_PROTO: "tp"}
_PROTO_LISTS = {AttributeProto.TENSORS: "tensors", AttributeProto.GRAPHS: "graphs",
                AttributeProto.SPARSE_TENSORS: "sparse_tensors", AttributeProto.TYPE_PROTOS: "type_protos"}


class Importer:
    """Imports one model's graph, subgraphs and functions from parsed protos and their spans."""

    def __init__(self, source: ModelSource, opset: int | None, import_domains: list, where: str):
        self.source = source
        self.buffer = source.buffer
        self.opset = opset if opset is not None else gs.Graph.DEFAULT_OPSET
        self.import_domains = import_domains
        self.functions: list = []  # shared by every graph and function, as gs arranges
        self.where = where
        self.externals: list[ExternalValues] = []
        self._jobs: list[_Job] = []
        self._types: dict[bytes, tuple] = {}

    # graphs

    def import_graph(self, layout: GraphLayout, **fields) -> gs.Graph:
        """The main graph (and, through the job queue, every subgraph inside it)."""
        graph = self._new_graph(gs.Graph, layout.proto, opset=self.opset, import_domains=self.import_domains,
                                **fields)
        self._jobs.append(_Job(layout, graph, []))
        self._drain()
        return graph

    def _new_graph(self, cls, proto, **fields) -> gs.Graph:
        fields.setdefault("producer_name", "")
        fields.setdefault("producer_version", "")
        fields.setdefault("ir_version", None)
        return construct.graph(cls, self.functions, nodes=[], inputs=[], outputs=[], name=text(proto.name),
                               doc_string=text(proto.doc_string), **fields)

    def _drain(self) -> None:
        # A work list instead of recursion: 50 nested If bodies cost 50 queue entries, not stack frames.
        while self._jobs:
            self._fill(self._jobs.pop())

    def _fill(self, job: _Job) -> None:
        proto, fields = job.layout.proto, job.layout.fields
        spans = _spans_by_field(fields)
        local: dict = {}
        origin = GraphOrigin(self.source)
        self._initializers(job, spans.get(wire.GRAPH_INITIALIZER), local)
        self._value_infos(proto.value_info, spans.get(wire.GRAPH_VALUE_INFO), local, job.outer, origin)
        skip = {t.name for t in proto.initializer} | {t.values.name for t in proto.sparse_initializer}
        g = job.target
        g.inputs = [self._io_tensor(vi, local) for vi in proto.input if vi.name not in skip]
        g.outputs = [self._io_tensor(vi, local) for vi in proto.output]
        for number, key in ((wire.GRAPH_INPUT, "input"), (wire.GRAPH_OUTPUT, "output")):
            origin.value_infos[key] = self._vi_spans(getattr(proto, key), spans.get(number))
        g.nodes = self._nodes(job.layout.node_protos(), spans.get(wire.GRAPH_NODE), local, job.outer,
                              job.layout.subgraphs)
        origin.extra = _extra_spans(fields, _GRAPH_KNOWN) if fields is not None else []
        construct.set_origin(g, origin)

    def _initializers(self, job: _Job, spans, local: dict) -> None:
        """Constants for the graph's initializers, lazy, each remembering where in the file it was."""
        proto, raw = job.layout.proto, job.layout.initializers
        for i, tp in enumerate(proto.initializer):
            name = text(tp.name)
            if name in local or _lookup(job.outer, name) is not None:
                continue  # gs keeps the first (and an outer graph's) tensor of a name
            span = (spans[i][2], spans[i][4]) if spans else None
            if raw is not None and raw[i][2] is not None:
                values = self._mapped(tp, raw[i][2], raw[i][3], span)
            else:
                values = self.tensor_values(tp, span)
            home = (job.target, (self.source.id, span[0]) if span else None)
            local[name] = construct.constant(name, values, _data_location(tp), home)
        for sp in proto.sparse_initializer:
            name = text(sp.values.name)
            if name not in local and _lookup(job.outer, name) is None:
                values, location = SparseValues(sp), sp.values.data_location
                local[name] = construct.constant(name, values, location, (job.target, None))

    def _mapped(self, header: TensorProto, raw_start: int, raw_end: int, span) -> MappedValues:
        values = MappedValues(header, self.source, raw_start, raw_end, span)
        self._check_size(values, header)
        return values

    def tensor_values(self, proto: TensorProto, span=None) -> TensorValues:
        """Lazy values for a tensor the parsed proto holds whole (or that lives in an external file)."""
        if proto.data_location == TensorProto.EXTERNAL:
            location, offset, length = parse_entries(proto.external_data, proto.name, self.where)
            ref = ExternalRef(self.source.external(location, proto.name), offset, length)
            expected = raw_nbytes(proto.data_type, _count(proto, self.where))
            values = ExternalValues(proto, ref, expected)
            self.externals.append(values)
            return values
        values = ProtoValues(proto, (self.source, *span) if span else None)
        if proto.HasField("raw_data"):
            self._check_size(values, proto)
        return values

    def _check_size(self, values: TensorValues, header: TensorProto) -> None:
        expected = raw_nbytes(header.data_type, _count(header, self.where))
        if expected is not None and expected != values.nbytes:
            raise model_error(MODEL_CORRUPT, f"tensor `{header.name}` has {values.nbytes} bytes of data, but "
                              f"its shape {list(header.dims)} needs {expected}", location=self.where,
                              hint="the file is corrupted or was written by a broken exporter")

    # value infos

    def _value_infos(self, protos, spans, local: dict, outer: list, origin: GraphOrigin) -> None:
        """gs semantics: a later value_info fills in a dtype/shape an earlier tensor lacks."""
        for vi in protos:
            name = vi.name
            t = local.get(name)
            if t is None:
                if _lookup(outer, name) is None:
                    local[name] = self._variable(vi)
                continue
            if isinstance(t, gs.Variable):
                self._fill_type(t, vi)
        origin.value_infos["value_info"] = self._vi_spans(protos, spans)

    def _io_tensor(self, vi, local: dict):
        # Graph inputs and outputs never come from an enclosing graph (gs: check_outer_graph=False).
        t = local.get(vi.name)
        if t is None:
            t = local[vi.name] = self._variable(vi)
        elif isinstance(t, gs.Variable):  # a value_info came first: the declared I/O type fills its gaps
            self._fill_type(t, vi)
        return t

    def _fill_type(self, t: gs.Variable, vi) -> None:
        dtype, shape, _ = self._signature(vi)
        t.dtype = t.dtype or dtype
        t.shape = t.shape or (list(shape) if shape is not None else None)

    def _variable(self, vi) -> gs.Variable:
        dtype, shape, type_name = self._signature(vi)
        return construct.variable(text(vi.name), dtype, list(shape) if shape is not None else None, type_name)

    def _signature(self, vi) -> tuple:
        """(dtype, shape, type) as gs would import them; cached by the TypeProto's bytes."""
        key = vi.type.SerializeToString()
        sig = self._types.get(key)
        if sig is None:
            sig = self._types[key] = type_signature(vi.type) if key else (None, None, "tensor_type")
        return sig

    def _vi_spans(self, protos, spans) -> dict:
        if spans is None:
            return {}
        out = {}
        for vi, span in zip(protos, spans):
            out.setdefault(vi.name, (span[2], span[3], span[4], self._signature(vi)))
        return out

    # nodes

    def _nodes(self, protos, spans, local: dict, outer: list, subgraphs: dict | None = None) -> list:
        """The hot loop of an import: one iteration per node, so it avoids calls where it can."""
        nodes = []
        get = local.get
        make_node, make_var = construct.node, construct.variable
        source_id = self.source.id
        for i, p in enumerate(protos):
            # [:] first: upb slices a repeated field in C, twice as fast as iterating it from Python
            in_names = tuple(p.input[:])
            ins = []
            for name in in_names:
                t = get(name)
                if t is None:
                    t = self._missing(name, local, outer)
                ins.append(t)
            out_names = tuple(p.output[:])
            outs = []
            for name in out_names:
                t = get(name)
                if t is None:
                    t = make_var(text(name))
                    if name:
                        local[name] = t
                outs.append(t)
            attributes = p.attribute  # each access builds a new container: once is enough
            if attributes:
                span = spans[i] if spans is not None else None
                laid_out = subgraphs.get(i) if subgraphs else None
                attrs, snapshot = self._attributes(attributes, span, local, outer, laid_out)
            else:
                attrs, snapshot = {}, ()
            op, name = p.op_type, p.name
            if type(op) is not str or type(name) is not str:  # text() inlined: not UTF-8
                op, name = text(op), text(name)
            domain = text(p.domain) if p.HasField("domain") else None
            origin = None
            if spans is not None:
                span = spans[i]
                # Only strings, ints and tuples of them: the garbage collector stops tracking such tuples.
                origin = (source_id, span[2], span[4], op, name, domain, in_names, out_names, snapshot)
            nodes.append(make_node(op, name, attrs, ins, outs, domain, origin))
        return nodes

    def _missing(self, name: str, local: dict, outer: list):
        """A node input not defined in this graph: an enclosing graph's, an omitted optional, or new."""
        t = _lookup(outer, name)
        if t is not None:
            return t
        if not name:
            return construct.variable("")
        t = local[name] = construct.variable(text(name))
        return t

    def _attributes(self, protos, node_span, local: dict, outer: list,
                    laid_out: dict | None = None) -> tuple[dict, tuple]:
        """Attribute values by a type switch, and a snapshot the exporter compares them against.

        A snapshot entry is (name, type, index among the node's attributes, token): the token is the
        value itself for scalars, a tuple copy for lists, (name, values key) for tensors, None for what
        the exporter always re-encodes (graphs, protos). Tokens hold no mutable objects, so a pass that
        edits a list in place is still seen, and the snapshot stays invisible to the garbage collector.
        """
        # A plain dict, not gs's OrderedDict: the same order and API, and while it holds only numbers
        # and strings the garbage collector does not track it (most nodes' attributes are such).
        attrs = {}
        snapshot = []
        attr_spans = None
        for k, a in enumerate(protos):
            kind = a.type
            token = None
            if a.ref_attr_name:
                value = gs.Node.AttributeRef(a.ref_attr_name, misc.convert_from_onnx_attr_type(kind))
                token = ("ref", a.ref_attr_name)
            elif kind in _SCALAR:
                value = token = getattr(a, _SCALAR[kind])
            elif kind in _LISTS:
                value = list(getattr(a, _LISTS[kind]))
                token = tuple(value)
            elif kind == AttributeProto.STRING:
                value = token = _decode(a.s)
            elif kind == AttributeProto.STRINGS:
                value = [_decode(s) for s in a.strings]
                token = tuple(value)
            elif kind == AttributeProto.TENSOR:
                values = self.tensor_values(a.t)
                value = construct.constant(text(a.t.name), values, _data_location(a.t))
                token = (a.t.name, values.key)
            elif kind == AttributeProto.GRAPH and laid_out and k in laid_out:
                value = self._queue(laid_out[k], local, outer)
            elif kind == AttributeProto.GRAPH:
                if attr_spans is None and node_span is not None:
                    attr_spans = [f for f in wire.scan(self.buffer, node_span[3], node_span[4])
                                  if f[0] == wire.NODE_ATTRIBUTE and f[1] == wire.LEN]
                value = self._subgraph(a.g, attr_spans[k] if attr_spans else None, local, outer)
            elif kind in _PROTOS:
                value = getattr(a, _PROTOS[kind])
            elif kind in _PROTO_LISTS:
                value = list(getattr(a, _PROTO_LISTS[kind]))
            else:
                log.warning("attribute `%s` has undefined type %d: skipped, as graphsurgeon does",
                            a.name, kind)
                continue
            attrs[text(a.name)] = value
            snapshot.append((a.name, kind, k, token))
        return attrs, tuple(snapshot)

    def _subgraph(self, proto: onnx.GraphProto, attr_span, local: dict, outer: list) -> gs.Graph:
        fields = None
        if attr_span is not None:
            g_field = [f for f in wire.scan(self.buffer, attr_span[3], attr_span[4])
                       if f[0] == wire.ATTRIBUTE_G and f[1] == wire.LEN]
            if g_field:
                fields = wire.scan(self.buffer, g_field[-1][3], g_field[-1][4])
        return self._queue(GraphLayout(proto, fields), local, outer)

    def _queue(self, layout: GraphLayout, local: dict, outer: list) -> gs.Graph:
        """An empty subgraph object now (the attribute needs it); its contents once the parent is done."""
        graph = self._new_graph(gs.Graph, layout.proto, opset=self.opset, import_domains=self.import_domains)
        self._jobs.append(_Job(layout, graph, outer + [local]))
        return graph

    # functions

    def import_function(self, proto: onnx.FunctionProto, span) -> gs.Function:
        """A model-local function, as gs.import_onnx builds it (opset and domains of its own, if given)."""
        fields = wire.scan(self.buffer, span[3], span[4]) if span is not None else None
        opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
        local: dict = {}
        inputs = [self._function_io(name, local) for name in proto.input]
        outputs = [self._function_io(name, local) for name in proto.output]
        node_spans = _spans_by_field(fields).get(wire.FUNCTION_NODE) if fields is not None else None
        nodes = self._nodes(proto.node, node_spans, local, [])
        attrs: dict = {text(name): None for name in proto.attribute}
        if proto.attribute_proto:
            attrs.update(self._attributes(proto.attribute_proto, None, local, [])[0])
        domains = [opset_id(o) for o in proto.opset_import] or self.import_domains
        func = construct.graph(gs.Function, self.functions, nodes=nodes, inputs=inputs, outputs=outputs,
                               name=text(proto.name), doc_string=text(proto.doc_string),
                               opset=opset or self.opset, import_domains=domains, ir_version=None,
                               domain=text(proto.domain), attrs=attrs)
        construct.set_origin(func, GraphOrigin(self.source, extra=_extra_spans(fields, _FUNCTION_KNOWN)
                                               if fields is not None else []))
        self._drain()
        return func

    @staticmethod
    def _function_io(name: str, local: dict) -> gs.Variable:
        if name not in local:
            local[name] = construct.variable(text(name))
        return local[name]


# GraphProto: node, name, initializer, doc_string, input, output, value_info, sparse_initializer
_GRAPH_KNOWN = {1, 2, 5, 10, 11, 12, 13, 15}
# FunctionProto: name, input, output, attribute, node, doc_string, opset_import, domain, attribute_proto
_FUNCTION_KNOWN = {1, 4, 5, 6, 7, 8, 9, 10, 11}


def _spans_by_field(fields) -> dict[int, list]:
    """LEN fields grouped by number, in order (these align with the parsed proto's repeated fields)."""
    out: dict[int, list] = {}
    for f in fields or ():
        if f[1] == wire.LEN:
            out.setdefault(f[0], []).append(f)
    return out


def _extra_spans(fields, known: set) -> list[tuple[int, int]]:
    return [(f[2], f[4]) for f in fields if f[0] not in known]


def _lookup(outer: list, name: str):
    for scope in reversed(outer):
        t = scope.get(name)
        if t is not None:
            return t
    return None


def _decode(data: bytes):
    # gs decodes strings as UTF-8; bytes that are not UTF-8 stay bytes rather than failing the import.
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data


def _data_location(tp: TensorProto) -> int | None:
    return int(tp.data_location) if tp.HasField("data_location") else None


def _count(header: TensorProto, where: str) -> int:
    dims = header.dims
    if any(d < 0 for d in dims):
        raise model_error(MODEL_CORRUPT, f"tensor `{header.name}` has a negative dimension {list(dims)}",
                          location=where)
    return math.prod(dims)


def opset_id(o) -> onnx.OperatorSetIdProto:
    """A copy of an OperatorSetIdProto (the graph must not hold references into the parsed model);
    CopyFrom keeps whether the domain was set at all, so unchanged models serialize as they were."""
    text(o.domain)
    out = onnx.OperatorSetIdProto()
    out.CopyFrom(o)
    return out


def type_signature(tp: onnx.TypeProto) -> tuple:
    """(dtype, shape tuple or None, type name) of a TypeProto, as gs's importer derives them."""
    kind = tp.WhichOneof("value")
    if kind == "tensor_type":
        elem = tp.tensor_type.elem_type
        shape = None
        if tp.tensor_type.HasField("shape"):
            shape = tuple(_dim(d) for d in tp.tensor_type.shape.dim)
        return _elem_dtype(elem), shape, kind
    elem = {"sequence_type": lambda: tp.sequence_type.elem_type.tensor_type.elem_type,
            "opaque_type": lambda: tp.opaque_type,
            "map_type": lambda: tp.map_type.value_type,
            "optional_type": lambda: tp.optional_type.elem_type,
            "sparse_tensor_type": lambda: tp.sparse_tensor_type.elem_type}.get(kind)
    # Nested TypeProtos (optional, map) have no single element type: gs reports the message; so do we.
    value = elem() if elem else None
    return (_elem_dtype(value) if isinstance(value, int) else value), None, kind


def _dim(d):
    if d.HasField("dim_param"):
        return d.dim_param
    if d.HasField("dim_value"):
        return d.dim_value
    return None


def _elem_dtype(elem: int):
    try:
        return gs_dtype(elem)
    except KeyError:  # a type this onnx does not know: keep the number, as gs does for unsupported ones
        return elem
