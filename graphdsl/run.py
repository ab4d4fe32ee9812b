"""Running a compiled pipeline on a model: passes in order, a diff around each, verification, outputs.

Nothing is written until the result has passed `onnx.checker` and the ONNX Runtime comparison (unless
`force`); every output is written atomically, and the input model is never modified.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnx

from graphdsl.diagnostics import Diagnostic, ExitCode, GraphdslError, ModelError, Severity, model_error
from graphdsl import outputs
from graphdsl.gcpause import gc_paused
from graphdsl.pipeline import PassContext

if TYPE_CHECKING:
    import onnx_graphsurgeon as gs
    from rich.console import Console

    from graphdsl.compile import Pipeline
    from graphdsl.onnxio import LoadedModel, ModelMeta
    from graphdsl.report import Report
    from graphdsl.verify import Verification

NO_MODEL = "GDS305"
RESULT_INVALID = "GDS306"
VERIFY_FAILED = "GDS401"


@dataclass
class RunOptions:
    """How to run: where to write, how much to verify. The CLI's flags map one to one onto these."""

    output: Path | None = None
    verify_each: bool = False
    no_verify: bool = False
    force: bool = False
    atol: float | None = None
    rtol: float | None = None
    overwrite_input: bool = False
    quiet: bool = True
    console: "Console | None" = None
    dims: dict[str, int] = field(default_factory=dict)  # symbolic dim -> size, from `verify shape`
    shapes: dict[str, list] = field(default_factory=dict)  # input -> `verify shape` sizes, for open dims


@dataclass
class Result:
    """What a run produced: the graph, the report, the verification, and the files written."""

    graph: "gs.Graph"
    meta: "ModelMeta"
    report: "Report"
    verification: "Verification | None"
    checker: list[Diagnostic]
    written: list[Path] = field(default_factory=list)
    ir_version: int | None = None

    @property
    def passed(self) -> bool:
        return not self.checker and (self.verification is None or self.verification.passed)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.passed else ExitCode.VERIFY_FAILED

    @property
    def model(self) -> onnx.ModelProto:
        """The result as an ONNX model (exported on each access)."""
        from graphdsl.onnxio import export_model

        return export_model(self.graph, self.meta, ir_version=self.ir_version)

    def __rich_console__(self, console, options):
        yield self.report

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.report._repr_mimebundle_(include, exclude)


def load_input(model: Any, pipeline: "Pipeline") -> "LoadedModel":
    """The model to run on: an argument (path, ModelProto, LoadedModel) or the script's `model`."""
    from graphdsl.onnxio import LoadedModel, import_model, read_model

    if model is None:
        if pipeline.model_path is None:
            raise model_error(NO_MODEL, "no model to run on", location=pipeline.source,
                              hint='name one in the script (`model "m.onnx"`) or on the command line (-i)')
        model = pipeline.model_path
    if isinstance(model, (str, Path)):
        return read_model(Path(model))
    if isinstance(model, onnx.ModelProto):
        return import_model(model)
    if isinstance(model, LoadedModel):
        return model
    raise TypeError(f"expected a path, an onnx.ModelProto or a LoadedModel, got {type(model).__name__}")


def run_pipeline(pipeline: "Pipeline", model: Any = None, **options: Any) -> Result:
    """Run every pass, verify the result against the input model, write outputs if it passed."""
    from graphdsl.report import model_summary, snapshot
    from graphdsl.report.progress import progress

    opts = RunOptions(**options)
    loaded = load_input(model, pipeline)
    # what the result is compared against: the input file, or a copy taken before any pass ran
    reference = loaded.path or (model if isinstance(model, onnx.ModelProto) else _export(loaded.graph, loaded.meta, None))
    pipeline.check(loaded)
    first = snapshot(loaded.graph)  # the summary's and the first pass's: one walk over the graph
    before = model_summary(loaded.graph, first)
    opts.dims = _dims_from_shapes(pipeline.verify_shapes, loaded.graph)
    opts.shapes = {name: list(shape) for name, shape in pipeline.verify_shapes.items()}
    ctx = PassContext(meta=loaded.meta, model_path=loaded.path, script_dir=_script_dir(pipeline))
    with progress(opts.console, opts.quiet) as report_progress, gc_paused(promote=True):
        ctx.progress = report_progress
        graph, records, last = _run_passes(pipeline, loaded, ctx, opts, reference, first)
        ir_version = _ir_version(pipeline, graph)
        staged = outputs.stage(graph, loaded, outputs.requests(ctx.saves, opts.output), ir_version,
                               opts.overwrite_input)
        try:
            # the staged file of the final graph is what gets checked; without one, an in-memory export
            candidate = next((s.staged_model for s in staged if s.final_graph), None) or \
                _export(graph, loaded.meta, ir_version)
            checker, verification = _verify(candidate, reference, pipeline, opts, ctx)
            result = Result(graph, loaded.meta, None, verification, checker, ir_version=ir_version)
            if result.passed or opts.force:
                result.written = outputs.commit(staged)
        finally:
            outputs.discard(staged)
    result.report = _report(pipeline, loaded, before, model_summary(graph, last), records, result, ctx)
    return result


def _dims_from_shapes(shapes: dict[str, list], graph) -> dict[str, int]:
    """`verify shape x [1, 3, 640, 640]` -> sizes for the symbolic dims of input x (`h` -> 640)."""
    from graphdsl.lookup import missing_name

    inputs = {t.name: t for t in graph.inputs}
    dims: dict[str, int] = {}
    for name, shape in shapes.items():
        if name not in inputs:
            raise ModelError(missing_name("input", name, inputs, "GDS104"))
        declared = list(inputs[name].shape or [])
        if len(declared) != len(shape):
            raise model_error("GDS118", f"input `{name}` has rank {len(declared)}, `verify shape` gives "
                              f"{len(shape)} dims", span=getattr(name, "span", None),
                              hint=f"the model declares {declared}")
        for symbolic, size in zip(declared, shape):
            if isinstance(symbolic, str) and isinstance(size, int):
                dims[symbolic] = size
    return dims


def _script_dir(pipeline: "Pipeline") -> Path:
    return Path(pipeline.source).parent if pipeline.source != "<script>" else Path.cwd()


def _run_passes(pipeline, loaded, ctx: PassContext, opts: RunOptions, reference, first):
    """Run the passes; returns the graph, a record per pass, and the final graph's snapshot."""
    from graphdsl.report import PassRecord, diff, snapshot

    graph, records = loaded.graph, []
    passes = pipeline.passes
    latest = first  # the snapshot after the last pass is the one before the next: taken once
    for index, p in enumerate(passes):
        ctx.span = p.span
        before = latest if not p.read_only else None
        start = time.perf_counter()
        outcome = p.apply(graph, ctx)
        seconds = time.perf_counter() - start
        graph = outcome.graph if outcome.graph is not None else graph
        if p.read_only and ctx.saves and ctx.saves[-1].span is p.span and _changes_after(passes, index):
            ctx.saves[-1].snapshot = _export(graph, loaded.meta, _ir_version(pipeline, graph))
        latest = snapshot(graph) if before is not None else latest
        origin = pipeline.origins.get(index)
        description = (p.span.text if p.span else p.describe()) + (f"  [from {origin}]" if origin else "")
        records.append(PassRecord(name=type(p).name, description=description, location=str(p.span or ""),
                                  seconds=seconds, diff=diff(before, latest) if before else None,
                                  counts=dict(outcome.counts), notes=list(outcome.notes),
                                  package=origin or ""))
        if opts.verify_each and not p.read_only:
            _verify_step(graph, loaded, pipeline, opts, ctx, reference, p)
    return graph, records, latest


def _changes_after(passes, index: int) -> bool:
    return any(not p.read_only for p in passes[index + 1:])


def _verify_step(graph, loaded, pipeline, opts, ctx, reference, p) -> None:
    """--verify-each: stop at the first pass whose result is invalid or computes something else."""
    candidate = _export(graph, loaded.meta, _ir_version(pipeline, graph))
    checker, verification = _verify(candidate, reference, pipeline, opts, ctx)
    failed = checker or (verification is not None and not verification.passed)
    if failed:
        detail = checker[0].message if checker else _worst(verification)
        raise GraphdslError(Diagnostic(VERIFY_FAILED, f"verification failed after `{p.span.text if p.span else p.describe()}`: {detail}",
                                       span=p.span, label="this pass changed what the model computes",
                                       hints=("run without --verify-each to see the whole report",)),
                            ExitCode.VERIFY_FAILED)


def _worst(verification) -> str:
    bad = [o for o in verification.outputs if not o.passed]
    return f"output `{bad[0].name}` differs by {bad[0].max_abs:.3g}" if bad else "outputs differ"


def _ir_version(pipeline: "Pipeline", graph) -> int | None:
    """An explicit `convert ir` wins; otherwise the newest IR the installed onnxruntime reads."""
    if any(type(p).name == "convert_ir" for p in pipeline.passes):
        return graph.ir_version
    from graphdsl.onnxio import default_ir_version

    limit = default_ir_version()
    return min(graph.ir_version, limit) if graph.ir_version else limit


def _export(graph, meta, ir_version) -> onnx.ModelProto:
    from graphdsl.onnxio import export_model

    return export_model(graph, meta, ir_version=ir_version)


def _verify(candidate: onnx.ModelProto, reference, pipeline, opts: RunOptions, ctx: PassContext):
    from graphdsl.verify import VerifySettings, check_model, verify

    # a staged file is checked through its skeleton (beside it, in the staging folder): the checker
    # would otherwise hold its embedded weights twice over, the peak of a whole run
    checker = _new_problems(check_model(candidate, skeleton=True), candidate, reference, ctx)
    if opts.no_verify or not pipeline.compare or checker:
        return checker, None
    settings = dict(pipeline.verify)
    settings.update({k: v for k, v in (("atol", opts.atol), ("rtol", opts.rtol)) if v is not None})
    settings["dims"] = {**opts.dims, **settings.get("dims", {})}
    verify_settings = VerifySettings(**settings)
    verify_settings.shapes = opts.shapes
    return checker, verify(reference, candidate, verify_settings, renames=ctx.renames, progress=ctx.progress)


def _new_problems(found: list[Diagnostic], candidate, reference, ctx: PassContext) -> list[Diagnostic]:
    """Checker errors the script caused. One the input model has too (an output declared without a shape
    fails strict inference in both; a file nested deeper than protobuf parses) is a warning about the
    input, not a failure of the script."""
    from graphdsl.verify import check_model

    files = [str(m) for m in (candidate, reference) if isinstance(m, (str, Path))]

    def words(d: Diagnostic) -> str:  # the checker's own words, without our "the result ..." prefix
        return d.message.split(": ", 1)[-1]

    def problem(d: Diagnostic) -> str:  # ... and without the path of the file it checked
        found = words(d)
        for name in files:
            found = found.replace(name, "<model>")
        return found

    errors = [d for d in found if d.severity == Severity.ERROR]
    if not errors:
        return []
    inherited = {problem(d): words(d) for d in check_model(reference)}
    for d in errors:
        if problem(d) in inherited:
            ctx.diagnostics.append(Diagnostic(d.code, "the input model already fails this check: "
                                              f"{inherited[problem(d)]}", severity=Severity.WARNING,
                                              location="input model"))
    return [d for d in errors if problem(d) not in inherited]


def _report(pipeline, loaded, before, after, records, result: Result, ctx: PassContext) -> "Report":
    from graphdsl.report import Report

    return Report(script=pipeline.source, model=str(loaded.path or "<in-memory model>"), passes=records,
                  before=before, after=after, verification=result.verification,
                  outputs=[str(p) for p in result.written],
                  diagnostics=list(pipeline.warnings) + list(result.checker) + ctx.diagnostics)
