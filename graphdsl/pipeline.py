"""Pass infrastructure: what a pass is, what it returns, and the context it runs in.

A pass is a small object with a `name` and `apply(graph, ctx) -> PassResult`. Passes edit the
onnx-graphsurgeon `Graph` in place; one that must build a new graph (an opset conversion goes through
the ONNX proto) returns it in `PassResult.graph`. The manager that runs a list of passes, diffs the graph
around each and verifies lives in `graphdsl.run`; this module holds only the shared vocabulary.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from graphdsl.diagnostics import Diagnostic, Severity, Span

if TYPE_CHECKING:
    import onnx_graphsurgeon as gs

    from graphdsl.onnxio import ModelMeta


@dataclass
class PassResult:
    """What a pass reports about its own work; the manager adds the graph diff."""

    changed: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    graph: "gs.Graph | None" = None  # set only by passes that replace the graph object


@dataclass
class SaveRequest:
    """A `save` statement's output, written only after verification passed."""

    path: Path
    options: dict[str, Any]
    span: Span | None
    snapshot: Any = None  # an exported ModelProto when passes after the save change the graph


@dataclass
class PassContext:
    """Everything a pass may need besides the graph: where files are, what has been renamed, messages."""

    meta: "ModelMeta | None" = None
    model_path: Path | None = None
    script_dir: Path = field(default_factory=Path.cwd)
    # new tensor name -> name in the input model, so verification can compare renamed outputs
    renames: dict[str, str] = field(default_factory=dict)
    saves: list[SaveRequest] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    progress: Callable[[str, float], None] | None = None
    span: Span | None = None  # the statement that invoked the running pass
    ir_version: int | None = None

    def warn(self, code: str, message: str, hint: str = "", location: str = "") -> None:
        self.diagnostics.append(Diagnostic(code, message, span=self.span, severity=Severity.WARNING,
                                           hints=(hint,) if hint else (), location=location))

    def original_name(self, tensor_name: str) -> str:
        return self.renames.get(tensor_name, tensor_name)

    def record_rename(self, old: str, new: str) -> None:
        self.renames[new] = self.renames.pop(old, old)


class Pass:
    """Base class of every pass: built-in (graphdsl.passes) and third-party (entry point `graphdsl.passes`).

    Subclasses are dataclasses whose fields are the pass's parameters, so a script's `apply NAME(k=v)`
    maps straight onto the constructor and the report can show the parameters.
    """

    name: ClassVar[str] = ""
    #: True when the pass only reads the graph (`save`, `verify`): the report shows no diff for it.
    read_only: ClassVar[bool] = False

    def apply(self, graph: "gs.Graph", ctx: PassContext) -> PassResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """The parameters for the report (dataclass fields, minus the span)."""
        if not dataclasses.is_dataclass(self):
            return {}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "span"}

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items() if v is not None)
        name = type(self).name  # a pass may have a parameter called `name` (SetTensor does)
        return f"{name}({args})" if args else name
