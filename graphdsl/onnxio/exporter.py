"""A graphsurgeon Graph -> the pieces of a serialized ModelProto (see chunks.py), without copying weights.

Semantics follow gs.export_onnx (which nodes, initializers and value-infos are written), with these
differences:
- whatever no pass changed is copied from the source as it was: a node whose op, name, domain,
  inputs, outputs and attributes are unchanged is its original bytes (so doc_strings and fields gs
  drops survive), an unchanged value-info likewise, an unchanged weight is a slice of the mapped file;
- weights are never serialized through protobuf (its Python API copies bytes fields): a TensorProto
  is written as its small header plus a raw_data field framed by hand around the numpy buffer, the
  mapped file, or an external file's range;
- opset_import lists extra domains sorted, so the output does not depend on PYTHONHASHSEED;
- each weight is stored once, where the file declared it (see scopes.py); gs copies every outer
  weight a subgraph uses into it (a Loop body using a 100 MB weight would store it twice);
- initializers read from a file keep their order in it (gs orders them by first use).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx import AttributeProto, TensorProto
from onnx_graphsurgeon.exporters.onnx_exporter import constant_to_onnx_tensor, dtype_to_onnx
from onnx_graphsurgeon.ir.tensor import LazyValues, SparseValues
from onnx_graphsurgeon.util import misc

from graphdsl.onnxio import wire
from graphdsl.onnxio.chunks import Chunks
from graphdsl.onnxio.construct import origin_of
from graphdsl.onnxio.importer import opset_id
from graphdsl.onnxio.irversion import choose_ir_version
from graphdsl.onnxio.meta import ModelMeta
from graphdsl.onnxio.ranges import FileRange
from graphdsl.onnxio.scopes import ModelScopes, analyse
from graphdsl.onnxio.source import source_by_id
from graphdsl.onnxio.values import ExternalValues, MappedValues, ProtoValues, TensorValues
from graphdsl.onnxio.walk import all_graphs

_NODE_TAG = {wire.GRAPH_NODE: 0x0A, wire.FUNCTION_NODE: 0x3A}  # first byte of a node field, by field number
_PLAIN_NP = {np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t)): t for t in (
    TensorProto.FLOAT, TensorProto.UINT8, TensorProto.INT8, TensorProto.UINT16, TensorProto.INT16,
    TensorProto.INT32, TensorProto.INT64, TensorProto.BOOL, TensorProto.FLOAT16, TensorProto.DOUBLE,
    TensorProto.UINT32, TensorProto.UINT64, TensorProto.COMPLEX64, TensorProto.COMPLEX128)}
_MISSING = object()


@dataclass
class ExternalSink:
    """The external data file being assembled: where each big initializer's bytes go.

    Offsets of tensors of at least `align` bytes are rounded up to a multiple of `align` (a page), so
    runtimes can map them directly; smaller ones are packed.
    """

    location: str
    threshold: int
    align: int = 4096
    chunks: Chunks = field(default_factory=Chunks)

    def add(self, piece, length: int) -> int:
        """Append a tensor's bytes (a FileRange or bytes-like); returns its offset in the file."""
        if length >= self.align and self.chunks.size % self.align:
            self.chunks.add(bytes(self.align - self.chunks.size % self.align))
        offset = self.chunks.size
        if isinstance(piece, FileRange):
            self.chunks.file_range(piece)
        else:
            self.chunks.add(piece)
        return offset


class Exporter:
    """Serializes one model; `file_ranges` says whether unread external weights may stay file ranges."""

    def __init__(self, sink: ExternalSink | None = None, *, file_ranges: bool = True):
        self.sink = sink
        self.file_ranges = file_ranges
        self.reads: set = set()  # files the output copies bytes from (the writer must not replace them)
        self.ir_version: int | None = None  # set by model(): the IR version written
        self.notes: list[str] = []  # set by model(): why the IR version differs from the one asked for
        self._done: dict[int, Chunks] = {}
        self._sources: dict[int, object] = {}

    # model

    def model(self, graph: gs.Graph, meta: ModelMeta, ir_version: int | None) -> Chunks:
        """The whole ModelProto; `ir_version` as asked for (see irversion.choose_ir_version).

        Sets `self.ir_version` (what was written) and `self.notes` (why it differs, if it does).
        """
        scopes = analyse(graph)
        opsets = opset_imports(graph, scopes.trees[id(graph)])
        ir_version, note = choose_ir_version(ir_version, graph.ir_version, opsets)
        self.ir_version, self.notes = ir_version, [note] if note else []
        # Children before parents, and no recursion: a graph's payload is ready before its node is.
        for g in reversed(scopes.order):
            encode = self._function if isinstance(g, gs.Function) else self._graph
            self._done[id(g)] = encode(g, scopes)
        out = Chunks()
        head = onnx.ModelProto(ir_version=ir_version)
        for key in ("producer_name", "producer_version"):
            if getattr(graph, key, ""):
                setattr(head, key, getattr(graph, key))
        for key in ("domain", "model_version", "doc_string"):
            if getattr(meta, key) is not None:
                setattr(head, key, getattr(meta, key))
        out.add(head.SerializeToString())
        body = Chunks()
        body.extend(self._done[id(graph)])
        body.add(meta.graph_extra)
        out.field(wire.MODEL_GRAPH, body)
        tail = onnx.ModelProto(opset_import=opsets)
        for key, value in meta.metadata_props.items():
            tail.metadata_props.add(key=key, value=value)
        out.add(tail.SerializeToString())
        for func in graph.functions:
            out.field(wire.MODEL_FUNCTIONS, self._done[id(func)])
        out.add(meta.extra)
        return out

    # graphs and functions

    def _graph(self, g: gs.Graph, scopes: ModelScopes) -> Chunks:
        """A GraphProto payload: what gs.export_onnx's export_graph writes, except that each weight
        is stored once (see scopes.py) and file-read initializers keep their order."""
        origin = origin_of(g)
        enclosing = scopes.enclosing[id(g)]
        out = Chunks()
        for node in g.nodes:
            self._node(out, node, wire.GRAPH_NODE)
        out.add(wire.string_field(2, g.name))
        tensors = scopes.tensors[id(g)]
        sparse = []
        for t in scopes.constants[id(g)]:
            if isinstance(t._values, SparseValues):
                sparse.append(t)
            else:
                self._tensor(out, wire.GRAPH_INITIALIZER, t, initializer=True)
        if g.doc_string:
            out.add(wire.string_field(10, g.doc_string))
        io_names = set()
        io = ((wire.GRAPH_INPUT, "input", g.inputs), (wire.GRAPH_OUTPUT, "output", g.outputs))
        for number, key, group in io:
            for t in group:
                io_names.add(t.name)
                self._value_info(out, number, t, origin, key)
        declared = origin.value_infos.get("value_info", {}) if origin is not None else {}
        for t in tensors.values():
            untyped = t.dtype is None and t.shape is None
            if not isinstance(t, gs.Variable) or untyped or _outer(t, enclosing):
                continue
            # gs leaves graph inputs and outputs out of value_info; a file that also lists them there
            # keeps that entry while it is still true (so unchanged models come back byte for byte)
            if t.name not in io_names or (t.name in declared and _same_signature(t, declared[t.name][3])):
                self._value_info(out, wire.GRAPH_VALUE_INFO, t, origin, "value_info")
        for start, end in origin.extra if origin is not None and not origin.source.closed else ():
            out.span(origin.source, start, end)
        for t in sparse:
            out.add(wire.len_header(wire.GRAPH_SPARSE_INITIALIZER, t._values.tensor.ByteSize()))
            out.add(t._values.tensor.SerializeToString())
        return out

    def _function(self, func: gs.Function, scopes: ModelScopes) -> Chunks:
        """A FunctionProto payload, as gs's export_function builds it."""
        nodes = list(func.nodes)
        # Functions have no initializers: Constants become Constant nodes (gs does the same).
        consts = [gs.Node("Constant", attrs={"value": t}, outputs=[t.copy()])
                  for t in scopes.constants[id(func)]]
        out = Chunks()
        required = [name for name, default in func.attrs.items() if default is None]
        defaults = {name: v for name, v in func.attrs.items() if v is not None}
        head = onnx.FunctionProto(name=func.name, input=[t.name for t in func.inputs],
                                  output=[t.name for t in func.outputs], attribute=required)
        out.add(head.SerializeToString())
        for node in consts + nodes:
            self._node(out, node, wire.FUNCTION_NODE)
        tail = onnx.FunctionProto(opset_import=opset_imports(func, scopes.trees[id(func)]),
                                  domain=func.domain or "")
        if func.doc_string:
            tail.doc_string = func.doc_string
        out.add(tail.SerializeToString())
        for name, value in defaults.items():
            out.field(11, self._attribute(name, value, None))
        origin = origin_of(func)
        for start, end in origin.extra if origin is not None and not origin.source.closed else ():
            out.span(origin.source, start, end)
        return out

    # nodes

    def _node(self, out: Chunks, node: gs.Node, number: int) -> None:
        origin = origin_of(node)
        source = self._source(origin[0]) if origin is not None else None
        if source is None:
            out.field(number, self._node_payload(node, None, None))
            return
        self._read(source)
        if _unchanged(node, origin) and source.buffer[origin[1]] == _NODE_TAG[number]:
            out.span(source, origin[1], origin[2])
            return
        out.field(number, self._node_payload(node, origin, source))

    def _node_payload(self, node: gs.Node, origin, source) -> Chunks:
        """A NodeProto for a changed or new node; unchanged attributes and unknown fields are reused."""
        kept, by_name = _original_fields(origin, source)
        out = Chunks()
        out.add(b"".join([wire.string_field(1, t.name) for t in node.inputs]
                         + [wire.string_field(2, t.name) for t in node.outputs]))
        if node.name:
            out.add(wire.string_field(3, node.name))
        out.add(wire.string_field(4, node.op))
        for key, value in node.attrs.items():
            entry, span = by_name.get(key, (None, None))
            if entry is not None and _attr_unchanged(value, entry):
                out.span(source, *span)
            else:
                out.field(wire.NODE_ATTRIBUTE, self._attribute(key, value, entry[1] if entry else None))
        for f in kept:
            if f[0] < 7:
                out.span(source, f[2], f[4])
        if node.domain is not None:
            out.add(wire.string_field(7, node.domain))
        for f in kept:
            if f[0] > 7:
                out.span(source, f[2], f[4])
        return out

    def _source(self, source_id: int):
        """The open source a node's bytes are in (looked up once per export), or None."""
        if source_id not in self._sources:
            self._sources[source_id] = source_by_id(source_id)
        return self._sources[source_id]

    def _read(self, source) -> None:
        if source.path is not None:
            self.reads.add(source.path)

    def _attribute(self, key: str, value, kind: int | None) -> Chunks:
        """An AttributeProto payload, typed as gs's exporter types it."""
        out = Chunks()
        if isinstance(value, gs.Constant):
            out.add(wire.string_field(1, key))
            self._tensor(out, 5, value, initializer=False)
            out.add(wire.varint_field(20, AttributeProto.TENSOR))
        elif isinstance(value, gs.Graph):
            out.add(wire.string_field(1, key))
            out.field(6, self._done[id(value)])
            out.add(wire.varint_field(20, AttributeProto.GRAPH))
        elif isinstance(value, gs.Node.AttributeRef):
            ref = onnx.AttributeProto(name=key, type=misc.convert_to_onnx_attr_type(value.type),
                                      ref_attr_name=value.name)
            out.add(ref.SerializeToString())
        else:
            kind = _empty_list_type(value, kind)
            attr = onnx.helper.make_attribute(key, _plain_value(value), attr_type=kind)
            out.add(attr.SerializeToString())
        return out

    # tensors

    def _tensor(self, out: Chunks, number: int, t: gs.Constant, initializer: bool) -> None:
        """One TensorProto field: original bytes if unchanged, else a header with hand-framed raw data."""
        values = t._values
        if isinstance(values, TensorValues) and t._export_dtype is None:
            external = initializer and self._goes_external(values.nbytes, values.data_type)
            if (not external and values.span is not None and t.name == values.name
                    and not values.span[0].closed and not isinstance(values, ExternalValues)):
                self._reuse(out, values)
                return
            raw = self._raw_of(values)
            if raw is not None:
                header = onnx.TensorProto()
                header.CopyFrom(values.header)
                header.ClearField("external_data")
                header.ClearField("data_location")
                header.ClearField("raw_data")
                header.name = t.name
                self._framed(out, number, header, raw, values.nbytes, external)
                return
        if isinstance(values, np.ndarray) and t._export_dtype is None and values.dtype in _PLAIN_NP:
            # Not ascontiguousarray: it turns 0-d arrays into 1-d ones.
            arr = values if values.flags.c_contiguous else values.copy(order="C")
            if arr.dtype.byteorder == ">":  # ONNX raw data is little-endian
                arr = arr.astype(arr.dtype.newbyteorder("<"))
            header = onnx.TensorProto(name=t.name, dims=arr.shape, data_type=_PLAIN_NP[values.dtype])
            external = initializer and self._goes_external(arr.nbytes, header.data_type)
            self._framed(out, number, header, arr.reshape(-1).view(np.uint8), arr.nbytes, external)
            return
        proto = _tensor_proto(t)
        raw_size = len(proto.raw_data) if proto.HasField("raw_data") else None
        if initializer and raw_size is not None and self._goes_external(raw_size, proto.data_type):
            raw = proto.raw_data
            proto.ClearField("raw_data")
            self._framed(out, number, proto, raw, len(raw), True)
            return
        out.add(wire.len_header(number, proto.ByteSize()))
        out.add(proto.SerializeToString())

    def _goes_external(self, nbytes: int, data_type: int) -> bool:
        return (self.sink is not None and nbytes >= self.sink.threshold
                and data_type not in (TensorProto.STRING, TensorProto.UNDEFINED))

    def _reuse(self, out: Chunks, values: TensorValues) -> None:
        """An unchanged tensor's field as it was; its raw data from the file if the mapping was handed
        out as a writable array (which a pass may have edited, see MappedValues)."""
        source, start, end = values.span
        self._read(source)
        if not (isinstance(values, MappedValues) and values.loaded):
            out.span(source, start, end)
            return
        out.span(source, start, values.raw_start)
        self._add_raw(out, self._raw_of(values))
        out.span(source, values.raw_end, end)

    def _raw_of(self, values: TensorValues):
        """The stored bytes of lazy values: a slice of a mapping, a file range, or bytes; None if the
        data is not raw (a proto's typed fields)."""
        if isinstance(values, MappedValues):
            source = values.source
            if source.closed:
                raise ValueError(f"weight `{values.name}` was never read, and its model is closed")
            self._read(source)
            if not values.loaded:
                return source.buffer[values.raw_start:values.raw_end]
            if source.is_file and self.file_ranges:
                return FileRange(source, values.raw_start, values.nbytes)
            return values.original()
        if isinstance(values, ExternalValues):
            self.reads.add(values.ref.file.path)
            if self.file_ranges:  # copied file to file, never through Python memory
                values.ref.file.check(values.ref, values.expected, values.name)
                return FileRange(values.ref.file, values.ref.offset, values.nbytes)
            return values.original()
        if isinstance(values, ProtoValues) and values.header.HasField("raw_data"):
            return values.header.raw_data
        return None

    @staticmethod
    def _add_raw(out: Chunks, raw) -> None:
        if isinstance(raw, FileRange):
            out.file_range(raw)
        else:
            out.add(raw)

    def _framed(self, out: Chunks, number: int, header: TensorProto, raw, nbytes: int,
                external: bool) -> None:
        """header + raw_data, or (external) header + location entries with the bytes sent to the sink."""
        if external:
            offset = self.sink.add(raw, nbytes)
            header.data_location = TensorProto.EXTERNAL
            for key, value in (("location", self.sink.location), ("offset", offset), ("length", nbytes)):
                header.external_data.add(key=key, value=str(value))
            out.add(wire.len_header(number, header.ByteSize()))
            out.add(header.SerializeToString())
            return
        data = header.SerializeToString()
        head, tail = _split_at_raw(data)
        raw_field = wire.len_header(wire.TENSOR_RAW_DATA, nbytes)
        out.add(wire.len_header(number, len(data) + len(raw_field) + nbytes))
        out.add(head + raw_field)
        self._add_raw(out, raw)
        out.add(tail)

    # value infos

    def _value_info(self, out: Chunks, number: int, t, origin, key: str) -> None:
        """A ValueInfoProto field: the imported one if the tensor's type is unchanged, else gs's."""
        if isinstance(t, gs.Variable) and origin is not None and not origin.source.closed:
            self._read(origin.source)
            for group in (key, "value_info", "input", "output"):
                found = origin.value_infos.get(group, {}).get(t.name)
                if found is not None and _same_signature(t, found[3]):
                    if group == key:
                        out.span(origin.source, found[0], found[2])
                    else:  # the same ValueInfoProto, now in another list: a new tag, the same payload
                        out.add(wire.len_header(number, found[2] - found[1]))
                        out.span(origin.source, found[1], found[2])
                    return
        proto = _value_info_proto(t)
        out.add(wire.len_header(number, proto.ByteSize()))
        out.add(proto.SerializeToString())


def _outer(t, enclosing: list[set]) -> bool:
    return any(id(t) in ids for ids in enclosing)


def _unchanged(node: gs.Node, origin: tuple) -> bool:
    """Whether a node still is exactly what its original bytes say (cheap: no serialization)."""
    _, _, _, op, name, domain, in_names, out_names, snapshot = origin
    if node.op != op or node.name != name or node.domain != domain:
        return False
    if tuple([t.name for t in node.inputs]) != in_names or tuple([t.name for t in node.outputs]) != out_names:
        return False
    attrs = node.attrs
    if len(attrs) != len(snapshot):
        return False
    for entry in snapshot:
        if not _attr_unchanged(attrs.get(entry[0], _MISSING), entry):
            return False
    return True


def _attr_unchanged(value, entry: tuple) -> bool:
    """Whether an attribute still holds what was imported (see Importer._attributes for the tokens)."""
    _, kind, _, token = entry
    if token is None:
        return False  # graphs (re-encoded, their nodes reused one by one) and protos
    if type(token) is tuple:
        if type(value) is list:
            return tuple(value) == token
        if type(value) is gs.Constant:
            return (value.name == token[0] and getattr(value._values, "key", None) == token[1]
                    and value._export_dtype is None)
        if type(value) is gs.Node.AttributeRef:
            same_type = misc.convert_to_onnx_attr_type(value.type) == kind
            return token[0] == "ref" and value.name == token[1] and same_type
        return False
    return type(value) is type(token) and value == token


def _original_fields(origin, source) -> tuple[list, dict]:
    """A changed node's original fields worth keeping (doc_string, metadata, unknown), and its attributes
    by name: (snapshot entry, (start, end))."""
    if origin is None:
        return [], {}
    node_field = wire.scan(source.buffer, origin[1], origin[2])[0]
    fields = wire.scan(source.buffer, node_field[3], node_field[4])
    attr_spans = [(f[2], f[4]) for f in fields if f[0] == wire.NODE_ATTRIBUTE]
    by_name = {entry[0]: (entry, attr_spans[entry[2]]) for entry in origin[8] if entry[2] < len(attr_spans)}
    kept = [f for f in fields if f[0] == 6 or f[0] >= 8]
    return kept, by_name


def _split_at_raw(data: bytes) -> tuple[bytes, bytes]:
    """A serialized TensorProto header split where raw_data (field 9) belongs, for canonical order."""
    for f in wire.scan(data, 0, len(data)):
        if f[0] > wire.TENSOR_RAW_DATA:
            return data[:f[2]], data[f[2]:]
    return data, b""


def _tensor_proto(t: gs.Constant) -> TensorProto:
    """A complete TensorProto for the cases the fast paths do not cover (copies the data)."""
    values = t._values
    if isinstance(values, LazyValues) and t._export_dtype is None:
        proto = TensorProto()
        proto.CopyFrom(values.tensor)
    elif isinstance(values, np.ndarray) and t._export_dtype is None and values.dtype.kind in "OSU":
        proto = onnx.numpy_helper.from_array(values)
    elif isinstance(values, np.ndarray) and t._export_dtype is None:
        proto = onnx.numpy_helper.from_array(values)  # bfloat16, float8, int4...: onnx packs them
    else:
        proto = constant_to_onnx_tensor(t)  # export_dtype conversion, as gs does it
    proto.name = t.name
    return proto


def _plain_value(value):
    """An attribute value in the form onnx.helper.make_attribute takes (gs's conversions included)."""
    if isinstance(value, (type, np.dtype)):
        try:
            return dtype_to_onnx(value)
        except TypeError:
            return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], gs.Constant):
        return [_tensor_proto(c) for c in value]
    return value


def _empty_list_type(value, kind: int | None) -> int | None:
    # make_attribute cannot infer the type of an empty list: use the imported one (default INTS).
    if isinstance(value, (list, tuple)) and not value:
        return kind or AttributeProto.INTS
    return None


def _same_signature(t: gs.Variable, sig: tuple) -> bool:
    dtype, shape, type_name = sig
    current_shape = tuple(t.shape) if t.shape is not None else None
    return t.type == type_name and current_shape == shape and _same_dtype(t.dtype, dtype)


def _same_dtype(a, b) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except TypeError:
        return False


def _value_info_proto(t) -> onnx.ValueInfoProto:
    """gs's export_value_info_proto, without its crash on map/optional types (those get no type)."""
    if t.dtype is not None:
        try:
            dtype = dtype_to_onnx(t.dtype)
        except (TypeError, ValueError, KeyError):
            dtype = None
        kind = "tensor_type" if isinstance(t, gs.Constant) else t.type
        if dtype is not None and kind == "tensor_type":
            return onnx.helper.make_tensor_value_info(t.name, dtype, t.shape)
        if dtype is not None and kind == "sequence_type":
            return onnx.helper.make_tensor_sequence_value_info(t.name, dtype, t.shape)
        if dtype is not None and kind == "sparse_tensor_type":
            return onnx.helper.make_sparse_tensor_value_info(t.name, dtype, t.shape)
    return onnx.helper.make_empty_tensor_value_info(t.name)


def opset_imports(g: gs.Graph, graphs: list | None = None) -> list[onnx.OperatorSetIdProto]:
    """gs's update_import_domains without mutating the graph, with the default domain at g.opset,
    and extra domains in sorted order (gs iterates a set, so its order changes with PYTHONHASHSEED).

    `graphs`: g and its subgraphs, if already known.
    """
    domains = [opset_id(o) for o in g.import_domains] if g.import_domains else [
        onnx.helper.make_opsetid("", g.opset)]
    for o in domains:
        if o.domain in ("", "ai.onnx") and g.opset is not None and o.version != g.opset:
            o.version = g.opset  # a pass changed graph.opset: that wins over the imported list
    graphs = graphs if graphs is not None else all_graphs(g, functions=False)
    used = {n.domain for sub in graphs for n in sub.nodes} - {None}
    present = {o.domain for o in domains}
    domains += [onnx.helper.make_opsetid(d, 1) for d in sorted(used - present)]
    return domains
