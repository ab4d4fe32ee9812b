"""What a run did, for people and for machines: per-pass graph diffs, model summaries, the verification.

`snapshot`/`diff` are cheap enough to run around every pass; `Report` renders through rich (terminal,
Jupyter, HTML, SVG) and serializes to JSON with stable keys.
"""

from graphdsl.report.graphdiff import GraphDiff, GraphSnapshot, diff, snapshot

__all__ = ["GraphDiff", "GraphSnapshot", "diff", "snapshot"]
