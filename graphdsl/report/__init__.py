"""What a run did, for people and for machines: per-pass graph diffs, model summaries, the verification.

`snapshot`/`diff` are cheap enough to run around every pass; `Report` renders through rich (terminal,
Jupyter, HTML, SVG) and serializes to JSON with stable keys. The progress bar helper is
`graphdsl.report.progress.progress` (not re-exported: the name would hide its module).
"""

from graphdsl.report.graphdiff import GraphDiff, GraphSnapshot, diff, snapshot
from graphdsl.report.model import PassRecord, Report
from graphdsl.report.summary import ModelSummary, TensorInfo, model_summary

__all__ = ["GraphDiff", "GraphSnapshot", "ModelSummary", "PassRecord", "Report", "TensorInfo", "diff",
           "model_summary", "snapshot"]
