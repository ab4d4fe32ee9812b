"""Where a model's bytes come from: a mapped file, or a bytes object for models built in memory.

The graph refers back to its source (lazy weights, and the byte ranges of nodes and tensors that the
writer copies unchanged), so the source lives as long as any part of the graph does; `close()` only
hurries that along when the caller knows the graph is finished with.
"""

from __future__ import annotations

import itertools
import mmap
import os
import weakref
from pathlib import Path

from graphdsl.diagnostics import model_error
from graphdsl.onnxio.codes import EXTERNAL_SHORT, MODEL_CORRUPT, MODEL_UNREADABLE
from graphdsl.onnxio.external import ExternalFile, resolve_location

_live: dict[int, weakref.ref[ModelSource]] = {}
_ids = itertools.count(1)


def source_by_id(source_id: int) -> ModelSource | None:
    """The source with this id, if it is still alive and open.

    Nodes refer to their source by id rather than by reference: a tuple of only strings and ints is
    untracked by the cyclic garbage collector, and a graph has one such tuple per node.
    """
    ref = _live.get(source_id)
    source = ref() if ref is not None else None
    return source if source is not None and not source.closed else None


_MADV_PAGEOUT = getattr(mmap, "MADV_PAGEOUT", 21)


class ModelSource:
    """The bytes of one serialized ModelProto, and the external data files it names.

    Attributes:
        id: A number naming this source for as long as it lives (see source_by_id).
        path: The model file, or None for a model imported from memory.
        base_dir: The folder external data paths are relative to (None: the model may not use any).
        buffer: A memoryview over the whole serialized model.
        writable: Whether numpy views of `buffer` may be written (copy-on-write mappings are).
        closed: Whether close() was called.
    """

    def __init__(self, buffer, *, path: Path | None = None, base_dir: Path | None = None,
                 fd: int | None = None, mapping: mmap.mmap | None = None, writable: bool = False):
        self.path = path
        self.base_dir = base_dir
        self.buffer = memoryview(buffer)
        self.writable = writable
        self._fd = fd
        self._map = mapping
        self._externals: dict[Path, ExternalFile] = {}
        self.closed = False
        self.id = next(_ids)
        _live[self.id] = weakref.ref(self, lambda _, key=self.id: _live.pop(key, None))

    @classmethod
    def open(cls, path: Path) -> ModelSource:
        """Map a model file copy-on-write (GDS301 if it cannot be opened, GDS302 if it is empty)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            hint = "check the path" if isinstance(e, FileNotFoundError) else ""
            raise model_error(MODEL_UNREADABLE, f"cannot open model `{path}`: {e.strerror}",
                              location=str(path), hint=hint) from None
        try:
            size = os.fstat(fd).st_size
            if not size:
                raise model_error(MODEL_CORRUPT, f"model file `{path}` is empty", location=str(path))
            mapping = mmap.mmap(fd, size, access=mmap.ACCESS_COPY)
        except OSError as e:  # a folder, a device, a file system that cannot map
            os.close(fd)
            raise model_error(MODEL_UNREADABLE, f"cannot read model `{path}`: {e.strerror}",
                              location=str(path)) from None
        except BaseException:
            os.close(fd)
            raise
        return cls(mapping, path=path, base_dir=path.parent, fd=fd, mapping=mapping, writable=True)

    def fileno(self) -> int:
        """The model file's descriptor (for copying ranges of it); only for sources that are files."""
        if self._fd is None:
            raise ValueError("this model was not read from a file")
        return self._fd

    @property
    def is_file(self) -> bool:
        return self._fd is not None

    def external(self, location: str, tensor_name: str) -> ExternalFile:
        """The external data file `location` names, after checking it stays in the model's folder."""
        if self.base_dir is None:
            raise model_error(EXTERNAL_SHORT, f"tensor `{tensor_name}` is stored in external file "
                              f"`{location}`, but the model was imported from memory without a folder",
                              hint="pass base_dir= to import_model, or load the model from its file")
        target = resolve_location(self.base_dir, location, tensor_name)
        if target not in self._externals:
            self._externals[target] = ExternalFile(target)
        return self._externals[target]

    def external_files(self) -> list[ExternalFile]:
        """Every external data file this model's tensors use."""
        return list(self._externals.values())

    def release_pages(self) -> None:
        """Let the kernel reclaim the mapped pages read so far (they are read again if needed).

        Writing an output touches every weight once; without this, those pages stay resident and count
        as the process's memory while the checker and ONNX Runtime load the output too. MADV_PAGEOUT
        (Linux 5.4+, not yet named by Python's mmap module) is non-destructive, unlike MADV_DONTNEED,
        which would drop weights a pass modified in place. Elsewhere it is a no-op.
        """
        if self._map is None or self.closed:
            return
        try:
            self._map.madvise(_MADV_PAGEOUT)
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        """Release the mappings and descriptors now; ones that numpy arrays still view stay open.

        Afterwards the writer no longer copies unchanged parts from this source (it re-encodes them),
        and lazy weights that were never read cannot be read.
        """
        self.closed = True
        for ext in self._externals.values():
            ext.close()
        if self._map is not None:
            try:
                self.buffer.release()
                self._map.close()
            except BufferError:
                return
            self._map = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
