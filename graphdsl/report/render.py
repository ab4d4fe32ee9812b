"""Rich renderables for reports: tables of passes, model summary, I/O signature, verification.

Every function here is a pure function of the report data, so golden tests can render into a
`Console(file=io.StringIO(), width=100, color_system=None)` and compare text.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any, Iterator

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from graphdsl.diagnostics import Severity, render_text

if TYPE_CHECKING:
    from graphdsl.report.graphdiff import GraphDiff
    from graphdsl.report.model import PassRecord, Report
    from graphdsl.report.summary import ModelSummary, TensorInfo
    from graphdsl.verify import OutputCheck, Verification

MINUS = "\u2212"  # a real minus sign: `Mul −12` reads better than a hyphen
WIDTH = 100
_SEVERITY_STYLE = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.NOTE: "cyan"}


def add_row(table: Table, *cells: str | Text, **options: Any) -> None:
    """`table.add_row` with plain strings taken literally: a shape like `[batch, 128]` is not markup."""
    table.add_row(*(Text(c) if isinstance(c, str) else c for c in cells), **options)


def render_report(report: "Report") -> Iterator[RenderableType]:
    """The whole report, section by section."""
    title = Text.assemble(("graphdsl", "bold"), " ", report.script, " on ", (report.model, "bold"))
    yield title
    yield passes_table(report)
    yield summary_table(report.before, report.after)
    yield io_table(report.before, report.after)
    if report.verification is not None:
        yield verification_table(report.verification)
    else:
        yield Text("verification: not run", style="dim")
    if report.diagnostics:
        yield diagnostics_group(report)
    for path in report.outputs:
        yield Text.assemble("wrote ", (path, "bold"))


# --- passes ---------------------------------------------------------------------------------------------


def signed(n: int) -> str:
    """`+3`, `−12`, `0`."""
    return f"+{n}" if n > 0 else (f"{MINUS}{-n}" if n < 0 else "0")


def op_delta_text(delta: dict[str, int]) -> str:
    """`Mul −12, Gelu +12`: decreases first, then increases, each by size and then name."""
    order = sorted(delta.items(), key=lambda kv: (kv[1] > 0, -abs(kv[1]), kv[0]))
    return ", ".join(f"{op} {signed(n)}" for op, n in order)


def _changes(added: int, removed: int, changed: int) -> str:
    return f"+{added} {MINUS}{removed} ~{changed}"


def duration(seconds: float) -> str:
    """`0.4 ms`, `12 ms`, `1.25 s`."""
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def _pass_cell(record: "PassRecord") -> Text:
    text = Text(record.description or record.name, style="bold")
    details = [_short_location(record.location)] if record.location else []
    details += [", ".join(f"{k} {v}" for k, v in record.counts.items())] if record.counts else []
    details += record.notes
    for line in details:
        text.append("\n" + line, style="dim")
    return text


def _short_location(location: str) -> str:
    """`examples/quickstart.gds:5:1` -> `quickstart.gds:5` (the JSON keeps the whole location)."""
    path, _, rest = location.rpartition(".gds:")
    return f"{path.rsplit('/', 1)[-1]}.gds:{rest.split(':')[0]}" if path else location


def _diff_cells(diff: "GraphDiff | None") -> tuple[str, str, str]:
    if diff is None:
        return "", "", ""
    c = diff.counts()
    return (_changes(c["nodes_added"], c["nodes_removed"], c["nodes_changed"]),
            _changes(c["initializers_added"], c["initializers_removed"], c["initializers_changed"]),
            op_delta_text(diff.op_delta))


def passes_table(report: "Report") -> Table:
    """A row per pass (nodes and initializers as +added −removed ~changed, op delta, time), then totals."""
    table = Table(title="Passes", box=box.SIMPLE_HEAD, title_justify="left", expand=True, pad_edge=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("pass", ratio=3, overflow="fold")
    table.add_column("nodes", no_wrap=True)
    table.add_column("inits", no_wrap=True)
    table.add_column("op delta", ratio=2, overflow="fold")
    table.add_column("time", justify="right", no_wrap=True)
    for index, record in enumerate(report.passes, 1):
        add_row(table, str(index), _pass_cell(record), *_diff_cells(record.diff), duration(record.seconds),
                end_section=index == len(report.passes))
    t = report.totals()
    add_row(table, "", Text("total", style="bold"),
            _changes(t["nodes_added"], t["nodes_removed"], t["nodes_changed"]),
            _changes(t["initializers_added"], t["initializers_removed"], t["initializers_changed"]),
            op_delta_text(t["op_delta"]), duration(sum(p.seconds for p in report.passes)))
    return table


# --- the model before and after -------------------------------------------------------------------------


def size(n: int) -> str:
    """Bytes in decimal units: `812 B`, `44.8 MB`."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover - the loop returns at GB


def _grouped(n: int) -> str:
    return f"{n:,}"


def _delta(before: int, after: int, fmt=_grouped) -> Text:
    d = after - before
    if d == 0:
        return Text("0", style="dim")
    sign = "+" if d > 0 else MINUS
    return Text(sign + fmt(abs(d)), style="green" if d < 0 else "yellow")


def summary_table(before: "ModelSummary", after: "ModelSummary") -> Table:
    """Nodes, op types, initializers, parameters and bytes, before and after."""
    table = Table(title="Model", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    table.add_column("")
    for name in ("before", "after", "change"):
        table.add_column(name, justify="right")
    rows = [("nodes", before.node_count, after.node_count, _grouped),
            ("op types", len(before.op_histogram), len(after.op_histogram), _grouped),
            ("initializers", before.initializer_count, after.initializer_count, _grouped),
            ("parameters", before.parameter_count, after.parameter_count, _grouped),
            ("weight bytes", before.parameter_bytes, after.parameter_bytes, size)]
    for label, b, a, fmt in rows:
        add_row(table, label, fmt(b), fmt(a), _delta(b, a, fmt))
    return table


def render_summary(summary: "ModelSummary") -> Iterator[RenderableType]:
    """One model on its own (`graphdsl inspect`): counts, I/O signature, op histogram."""
    yield Text(f"{summary.node_count:,} nodes, {len(summary.op_histogram)} op types, "
               f"{summary.initializer_count:,} initializers, {summary.parameter_count:,} parameters "
               f"({size(summary.parameter_bytes)})")
    table = Table(title="Inputs and outputs", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for name in ("", "name", "type"):
        table.add_column(name)
    for kind, tensors in (("input", summary.inputs), ("output", summary.outputs)):
        for t in tensors:
            add_row(table, kind, t.name, t.signature)
    yield table
    ops = Table(title="Ops", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    ops.add_column("op")
    ops.add_column("nodes", justify="right")
    for op, n in summary.op_histogram.items():
        add_row(ops, op, f"{n:,}")
    yield ops


def io_table(before: "ModelSummary", after: "ModelSummary") -> Table:
    """The input/output signature before and after; rows that changed are highlighted."""
    table = Table(title="Inputs and outputs", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for name in ("", "name", "before", "after"):
        table.add_column(name)
    for kind, old, new in (("input", before.inputs, after.inputs), ("output", before.outputs, after.outputs)):
        for name, b, a in _paired(old, new):
            same = b is not None and a is not None and b.signature == a.signature
            style = "" if same else "yellow"
            after_text = Text(a.signature if a else "—", style=style)
            add_row(table, kind, name, b.signature if b else "—", after_text)
    return table


def _paired(old: list["TensorInfo"], new: list["TensorInfo"]):
    """(name, before, after) in the order of the result, then the ones the result dropped."""
    by_name = {t.name: t for t in old}
    seen = set()
    for t in new:
        seen.add(t.name)
        yield t.name, by_name.get(t.name), t
    for t in old:
        if t.name not in seen:
            yield t.name, t, None


# --- verification ---------------------------------------------------------------------------------------


def number(x: float | None) -> str:
    """Three significant digits; `—` for a value not measured."""
    if x is None:
        return "—"
    if x == 0:
        return "0"
    return f"{x:.3g}"


def _cosine(x: float | None) -> str:
    return "—" if x is None else f"{x:.6f}"


def _output_cell(check: "OutputCheck") -> Text:
    text = Text(check.name, style="bold")
    if check.reference_name and check.reference_name != check.name:
        text.append(f" \u2190 {check.reference_name}")
    text.append(f"\n{check.dtype} {list(check.shape)}", style="dim")
    if check.note:
        text.append("\n" + check.note, style="dim")
    return text


def verification_table(verification: "Verification") -> Table:
    """Per output: errors, cosine similarity, ORT's own noise, the tolerances and the verdict."""
    verdict = Text("PASS", style="bold green") if verification.passed else Text("FAIL", style="bold red")
    n = verification.samples
    title = Text.assemble("Verification: ", verdict, f" ({n} sample{'s' if n != 1 else ''})")
    caption = Text("\n".join(verification.messages)) if verification.messages else None
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False, caption=caption,
                  caption_justify="left", expand=True)
    table.add_column("output", ratio=1)
    for name in ("max abs", "max rel", "cosine", "noise", "atol", "rtol"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("result", no_wrap=True)
    for c in verification.outputs:
        result = Text("PASS", style="bold green") if c.passed else Text("FAIL", style="bold red")
        add_row(table, _output_cell(c), number(c.max_abs), number(c.max_rel), _cosine(c.cosine),
                number(c.noise), number(c.atol), number(c.rtol), result)
    return table


# --- diagnostics and export -----------------------------------------------------------------------------


def diagnostics_group(report: "Report") -> Group:
    """Warnings and errors, as `graphdsl.diagnostics.render_text` prints them."""
    parts: list[RenderableType] = [Text("Diagnostics", style="bold")]
    for d in report.diagnostics:
        parts.append(Text(render_text(d), style=_SEVERITY_STYLE.get(d.severity, "")))
    return Group(*parts)


def _recording_console(color: bool) -> Console:
    return Console(record=True, file=io.StringIO(), width=WIDTH, force_terminal=color,
                   color_system="truecolor" if color else None, force_jupyter=False, legacy_windows=False)


def plain_text(renderable: Any) -> str:
    """The renderable as plain text, WIDTH columns, no colour (what golden tests compare)."""
    console = _recording_console(color=False)
    console.print(renderable)
    return console.export_text()


def export(renderable: Any, kind: str) -> str:
    """The renderable as a standalone `html` or `svg` document, with colours."""
    console = _recording_console(color=True)
    console.print(renderable)
    if kind == "svg":
        return _searchable(console.export_svg(title="graphdsl report"))
    return console.export_html(inline_styles=True)


def _searchable(svg: str) -> str:
    """Single spaces between words as plain spaces, so the SVG's text can be searched and grepped.

    rich writes every space as `&#160;` to keep runs of spaces; a lone space between two characters is
    kept by SVG as it is, and each text element has a fixed `textLength`, so nothing moves.
    """
    return re.sub(r"(?<=[^\s;>])&#160;(?=[^&\s<])", " ", svg)


def mimebundle(renderable: Any) -> dict[str, str]:
    """Jupyter's view of a report object: plain text and HTML."""
    return {"text/plain": plain_text(renderable), "text/html": export(renderable, "html")}
