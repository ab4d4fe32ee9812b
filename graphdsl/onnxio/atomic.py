"""Atomic file replacement: readers see the old file or the whole new one, never half of it.

Write to a temporary file in the destination's folder (so the final `os.replace` is a rename on the
same file system), fsync it, rename it over the destination, and fsync the folder so the rename
itself survives a crash. On any error the temporary file is removed and the destination untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def temp_path(path: Path) -> Path:
    """A fresh hidden name beside `path`, unique enough that concurrent writers never collide."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


def open_temp(path: Path) -> tuple[Path, int]:
    """Create and open (write-only) a new temporary file beside `path`; returns (temp path, fd).

    The file is created with mode 0o666 filtered by the umask, as `open()` would create the final
    file; tempfile's 0o600 would otherwise end up on the renamed result.
    """
    while True:
        temp = temp_path(path)
        try:
            return temp, os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # pragma: no cover - 48 random bits collided
            continue


def commit(temp: Path, path: Path) -> None:
    """Rename a finished (already fsynced) temporary file over `path` and make the rename durable."""
    os.replace(temp, path)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """fsync a folder, so that renames inside it are on disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows, or a folder we may not read
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def discard(temp: Path) -> None:
    """Remove a temporary file, ignoring that it may already be gone."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Write a file atomically: a binary file object that replaces `path` only if the block succeeds.

    Args:
        path: The file to (re)place. Its folder must exist.

    Yields:
        A binary file object open for writing on a temporary file in the same folder.

    Example:
        with atomic_write("report.json") as f:
            f.write(json.dumps(data).encode())
    """
    path = Path(path)
    temp, fd = open_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        commit(temp, path)
    except BaseException:
        discard(temp)
        raise
