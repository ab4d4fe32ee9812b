"""Parameter counts for reports, from shapes and dtypes alone: no lazy weight is read."""

from __future__ import annotations

import math

import numpy as np
import onnx_graphsurgeon as gs

from graphdsl.onnxio.values import ExternalValues
from graphdsl.onnxio.walk import constants


def model_stats(graph: gs.Graph) -> dict:
    """Parameter statistics of a graph, its subgraphs and functions.

    Every Constant counts once: initializers and Constant-node values alike (exporters put weights in
    either). Lazy values report their size from the header, so nothing is read from disk.

    Args:
        graph: The graph.

    Returns:
        {"parameters": element count, "parameter_bytes": bytes as stored, "constants": number of
        constant tensors, "external_bytes": bytes stored in external data files}.
    """
    count = nbytes = external = tensors = 0
    for t in constants(graph):
        values = t._values
        tensors += 1
        count += math.prod(values.shape)
        stored = getattr(values, "nbytes", None)
        size = int(stored) if stored is not None else _itemsize(values) * math.prod(values.shape)
        nbytes += size
        if isinstance(values, ExternalValues):
            external += size
    return {"parameters": count, "parameter_bytes": nbytes, "constants": tensors, "external_bytes": external}


def _itemsize(values) -> int:
    try:
        return np.dtype(values.dtype).itemsize
    except TypeError:
        return 0
