"""A serialized message as a list of pieces whose total size is known before any byte is written.

Protobuf prefixes every sub-message with its length, so a writer must know a GraphProto's size before
it writes the graph. Rather than serializing the model into one `bytes` (which would copy every
weight), the exporter builds a `Chunks`: small serialized parts, slices of the mapped source file,
numpy buffers, and ranges of other files, each with a known length. Writing then streams them.
"""

from __future__ import annotations

from graphdsl.onnxio import wire
from graphdsl.onnxio.ranges import FileRange

FILE_RANGE_MIN = 1 << 20  # smaller spans are gathered in memory: a system call each would cost more


class Chunks:
    """Pieces of one message (or of one field's payload), in order.

    Consecutive slices of the same source buffer are merged as they are added, so a graph that no pass
    touched comes back as a few large slices of the original file.
    """

    __slots__ = ("parts", "size", "_source", "_start", "_end")

    def __init__(self):
        self.parts: list = []
        self.size = 0
        self._source = None
        self._start = self._end = 0

    def add(self, data) -> None:
        """Append bytes-like data (bytes, memoryview, or a contiguous numpy uint8 buffer)."""
        self._flush()
        n = memoryview(data).nbytes if not isinstance(data, bytes) else len(data)
        if n:
            self.parts.append(data)
            self.size += n

    def span(self, source, start: int, end: int) -> None:
        """Append source.buffer[start:end] without copying; merged with the previous span when
        contiguous. `source` is a ModelSource: large spans of files become file ranges."""
        if source is self._source and start == self._end:
            self._end = end
        else:
            self._flush()
            self._source, self._start, self._end = source, start, end
        self.size += end - start

    def file_range(self, rng: FileRange) -> None:
        """Append a range of an open file, copied file-to-file when written."""
        self._flush()
        if rng.length:
            self.parts.append(rng)
            self.size += rng.length

    def extend(self, other: Chunks) -> None:
        """Append all of another Chunks' pieces."""
        other._flush()
        self._flush()
        self.parts.extend(other.parts)
        self.size += other.size

    def field(self, number: int, payload: Chunks) -> None:
        """Append a length-delimited field whose payload is `payload`."""
        self.add(wire.len_header(number, payload.size))
        self.extend(payload)

    def finish(self) -> list:
        """The pieces, ready to write."""
        self._flush()
        return self.parts

    def to_bytes(self) -> bytes:
        """Everything joined in memory (copies: for in-memory export only)."""
        return b"".join(p.read() if isinstance(p, FileRange) else p for p in self.finish())

    def _flush(self) -> None:
        source = self._source
        if source is None:
            return
        if source.is_file and self._end - self._start >= FILE_RANGE_MIN:
            # copied file to file by the kernel: no page of it is faulted into this process
            self.parts.append(FileRange(source, self._start, self._end - self._start))
        else:
            self.parts.append(source.buffer[self._start:self._end])
        self._source = None
