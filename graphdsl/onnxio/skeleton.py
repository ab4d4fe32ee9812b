"""A model file's skeleton: the same file with its big weights pointing back at themselves.

`onnx.checker.check_model(path)` reads the whole file into one string and parses it, so checking a
model with 440 MB of embedded weights costs about 880 MB. The skeleton is the file with each big
initializer's raw_data replaced by an external-data reference to those very bytes (location: the model
file itself, offset and length of its raw_data). It is a few hundred KB, describes the same model, and
the checker only tests that the referenced file exists, so checking it reads no weight.

Only tensors the checker would accept as they are get this treatment: raw_data alone holds the data
(no typed fields, no segment, no external data) and its size is exactly what dims and data type need,
which is the checker's one test of embedded raw data. Anything else stays embedded for the checker.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from graphdsl.onnxio import wire
from graphdsl.onnxio.layout import split_tensor
from graphdsl.onnxio.ranges import pread_exact
from graphdsl.onnxio.values import raw_nbytes

SKELETON_PREFIX = ".graphdsl-check-"
#: Smaller tensors stay embedded: shape inference reads the values of shape-like inputs (Reshape,
#: Expand, Slice ...), which it cannot from external data; those are tiny.
THRESHOLD = 1 << 16
_TENSOR_LOCATION, _TENSOR_EXTERNAL = 14, 13
_HEADER_FIELDS = {"dims", "data_type", "name", "doc_string"}


def skeleton_bytes(path: Path, threshold: int = THRESHOLD) -> bytes | None:
    """The skeleton of the model at `path`, for a reader that resolves external data in path's folder;
    None when no weight needs stripping, or the file is not a model this can rewrite."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        pieces = _skeleton(_FileBytes(fd, size), path.name, threshold) if size >= threshold else None
    except (ValueError, IndexError, DecodeError):  # not well-formed (WireError is a ValueError): the
        return None  # checker, or whoever reads the file, says so in its own words
    finally:
        os.close(fd)
    return None if pieces is None else b"".join(pieces)


def write_skeleton(path: Path, threshold: int = THRESHOLD) -> Path | None:
    """Write the skeleton of the model at `path` beside it (a hidden temporary name; the checker wants a
    file); the caller removes it. None as for skeleton_bytes."""
    data = skeleton_bytes(path, threshold)
    if data is None:
        return None
    out_fd, name = tempfile.mkstemp(prefix=SKELETON_PREFIX, suffix=".onnx", dir=path.parent)
    try:
        with os.fdopen(out_fd, "wb") as f:
            f.write(data)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def _skeleton(buf, location: str, threshold: int) -> list | None:
    top = wire.scan(buf, 0, len(buf))
    graphs = [f for f in top if f[0] == wire.MODEL_GRAPH]
    if len(graphs) != 1 or graphs[0][1] != wire.LEN:
        return None
    graph, stripped = _graph(buf, graphs[0], location, threshold)
    if not stripped:
        return None
    pieces = []
    for f in top:
        if f is graphs[0]:
            pieces.append(wire.len_header(wire.MODEL_GRAPH, sum(len(p) for p in graph)))
            pieces.extend(graph)
        else:
            pieces.append(buf[f[2]:f[4]])
    return pieces


def _graph(buf, g_field, location: str, threshold: int) -> tuple[list, int]:
    """The graph's payload pieces with big initializers as references; how many were stripped."""
    pieces, stripped = [], 0
    for number, kind, start, data, end in wire.scan(buf, g_field[3], g_field[4]):
        tensor = None
        if number == wire.GRAPH_INITIALIZER and kind == wire.LEN and end - data >= threshold:
            tensor = _reference(buf, data, end, location)
        if tensor is None:
            pieces.append(buf[start:end])
            continue
        pieces.append(wire.len_header(wire.GRAPH_INITIALIZER, len(tensor)) + tensor)
        stripped += 1
    return pieces, stripped


def _reference(buf, start: int, end: int, location: str) -> bytes | None:
    """The TensorProto in buf[start:end] with its raw_data as a reference to the same bytes, or None
    when it is not a plain raw tensor of exactly the size its dims and type need."""
    cut = split_tensor(buf, start, end)
    if cut is None:
        return None
    header, (raw_start, raw_end) = cut
    tensor = onnx.TensorProto.FromString(header)
    if {f.name for f, _ in tensor.ListFields()} - _HEADER_FIELDS:
        return None
    if raw_nbytes(tensor.data_type, math.prod(tensor.dims)) != raw_end - raw_start:
        return None
    if sum(1 for f in wire.scan(buf, start, end) if f[0] == wire.TENSOR_RAW_DATA) != 1:
        return None  # protobuf keeps the last of repeated raw_data: let the checker judge such a file
    refs = [wire.varint_field(_TENSOR_LOCATION, onnx.TensorProto.EXTERNAL)]
    for key, value in (("location", location), ("offset", raw_start), ("length", raw_end - raw_start)):
        entry = wire.string_field(1, key) + wire.string_field(2, str(value))
        refs.append(wire.len_header(_TENSOR_EXTERNAL, len(entry)) + entry)
    return header + b"".join(refs)


class _FileBytes:
    """A file indexed like bytes, read with pread through a small window. Not a mapping: touching a
    mapped file's pages (the kernel maps whole cached folios around each) counts them as this process's
    memory, about a third of the weights just to read the headers between them."""

    _WINDOW = 1 << 16

    def __init__(self, fd: int, size: int):
        self.fd, self.size = fd, size
        self.start, self.data = 0, b""

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key):
        if isinstance(key, slice):
            return pread_exact(self.fd, key.start, key.stop - key.start)
        if not self.start <= key < self.start + len(self.data):
            if not 0 <= key < self.size:
                raise IndexError(key)
            self.start, self.data = key, os.pread(self.fd, self._WINDOW, key)
        return self.data[key - self.start]
