"""External data: where a tensor's bytes live when they are not inside the .onnx file.

Locations come from the model, that is from whoever wrote the file, so they are checked before any
of them is opened: relative, no `..`, and — after resolving symlinks — inside the model's folder.
A model that names `../../etc/passwd`, `/dev/zero` or a symlink out of its folder is refused (GDS303)
before a single byte of any external file is read.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from graphdsl.diagnostics import model_error
from graphdsl.onnxio.codes import EXTERNAL_OUTSIDE, EXTERNAL_SHORT, MODEL_CORRUPT


@dataclass(frozen=True)
class ExternalRef:
    """One tensor's external bytes: which file, where in it, how many (None: to the end of the file)."""

    file: ExternalFile
    offset: int
    length: int | None

    @property
    def path(self) -> Path:
        """The data file (resolved, inside the model's folder)."""
        return self.file.path


def parse_entries(entries, tensor_name: str, where: str) -> tuple[str, int, int | None]:
    """(location, offset, length) from a TensorProto's external_data key/value entries."""
    info = {e.key: e.value for e in entries}
    try:
        offset = int(info.get("offset") or 0)
        length = int(info["length"]) if info.get("length") else None
    except ValueError:
        raise model_error(MODEL_CORRUPT, f"tensor `{tensor_name}` has a malformed external data offset or "
                          "length", location=where) from None
    if offset < 0 or (length is not None and length < 0):
        raise model_error(MODEL_CORRUPT, f"tensor `{tensor_name}` declares a negative external data offset "
                          "or length", location=where)
    return info.get("location", ""), offset, length


def resolve_location(base_dir: Path, location: str, tensor_name: str) -> Path:
    """The external data file of a tensor, refused (GDS303) unless it stays inside `base_dir`."""
    where = str(base_dir)
    if not location:
        raise model_error(EXTERNAL_SHORT, f"tensor `{tensor_name}` is stored externally but names no file",
                          location=where)
    # Backslashes: models written on Windows; a POSIX name with a backslash in it is too odd to honour.
    relative = PurePosixPath(location.replace("\\", "/"))
    hint = "external data must be a relative path inside the model's folder"
    if relative.is_absolute() or ".." in relative.parts or ":" in relative.parts[0]:
        raise model_error(EXTERNAL_OUTSIDE, f"tensor `{tensor_name}` points outside the model's folder: "
                          f"`{location}`", location=where, hint=hint)
    root = base_dir.resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root):
        raise model_error(EXTERNAL_OUTSIDE, f"tensor `{tensor_name}`'s external data `{location}` is a link "
                          f"to `{target}`, outside the model's folder", location=where, hint=hint)
    return target


@dataclass(eq=False)
class ExternalFile:
    """An external data file, opened and mapped only when a tensor's bytes are first needed."""

    path: Path
    _fd: int | None = None
    _map: mmap.mmap | None = None

    def size(self) -> int:
        """The file's size now (GDS308 if it is gone)."""
        try:
            return os.stat(self.path).st_size
        except OSError:
            raise model_error(EXTERNAL_SHORT, f"external data file `{self.path.name}` is missing",
                              location=str(self.path)) from None

    def fileno(self) -> int:
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY)
            except OSError as e:
                raise model_error(EXTERNAL_SHORT, f"external data file `{self.path.name}` cannot be opened: "
                                  f"{e.strerror}", location=str(self.path)) from None
        return self._fd

    def buffer(self) -> memoryview:
        """The whole file, mapped copy-on-write: views are writable, and writes never reach the file."""
        if self._map is None:
            size = os.fstat(self.fileno()).st_size
            self._map = mmap.mmap(self.fileno(), size, access=mmap.ACCESS_COPY) if size else None
        return memoryview(self._map) if self._map is not None else memoryview(b"")

    def check(self, ref: ExternalRef, expected: int | None, tensor_name: str) -> int:
        """The byte count of `ref`, after checking the file holds it (GDS308 when it does not)."""
        size = self.size()
        length = ref.length if ref.length is not None else (expected if expected is not None
                                                             else max(0, size - ref.offset))
        if ref.offset + length > size:
            raise model_error(EXTERNAL_SHORT, f"external data file `{self.path.name}` has {size} bytes, but "
                              f"tensor `{tensor_name}` needs bytes {ref.offset}..{ref.offset + length}",
                              location=str(self.path),
                              hint="the data file is truncated or belongs to another model")
        return length

    def close(self) -> None:
        """Unmap and close; a mapping that numpy arrays still view stays until they are gone."""
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:
                return
            self._map = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
