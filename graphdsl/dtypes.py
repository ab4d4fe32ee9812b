"""Element type names as scripts write them (`float16`, `int64`) and their ONNX/numpy equivalents."""

from __future__ import annotations

import numpy as np
import onnx

from graphdsl.diagnostics import script_error, suggestion_label
from graphdsl.syntax.names import span_of

UNKNOWN_DTYPE = "GDS110"

# numpy's spelling for the three ONNX names that differ; the rest are ONNX's names, lowercased.
_RENAMED = {"FLOAT": "float32", "DOUBLE": "float64", "FLOAT16": "float16"}
NAMES: dict[str, int] = {
    _RENAMED.get(name, name.lower()): value
    for name, value in onnx.TensorProto.DataType.items() if name != "UNDEFINED"
}
ALIASES = {"float": "float32", "double": "float64", "half": "float16", "fp32": "float32", "fp16": "float16",
           "bf16": "bfloat16", "fp64": "float64"}


def onnx_dtype(name: str) -> int:
    """The TensorProto.DataType of a dtype name; unknown names are a script error with a suggestion."""
    key = ALIASES.get(name, name)
    if key not in NAMES:
        raise script_error(UNKNOWN_DTYPE, f"unknown dtype `{name}`", span_of(name),
                           label=suggestion_label(name, list(NAMES) + list(ALIASES)),
                           hint="dtypes: " + ", ".join(sorted(NAMES)))
    return NAMES[key]


def numpy_dtype(name: str) -> np.dtype:
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(onnx_dtype(name)))


def dtype_name(dtype: object) -> str:
    """A script-style name for a numpy dtype or an ONNX DataType value."""
    if isinstance(dtype, int):
        return next((n for n, v in NAMES.items() if v == dtype), str(dtype))
    try:
        return dtype_name(onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
    except (TypeError, KeyError, ValueError):
        return str(dtype)
