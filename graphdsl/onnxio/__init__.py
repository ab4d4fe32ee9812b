"""Fast ONNX file <-> graphsurgeon Graph IO.

Reading maps the file and views the weights in place (no copy); writing streams the model, weights
straight from the mapping, numpy buffers or external files, and replaces the output atomically. Nodes,
value-infos and weights no pass changed are written back byte for byte.

    loaded = read_model("model.onnx")            # LoadedModel(graph, path, meta, source)
    loaded.graph.fold_constants().cleanup()
    write_model(loaded.graph, "out.onnx", loaded.meta, input_path=loaded.path)
"""

from graphdsl.onnxio.atomic import atomic_write
from graphdsl.onnxio.irversion import default_ir_version
from graphdsl.onnxio.meta import LoadedModel, ModelMeta
from graphdsl.onnxio.reader import import_model, read_model
from graphdsl.onnxio.stats import model_stats
from graphdsl.onnxio.writer import WriteResult, export_model, write_model

__all__ = [
    "LoadedModel",
    "ModelMeta",
    "WriteResult",
    "atomic_write",
    "default_ir_version",
    "export_model",
    "import_model",
    "model_stats",
    "read_model",
    "write_model",
]
