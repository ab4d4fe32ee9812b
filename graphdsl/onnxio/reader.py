"""Reading models: a file (or bytes) -> the layout of its graph -> a gs.Graph with lazy weights.

The file is mapped, not read. The ModelProto and its GraphProto are walked at the wire level (see
wire.py) just far enough to find each initializer's raw_data; everything else is parsed by protobuf's
C parser in one call, from a concatenation of the non-weight bytes. Weights stay in the mapping until
a pass asks for them, and then they are numpy views of it.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from graphdsl.gcpause import gc_paused
from graphdsl.diagnostics import model_error
from graphdsl.onnxio import wire
from graphdsl.onnxio.codes import MODEL_CORRUPT
from graphdsl.onnxio.construct import origin_of
from graphdsl.onnxio.importer import Importer, opset_id
from graphdsl.onnxio.layout import graph_layout
from graphdsl.onnxio.meta import LoadedModel, ModelMeta
from graphdsl.onnxio.source import ModelSource
from graphdsl.onnxio.values import ExternalValues
from graphdsl.onnxio.walk import constants

# ModelProto fields ModelMeta or gs.Graph hold; everything else goes to ModelMeta.extra.
_MODEL_KNOWN = {1, 2, 3, 4, 5, 6, 7, 8, 14, 25}


def read_model(path: str | os.PathLike, *, load_external: bool = False) -> LoadedModel:
    """Read an ONNX model file into a graphsurgeon Graph, weights mapped rather than copied.

    Args:
        path: The .onnx file.
        load_external: Read external-data weights now (into memory) instead of when a pass first asks
            for them; the data files may then change or go away without affecting the graph.

    Returns:
        The graph, the model's other fields, and the mapping they refer to.

    Raises:
        ModelError: GDS301 (cannot open), GDS302 (not a well-formed model), GDS303 (an external data
            path leaves the model's folder; checked before any external file is opened), GDS308 (an
            external data file is missing or too short).
    """
    path = Path(path)
    source = ModelSource.open(path)
    try:
        return _load(source, str(path), load_external)
    except BaseException:
        source.close()
        raise


def import_model(model: onnx.ModelProto, base_dir: str | os.PathLike | None = None) -> LoadedModel:
    """Import an in-memory ModelProto (for Python API users) the same way `read_model` reads a file.

    Args:
        model: The model; it is serialized once and not modified or referenced afterwards.
        base_dir: The folder its external data paths are relative to, if it has any.

    Returns:
        The graph and the model's other fields; `path` is None.

    Raises:
        ModelError: As read_model (GDS302, GDS303, GDS308).
    """
    try:
        data = model.SerializeToString()
    except ValueError as e:  # over 2 GB: protobuf cannot serialize it, so neither could we write it
        raise model_error(MODEL_CORRUPT, f"the model cannot be serialized: {e}",
                          hint="save it with external data: onnx.save(..., save_as_external_data=True)",
                          ) from None
    base = Path(base_dir) if base_dir is not None else None
    return _load(ModelSource(data, base_dir=base), "<in-memory model>", load_external=False)


def _load(source: ModelSource, where: str, load_external: bool) -> LoadedModel:
    # Building a graph allocates millions of objects that all stay alive: collections meanwhile would
    # cost a third of the import, and the graph belongs in the oldest generation (promote=True).
    with gc_paused(promote=True):
        try:
            loaded = _import(source, where)
        except (wire.WireError, DecodeError, UnicodeDecodeError, RecursionError) as e:
            raise model_error(MODEL_CORRUPT, f"`{where}` is not a well-formed ONNX model: {e}", location=where,
                              hint="the file is truncated or corrupted; export or download it again") from None
    if load_external:
        _load_external(loaded.graph)
    return loaded


def _import(source: ModelSource, where: str) -> LoadedModel:
    buf = source.buffer
    top = wire.scan(buf, 0, len(buf))
    graphs = [f for f in top if f[0] == wire.MODEL_GRAPH]
    if len(graphs) != 1 or graphs[0][1] != wire.LEN:
        return _import_unusual(source, where, graphs)
    model = onnx.ModelProto.FromString(_join(buf, [f for f in top if f[0] != wire.MODEL_GRAPH]))
    g_field = graphs[0]
    layout = graph_layout(buf, g_field[3], g_field[4])
    importer = Importer(source, _model_opset(model), [opset_id(o) for o in model.opset_import], where)
    function_spans = [f for f in top if f[0] == wire.MODEL_FUNCTIONS and f[1] == wire.LEN]
    for proto, span in zip(model.functions, function_spans):
        importer.functions.append(importer.import_function(proto, span))
    graph = importer.import_graph(layout, producer_name=wire.text(model.producer_name),
                                  producer_version=wire.text(model.producer_version),
                                  ir_version=model.ir_version)
    _check_externals(importer)
    return LoadedModel(graph, source.path, _meta(model, top, buf, graph), source)


def _import_unusual(source: ModelSource, where: str, graphs: list) -> LoadedModel:
    """No graph, or a graph field repeated (protobuf merges repeats): parse whole, then import normally."""
    if not graphs:
        raise model_error(MODEL_CORRUPT, f"`{where}` has no graph: it is not an ONNX model", location=where)
    model = onnx.ModelProto.FromString(bytes(source.buffer))
    merged = ModelSource(model.SerializeToString(), path=source.path, base_dir=source.base_dir)
    loaded = _import(merged, where)
    source.close()
    return loaded


def _join(buf, fields) -> bytes:
    return b"".join(buf[f[2]:f[4]] for f in fields)


def _model_opset(model: onnx.ModelProto) -> int | None:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _meta(model: onnx.ModelProto, top: list, buf, graph) -> ModelMeta:
    extra = _join(buf, [f for f in top if f[0] not in _MODEL_KNOWN])
    # The main graph's extra fields move to the meta, which outlives a pass replacing the graph object.
    origin = origin_of(graph)
    graph_extra = b"".join(buf[a:b] for a, b in origin.extra)
    origin.extra = []
    return ModelMeta(
        metadata_props={wire.text(p.key): wire.text(p.value) for p in model.metadata_props},
        model_version=model.model_version if model.HasField("model_version") else None,
        domain=wire.text(model.domain) if model.HasField("domain") else None,
        doc_string=wire.text(model.doc_string) if model.HasField("doc_string") else None,
        graph_extra=graph_extra,
        extra=extra,
    )


def _check_externals(importer: Importer) -> None:
    """Sizes of external data files (GDS308), after every location was validated (GDS303)."""
    for values in importer.externals:
        ref = values.ref
        if ref.length is not None and values.expected is not None and ref.length != values.expected:
            raise model_error(MODEL_CORRUPT, f"tensor `{values.name}` declares {ref.length} bytes of "
                              f"external data, but its shape needs {values.expected}",
                              location=importer.where)
        values.nbytes = ref.file.check(ref, values.expected, values.name)


def _load_external(graph) -> None:
    """Replace every lazy external tensor's values by an in-memory copy."""
    for t in constants(graph):
        if isinstance(t._values, ExternalValues):
            t.values = t._values.load().copy()
