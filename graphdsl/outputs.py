"""Output files: written next to where they go, checked there, and moved into place only once verified.

Each `save` (or `-o`) is written in full into a hidden folder beside its destination, under its final
names, so the model and its external data keep their relative paths. Verification then reads the staged
files directly (no second export in memory), and a verified run moves them into place with `os.replace`
(data files first, the model last); a failed one removes them. Nothing half-written ever carries a
final name, and the input model is never replaced unless asked.
"""

from __future__ import annotations

import os
import shutil
import tempfile
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
    folder = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=final.parent))
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
    """The input model and the external data files its weights are read from."""
    from graphdsl.onnxio.values import ExternalValues

    files = {loaded.path} if loaded.path is not None else set()
    for tensor in loaded.graph.tensors().values():
        values = getattr(tensor, "_values", None)
        path = getattr(getattr(values, "ref", None), "path", None)
        if isinstance(values, ExternalValues) and path is not None:
            files.add(Path(path))
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
    names = sorted(p.name for p in out.folder.iterdir())
    return [n for n in names if n != out.final.name] + [out.final.name]


def commit(staged: list[StagedOutput]) -> list[Path]:
    """Move every staged file into place, then remove the staging folders."""
    written = []
    for out in staged:
        for name in _files(out):
            os.replace(out.folder / name, out.final.parent / name)
        _fsync_dir(out.final.parent)
        written.append(out.final)
    discard(staged)
    return written


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
