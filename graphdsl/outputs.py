"""Output files: written next to where they go, checked there, and moved into place only once verified.

Each `save` (or `-o`) is written in full into a hidden folder beside its destination, under its final
names, so the model and its external data keep their relative paths. Verification then reads the staged
files directly (no second export in memory), and a verified run moves them into place with `os.replace`
(data files first, the model last); a failed one removes them. Nothing half-written ever carries a
final name, and the input model is never replaced unless asked.

A process killed outright (SIGKILL, power loss) cleans nothing up: its staging folder stays. Each folder's
name holds the host and process that made it, so the next run writing into the same folder recognises
the ones whose process is gone and sweeps them. A kill between the renames of a commit would leave a
model beside data it does not belong to; so before the first rename the commit writes a journal into the
staging folder (what it moves, and what each move replaces), and the sweep finishes such a commit when
the destination is exactly as the killed process left it, and otherwise only removes the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from graphdsl.diagnostics import model_error
from graphdsl.pipeline import SaveRequest

if TYPE_CHECKING:
    import onnx_graphsurgeon as gs

    from graphdsl.onnxio import LoadedModel

OVERWRITES_INPUT = "GDS304"
STAGE_PREFIX = ".graphdsl-stage-"
JOURNAL = ".graphdsl-commit.json"  # inside a staging folder: the commit has begun


@dataclass
class StagedOutput:
    final: Path  # where the model goes
    folder: Path  # the hidden folder holding it (and its external data) until commit
    final_graph: bool  # True when it holds the graph as the pipeline left it (not a mid-script save)

    @property
    def staged_model(self) -> Path:
        return self.folder / self.final.name


def requests(saves: list[SaveRequest], output: Path | None) -> list[SaveRequest]:
    """The script's saves, with `-o` replacing the last one's path (or added when there is none)."""
    result = list(saves)
    if output is not None:
        if result:
            result[-1] = SaveRequest(output, result[-1].options, result[-1].span, result[-1].snapshot)
        else:
            result.append(SaveRequest(output, {}, None))
    return result


def stage(graph: "gs.Graph", loaded: "LoadedModel", wanted: list[SaveRequest], ir_version: int | None,
          overwrite_input: bool) -> list[StagedOutput]:
    """Write every requested output into its staging folder; on any error, nothing stays behind."""
    staged: list[StagedOutput] = []
    try:
        for req in wanted:
            staged.append(_stage_one(graph, loaded, req, ir_version, overwrite_input))
    except BaseException:
        discard(staged)
        raise
    if loaded.source is not None:  # writing touched every weight: let those pages go before verifying
        loaded.source.release_pages()
    return staged


def _stage_one(graph, loaded, req: SaveRequest, ir_version, overwrite_input: bool) -> StagedOutput:
    from graphdsl.onnxio import import_model, write_model

    final = Path(req.path)
    protected = _input_files(loaded)
    _refuse(final, protected, overwrite_input)
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep(final.parent)
    folder = Path(tempfile.mkdtemp(prefix=_stage_prefix(), dir=final.parent))
    out = StagedOutput(final, folder, final_graph=req.snapshot is None)
    try:
        source_graph, meta = graph, loaded.meta
        if req.snapshot is not None:
            snap = import_model(req.snapshot)
            source_graph, meta = snap.graph, snap.meta
        options = dict(req.options)
        options["ir_version"] = options.get("ir_version") or ir_version
        write_model(source_graph, out.staged_model, meta, **options)
        for name in _files(out):
            _refuse(final.parent / name, protected, overwrite_input)
    except BaseException:
        discard([out])
        raise
    return out


def _input_files(loaded: "LoadedModel") -> set[Path]:
    """The input model and every external data file it names: as read, not as the passes left the graph
    (a pass that replaced all of a file's weights does not make the input's data file free to overwrite)."""
    files = {loaded.path} if loaded.path is not None else set()
    if loaded.source is not None:
        files.update(Path(f.path) for f in loaded.source.external_files())
    return files


def _refuse(target: Path, protected: set[Path], overwrite_input: bool) -> None:
    if overwrite_input or not target.exists():
        return
    for src in protected:
        if target.resolve() == Path(src).resolve() or _same_inode(target, src):
            raise model_error(OVERWRITES_INPUT, f"writing `{target}` would overwrite the input `{src}`",
                              location=str(target), hint="choose another output path, or pass "
                              "--overwrite-input (overwrite_input=True) to replace the input")


def _same_inode(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def _files(out: StagedOutput) -> list[str]:
    """Names in the staging folder, the model last (so a reader never finds a model without its data)."""
    names = sorted(p.name for p in out.folder.iterdir() if p.name != JOURNAL)
    return [n for n in names if n != out.final.name] + [out.final.name]


def commit(staged: list[StagedOutput]) -> list[Path]:
    """Move every staged file into place, then remove the staging folders."""
    written = []
    for out in staged:
        names = _files(out)
        _write_journal(out.folder, out.final.parent, names)
        for name in names:
            os.replace(out.folder / name, out.final.parent / name)
        _fsync_dir(out.final.parent)
        written.append(out.final)
    discard(staged)
    return written


# --- what a killed process left behind ---------------------------------------------------------------


def _host() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _stage_prefix() -> str:
    """`.graphdsl-stage-<host>-<pid>-`: whose folder it is, for the sweep of a later run."""
    return f"{STAGE_PREFIX}{_host()}-{os.getpid()}-"


def _owner(name: str) -> int | None:
    """The pid in a staging folder's name when it was made on this host, else None."""
    parts = name[len(STAGE_PREFIX):].split("-")
    if len(parts) < 3 or parts[0] != _host() or not parts[1].isdigit():
        return None
    return int(parts[1])


def _gone(pid: int, made: float) -> bool:
    """True when the process that made a folder at `made` has ended (a reused pid started later)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        pass
    started = _start_time(pid)
    return started is not None and started > made + 1


def _start_time(pid: int) -> float | None:
    """When a process started (seconds since the epoch), on Linux; None where /proc cannot say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def sweep(folder: Path) -> list[str]:
    """Remove the staging folders in `folder` whose process is gone, first finishing a commit that was
    under way when its process was killed (if nothing has changed since). Returns what was done, one
    line per staging folder; folders of live processes, of other hosts and that are not ours stay."""
    done = []
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(STAGE_PREFIX) and e.is_dir()]
    except OSError:
        return done
    for entry in entries:
        pid = _owner(entry.name)
        try:
            made = entry.stat().st_mtime
        except OSError:
            continue
        if pid is None or not _gone(pid, made):
            continue
        stage = Path(entry.path)
        finished = (stage / JOURNAL).exists() and _finish(stage, folder)
        shutil.rmtree(stage, ignore_errors=True)
        done.append(f"{'finished the interrupted commit of' if finished else 'removed'} `{entry.name}` "
                    f"(process {pid} ended)")
    return done


def _identity(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def _write_journal(stage: Path, dest: Path, names: list[str]) -> None:
    """Before the first rename: each file in commit order, the identity it has (a rename keeps it) and the
    identity of the file it replaces. Durable before anything moves."""
    entries = [{"name": n, "staged": _identity(stage / n), "replaced": _identity(dest / n)} for n in names]
    path = stage / JOURNAL
    with open(path, "w") as f:
        json.dump({"written": time.time(), "files": entries}, f)
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(stage)


def _finish(stage: Path, dest: Path) -> bool:
    """Complete an interrupted commit when every destination file is as the commit left it: moved ones
    are the staged files, the others still what they were. Anything else means the folder has moved on:
    then nothing is touched."""
    try:
        files = json.loads((stage / JOURNAL).read_text())["files"]
    except (OSError, ValueError, KeyError):
        return False
    pending = []
    for entry in files:
        moved = not (stage / entry["name"]).exists()
        expected = entry["staged"] if moved else entry["replaced"]
        if _identity(dest / entry["name"]) != expected:
            return False
        if not moved:
            if _identity(stage / entry["name"]) != entry["staged"]:
                return False
            pending.append(entry["name"])
    for name in pending:
        os.replace(stage / name, dest / name)
    _fsync_dir(dest)
    return bool(pending)


def discard(staged: list[StagedOutput]) -> None:
    for out in staged:
        shutil.rmtree(out.folder, ignore_errors=True)


def _fsync_dir(folder: Path) -> None:
    """Make the renames durable: a crash after this leaves the new files, not a mix."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
