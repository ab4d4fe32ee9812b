"""`save "out.onnx"`: where the result goes. Writing waits until verification has passed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from graphdsl.diagnostics import Span
from graphdsl.pipeline import Pass, PassContext, PassResult, SaveRequest


@dataclass
class Save(Pass):
    """Record an output file; the runner writes it atomically once the whole pipeline verified.

    Args:
        path: the model file to write (relative paths are relative to the script).
        external: a file name for external weight data (next to the model), or None to embed weights;
            models over 2 GB always get external data.
        size_threshold: tensors smaller than this many bytes stay embedded when `external` is set.
        ir_version: the IR version to write; default: the newest the installed onnxruntime reads.
    """

    name = "save"
    read_only = True
    path: Path
    external: str | None = None
    size_threshold: int = 1024
    ir_version: int | None = None
    span: Span | None = None

    def check(self, scope) -> None:
        return None

    def apply(self, graph, ctx: PassContext) -> PassResult:
        options = {"external_data": self.external, "size_threshold": self.size_threshold,
                   "ir_version": self.ir_version}
        ctx.saves.append(SaveRequest(Path(self.path), options, self.span))
        return PassResult(changed=False, notes=[f"will write {self.path}"])
