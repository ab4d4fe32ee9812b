"""What a model holds besides its graph, and what reading a model returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import onnx_graphsurgeon as gs

from graphdsl.onnxio.source import ModelSource


@dataclass
class ModelMeta:
    """The parts of a ModelProto that gs.Graph does not hold, so that writing restores them.

    Attributes:
        metadata_props: The model's key/value metadata, in file order.
        model_version: ModelProto.model_version, or None when the model sets none.
        domain: ModelProto.domain, or None.
        doc_string: ModelProto.doc_string, or None.
        graph_extra: Serialized GraphProto fields of the main graph gs.Graph has no place for
            (quantization_annotation, metadata_props, fields of newer ONNX versions).
        extra: Serialized ModelProto fields not listed above (training_info, configuration, fields of
            newer ONNX versions), written back unchanged.
    """

    metadata_props: dict[str, str] = field(default_factory=dict)
    model_version: int | None = None
    domain: str | None = None
    doc_string: str | None = None
    graph_extra: bytes = b""
    extra: bytes = b""


@dataclass
class LoadedModel:
    """A model read into the project IR.

    The graph's lazy weights view `source` (a copy-on-write mapping of the file), so the mapping
    lives as long as the graph does; `close()` (or `with read_model(p) as m:`) releases it early.

    Attributes:
        graph: The graph, with opset, import_domains, functions, ir_version and producer set as
            gs.import_onnx sets them.
        path: The file it was read from; None for models imported from memory.
        meta: Model-level fields the graph does not hold.
        source: The mapped bytes the graph's lazy values and unchanged parts refer to.
    """

    graph: gs.Graph
    path: Path | None
    meta: ModelMeta
    source: ModelSource | None = field(default=None, repr=False)

    def close(self) -> None:
        """Release the file mapping now; arrays still viewing it keep their part alive."""
        if self.source is not None:
            self.source.close()

    def __enter__(self) -> LoadedModel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
