"""The report of one run: what each pass did, the model before and after, the verification, diagnostics.

Plain data; `graphdsl.report.render` turns it into rich renderables. A `Report` renders in a terminal
(`rich.print(report)`), in Jupyter (`_repr_mimebundle_`), and saves as JSON, HTML or SVG.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphdsl.diagnostics import Diagnostic
from graphdsl.diagnostics import to_json as diagnostic_json
from graphdsl.report.graphdiff import GraphDiff
from graphdsl.report.summary import ModelSummary

if TYPE_CHECKING:
    from graphdsl.verify import Verification

FORMAT = "graphdsl-report/1"
COUNT_KEYS = ("nodes_added", "nodes_removed", "nodes_changed", "initializers_added", "initializers_removed",
              "initializers_changed")


@dataclass
class PassRecord:
    """One pass as it ran.

    Attributes:
        name: the pass's name (`fold_constants`).
        description: the pass with its parameters (`fold_constants(size_threshold=1024)`).
        location: where the script invoked it (`model.gds:3:1`), or "".
        seconds: how long `apply` took.
        diff: what changed in the graph; None for read-only passes (`save`, `verify`).
        counts: the pass's own counts (`{"folded": 12}`).
        notes: the pass's own remarks.
        package: for a pass an installed package provides (entry point `graphdsl.passes`), that
            package and its version (`my-passes 1.2.3`); "" for graphdsl's own.
    """

    name: str
    description: str
    location: str
    seconds: float
    diff: GraphDiff | None
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    package: str = ""

    def to_json(self) -> dict[str, Any]:
        """Keys: name, description, location, counts, notes, diff (`GraphDiff.to_json()` or null), package
        (the providing package and version, or null for graphdsl's own passes)."""
        return {"name": self.name, "description": self.description, "location": self.location,
                "counts": dict(self.counts), "notes": list(self.notes),
                "diff": self.diff.to_json() if self.diff is not None else None,
                "package": self.package or None}


@dataclass
class Report:
    """Everything a run did, for people (rich) and machines (`to_json`)."""

    script: str
    model: str
    passes: list[PassRecord]
    before: ModelSummary
    after: ModelSummary
    verification: "Verification | None" = None
    outputs: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def passed(self) -> bool | None:
        """The verification's verdict, or None when nothing was verified."""
        return None if self.verification is None else self.verification.passed

    def totals(self) -> dict[str, Any]:
        """The passes' diffs summed: the `COUNT_KEYS` counts and op_delta (sorted by op, zeros left out)."""
        totals: dict[str, Any] = dict.fromkeys(COUNT_KEYS, 0)
        delta: dict[str, int] = {}
        for record in self.passes:
            if record.diff is None:
                continue
            for key, value in record.diff.counts().items():
                totals[key] += value
            for op, n in record.diff.op_delta.items():
                delta[op] = delta.get(op, 0) + n
        totals["op_delta"] = {op: n for op, n in sorted(delta.items()) if n}
        return totals

    def to_json(self) -> dict[str, Any]:
        """Machine-readable form; keys are never renamed (new ones may be added).

        Keys: format ("graphdsl-report/1"), script, model, passed (bool, or null when not verified),
        passes (`PassRecord.to_json`), totals (`totals()`), before and after (`ModelSummary.to_json`),
        verification (`Verification.to_json` without its timings, or null), outputs (paths written),
        diagnostics (`graphdsl.diagnostics.to_json`), timings. Every duration is under timings, and
        only there: {"passes": [seconds per pass], "total": sum of those, "verification": seconds or
        null}, so tests and diffs can drop that one key.
        """
        verification = None
        if self.verification is not None:
            verification = self.verification.to_json()
            verification.pop("timings", None)
        seconds = [round(p.seconds, 6) for p in self.passes]
        return {"format": FORMAT, "script": self.script, "model": self.model, "passed": self.passed,
                "passes": [p.to_json() for p in self.passes], "totals": self.totals(),
                "before": self.before.to_json(), "after": self.after.to_json(), "verification": verification,
                "outputs": list(self.outputs), "diagnostics": [diagnostic_json(d) for d in self.diagnostics],
                "timings": {"passes": seconds, "total": round(sum(seconds), 6),
                            "verification": None if self.verification is None else self.verification.seconds}}

    def save(self, path: str | Path) -> Path:
        """Write the report as `.json`, `.html` or `.svg` (chosen by suffix), atomically.

        Raises:
            ValueError: for any other suffix.
        """
        from graphdsl.report.render import export

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            data = json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"
        elif suffix in (".html", ".svg"):
            data = export(self, suffix[1:])
        else:
            raise ValueError(f"cannot save a report as `{path.name}`: use .json, .html or .svg")
        _write_atomically(path, data.encode("utf-8"))
        return path

    def __rich_console__(self, console, options):
        from graphdsl.report.render import render_report

        yield from render_report(self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        from graphdsl.report.render import mimebundle

        return mimebundle(self)


def _write_atomically(path: Path, data: bytes) -> None:
    from graphdsl.onnxio.atomic import atomic_write

    with atomic_write(path) as f:
        f.write(data)
