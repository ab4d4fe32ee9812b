"""Byte ranges of open files, and copying them file to file inside the kernel.

Weights nobody changed are moved with os.copy_file_range (or sendfile): they never pass through
Python memory, and on file systems with reflinks they are not even copied.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol


class OpenFile(Protocol):
    """What a range needs from its file: a descriptor, open for reading."""

    def fileno(self) -> int: ...


@dataclass(frozen=True)
class FileRange:
    """`length` bytes at `offset` of an open file."""

    file: OpenFile
    offset: int
    length: int

    def read(self) -> bytes:
        """The bytes themselves (for in-memory export only: this copies)."""
        return pread_exact(self.file.fileno(), self.offset, self.length)


def pread_exact(fd: int, offset: int, length: int) -> bytes:
    """Read exactly `length` bytes at `offset`; EOFError if the file is shorter."""
    parts, done = [], 0
    while done < length:
        chunk = os.pread(fd, min(length - done, 1 << 24), offset + done)
        if not chunk:
            raise EOFError(f"file ends {length - done} bytes before the range does")
        parts.append(chunk)
        done += len(chunk)
    return b"".join(parts)


def pread_into(fd: int, offset: int, length: int) -> bytearray:
    """Read exactly `length` bytes at `offset` into a new (writable) bytearray, without a second copy."""
    out = bytearray(length)
    view = memoryview(out)
    done = 0
    while done < length:
        n = os.preadv(fd, [view[done:]], offset + done)
        if not n:
            raise EOFError(f"file ends {length - done} bytes before the range does")
        done += n
    return out


def copy_range(src_fd: int, offset: int, length: int, dst_fd: int) -> None:
    """Append `length` bytes at `offset` of src_fd to dst_fd (at its current position)."""
    done = _copy_file_range(src_fd, offset, length, dst_fd)
    if done < length:
        done += _sendfile(src_fd, offset + done, length - done, dst_fd)
    while done < length:  # neither syscall is available here (or they stopped short): plain copy
        chunk = os.pread(src_fd, min(length - done, 1 << 22), offset + done)
        if not chunk:
            raise EOFError(f"source ends {length - done} bytes before the range does")
        write_all(dst_fd, chunk)
        done += len(chunk)


def _copy_file_range(src_fd: int, offset: int, length: int, dst_fd: int) -> int:
    if not hasattr(os, "copy_file_range"):  # pragma: no cover - not Linux
        return 0
    done = 0
    try:
        while done < length:
            n = os.copy_file_range(src_fd, dst_fd, length - done, offset + done)
            if n == 0:
                break
            done += n
    except OSError:  # EXDEV on old kernels, ENOSYS, EINVAL on some file systems: fall back
        pass
    return done


def _sendfile(src_fd: int, offset: int, length: int, dst_fd: int) -> int:
    done = 0
    try:
        while done < length:
            n = os.sendfile(dst_fd, src_fd, offset + done, length - done)
            if n == 0:
                break
            done += n
    except (OSError, AttributeError):  # pragma: no cover - no file-to-file sendfile here
        pass
    return done


def write_all(fd: int, data) -> None:
    """os.write until every byte of `data` (bytes, memoryview or numpy buffer) is written."""
    view = memoryview(data).cast("B")
    while view.nbytes:
        view = view[os.write(fd, view):]
