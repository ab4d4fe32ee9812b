"""Writing models: a gs.Graph -> an .onnx file (and its external data file), streamed and atomic.

The serialized model never exists in memory as a whole: the exporter describes it as pieces (see
chunks.py) and they are written one after another, weights straight from the mapped source, from
numpy buffers, or file-to-file from the input's external data. Both files are written to temporary
names, fsynced, and renamed into place only when complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import onnx
import onnx_graphsurgeon as gs
from google.protobuf.message import DecodeError

from graphdsl.diagnostics import model_error
from graphdsl.gcpause import gc_paused
from graphdsl.onnxio import atomic
from graphdsl.onnxio.chunks import Chunks
from graphdsl.onnxio.codes import EXTERNAL_OUTSIDE, MODEL_UNREADABLE, OVERWRITES_INPUT
from graphdsl.onnxio.construct import origin_of
from graphdsl.onnxio.exporter import Exporter, ExternalSink
from graphdsl.onnxio.meta import ModelMeta
from graphdsl.onnxio.ranges import FileRange, copy_range, write_all

PROTOBUF_LIMIT = (1 << 31) - 1  # protobuf refuses to parse a message of 2 GiB or more
_BUFFER = 1 << 22  # small pieces are gathered up to this size before a write system call
STRIPPED_LOCATION = "<weights not exported>"  # export_model(weights=False)
STRIPPED_THRESHOLD = 1 << 16


@dataclass
class WriteResult:
    """What `write_model` wrote.

    Attributes:
        path: The model file.
        external_data: The external data file, or None when every weight is inside the model.
        ir_version: The IR version written.
        notes: Decisions the caller may want to report (external data chosen for size, IR raised).
    """

    path: Path
    external_data: Path | None
    ir_version: int
    notes: list[str] = field(default_factory=list)


def export_model(graph: gs.Graph, meta: ModelMeta | None = None, *,
                 ir_version: int | None = None, weights: bool = True) -> onnx.ModelProto:
    """The graph as an in-memory ModelProto (lazy weights are read into it).

    Args:
        graph: The graph.
        meta: Model fields the graph does not hold (from `read_model`); None writes none.
        ir_version: IR version to write; None: the graph's, capped at what onnxruntime reads. Raised to
            the minimum the opsets need either way.
        weights: False: initializers of 64 KiB or more are external-data references to a file that does
            not exist (`STRIPPED_LOCATION`), and no weight is read. For shape inference, which reads only
            the values of small shape-like inputs: exporting the weights costs several times their size
            (the proto, then protobuf's copies on the way into and out of `infer_shapes`).

    Returns:
        The model, with all weights inline (unless `weights` is False).

    Raises:
        ValueError: If the model would exceed protobuf's 2 GB limit, or nests subgraphs deeper than
            protobuf parses (use `write_model`).
    """
    with gc_paused():
        # the stripped weights go to a sink that is never written: its pieces are never read
        sink = None if weights else ExternalSink(STRIPPED_LOCATION, STRIPPED_THRESHOLD)
        exporter = Exporter(sink, file_ranges=not weights)  # file ranges: unread weights stay unread
        data = exporter.model(graph, meta or ModelMeta(), ir_version).to_bytes()
        if len(data) > PROTOBUF_LIMIT:
            raise ValueError(f"the model is {len(data) >> 20} MiB, over protobuf's 2 GiB limit: use "
                             "write_model, which stores weights as external data")
        try:
            return onnx.ModelProto.FromString(data)
        except DecodeError:  # our bytes are well-formed: only protobuf's nesting limit (100) rejects them
            raise ValueError("the model nests subgraphs deeper than protobuf can parse (about 33 If levels): "
                             "write it with write_model; onnxruntime cannot load it either") from None


def write_model(graph: gs.Graph, path: str | os.PathLike, meta: ModelMeta | None = None, *,
                ir_version: int | None = None, external_data: str | None = None, size_threshold: int = 1024,
                input_path: str | os.PathLike | None = None, overwrite_input: bool = False) -> WriteResult:
    """Write the graph to an .onnx file, atomically, streaming weights instead of copying them.

    Args:
        graph: The graph.
        path: The model file to write; missing folders are created.
        meta: Model fields the graph does not hold (from `read_model`).
        ir_version: As for `export_model`.
        external_data: File name (relative to the model's folder) for initializers of at least
            `size_threshold` bytes; None keeps them inside the model unless it would exceed 2 GB, in
            which case `<model name>.data` is used and a note says so.
        size_threshold: Smallest initializer, in bytes, that goes to the external data file.
        input_path: The model the graph was read from; writing over it (or over an external data file
            the graph still reads) is refused unless `overwrite_input`.
        overwrite_input: Allow replacing the input. The old file stays readable until the new one is
            complete, so this is safe even while its weights are still mapped.

    Returns:
        What was written.

    Raises:
        ModelError: GDS304 (would overwrite the input), GDS303 (external_data outside the model's
            folder), GDS301 (the folder cannot be written).
    """
    path = Path(path)
    with gc_paused():
        notes: list[str] = []
        exporter, chunks, sink = _export(graph, path, meta or ModelMeta(), ir_version, external_data,
                                         size_threshold, notes)
        notes[:0] = exporter.notes
        data_path = _data_path(path, sink.location) if sink is not None else None
        origin = origin_of(graph)
        if origin is not None and origin.source.path is not None:
            exporter.reads.add(origin.source.path)
        reads = exporter.reads
        _refuse_overwrite(reads, path, data_path, input_path, overwrite_input)
        _write_files(path, chunks, data_path, sink.chunks if sink else None)
    return WriteResult(path, data_path if sink and sink.chunks.size else None, exporter.ir_version, notes)


def _export(graph, path: Path, meta: ModelMeta, ir: int | None, external_data: str | None,
            size_threshold: int, notes: list[str]) -> tuple[Exporter, Chunks, ExternalSink | None]:
    """The model's pieces; external data is chosen here when the model would pass protobuf's limit."""
    if external_data:
        _data_path(path, external_data)  # refuse a bad name before any work
    sink = ExternalSink(external_data, size_threshold) if external_data else None
    exporter = Exporter(sink)
    chunks = exporter.model(graph, meta, ir)
    if sink is None and chunks.size > PROTOBUF_LIMIT:
        external_data = f"{path.name}.data"
        notes.append(f"the model would be {chunks.size >> 20} MiB, over protobuf's 2 GiB limit: weights of "
                     f"{size_threshold} bytes or more are stored in `{external_data}`")
        sink = ExternalSink(external_data, size_threshold)
        exporter = Exporter(sink)
        chunks = exporter.model(graph, meta, ir)
    return exporter, chunks, sink


def _data_path(path: Path, location: str) -> Path:
    relative = PurePosixPath(location)
    if not location or relative.is_absolute() or ".." in relative.parts or len(relative.parts) != 1:
        raise model_error(EXTERNAL_OUTSIDE, f"external data file `{location}` must be a plain file name "
                          "beside the model", location=str(path), hint=f"for example `{path.name}.data`")
    return path.parent / location


def _refuse_overwrite(reads: set, path: Path, data_path: Path | None, input_path,
                      overwrite_input: bool) -> None:
    """GDS304 when an output would replace the input model or a file the output copies bytes from."""
    if overwrite_input:
        return
    protected = set(reads) | ({Path(input_path)} if input_path is not None else set())
    for target in (path, data_path):
        if target is None:
            continue
        for src in protected:
            if _same_file(target, src):
                raise model_error(OVERWRITES_INPUT, f"writing `{target}` would overwrite the input `{src}`",
                                  location=str(target), hint="choose another output path, or pass "
                                  "--overwrite-input (overwrite_input=True) to replace the input")


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def _write_files(path: Path, chunks: Chunks, data_path: Path | None, data: Chunks | None) -> None:
    """Write model and data file to temporary names, fsync both, then rename both into place."""
    temps: list[tuple[Path, Path]] = []
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise model_error(MODEL_UNREADABLE, f"cannot create folder `{path.parent}`: {e.strerror}",
                          location=str(path)) from None
    try:
        if data is not None and data.size:
            temps.append((_write_temp(data_path, data), data_path))
        temps.append((_write_temp(path, chunks), path))
        for temp, final in temps:
            atomic.commit(temp, final)
    except BaseException:
        for temp, _ in temps:
            atomic.discard(temp)
        raise


def _write_temp(path: Path, chunks: Chunks) -> Path:
    """The pieces written to a new temporary file beside `path`, fsynced; GDS301 if the disk refuses."""
    try:
        temp, fd = atomic.open_temp(path)
    except OSError as e:
        raise model_error(MODEL_UNREADABLE, f"cannot write `{path}`: {e.strerror}",
                          location=str(path)) from None
    try:
        _stream(fd, chunks.finish())
        os.fsync(fd)
    except BaseException as e:
        os.close(fd)
        atomic.discard(temp)
        if isinstance(e, OSError) and e.errno is not None:  # disk full, quota, I/O error
            raise model_error(MODEL_UNREADABLE, f"cannot write `{path}`: {e.strerror}",
                              location=str(path), hint="nothing was replaced") from None
        raise
    os.close(fd)
    return temp


def _stream(fd: int, parts: list) -> None:
    """Write the pieces in order: small ones gathered, big ones directly, file ranges file-to-file."""
    pending: list = []
    pending_size = 0
    for part in parts:
        if isinstance(part, FileRange):
            _flush(fd, pending)
            pending, pending_size = [], 0
            copy_range(part.file.fileno(), part.offset, part.length, fd)
            continue
        n = len(part) if isinstance(part, bytes) else memoryview(part).nbytes
        if n >= _BUFFER:
            _flush(fd, pending)
            pending, pending_size = [], 0
            write_all(fd, part)
            continue
        pending.append(part)
        pending_size += n
        if pending_size >= _BUFFER:
            _flush(fd, pending)
            pending, pending_size = [], 0
    _flush(fd, pending)


def _flush(fd: int, pending: list) -> None:
    if pending:
        write_all(fd, b"".join(pending))


