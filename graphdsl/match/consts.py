"""The constant value of a tensor, however the model spells it.

An initializer, the output of a `Constant` node, or the end of a short chain of foldable ops over them
(`Cast(Constant)`, `Unsqueeze(c, axes)`, `Div(1.0, Sqrt(2.0))`, `Shape` of a static shape) is a constant
to the matcher, so one rule covers what different exporters write. Folding is iterative and bounded:
at most `MAX_FOLD_NODES` nodes per query, results of at most `MAX_FOLD_ELEMENTS` elements.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
import onnx_graphsurgeon as gs

MAX_FOLD_NODES = 32
MAX_FOLD_ELEMENTS = 1 << 20
_PENDING = object()


def node_attr(node, name: str, default=None):
    """An attribute of a node, or `default` when it is unset (or set to None)."""
    value = node.attrs.get(name, default)
    return default if value is None else value


def _np_dtype(onnx_type: int) -> np.dtype:
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(int(onnx_type)))


def _axes(node, args: list, index: int = 1) -> list[int] | None:
    if len(args) > index and args[index] is not None:
        return [int(a) for a in np.asarray(args[index]).reshape(-1)]
    axes = node.attrs.get("axes")
    return None if axes is None else [int(a) for a in axes]


def _unsqueeze(node, args):
    out = args[0]
    rank = out.ndim + len(_axes(node, args))
    for axis in sorted(a % rank for a in _axes(node, args)):
        out = np.expand_dims(out, axis)
    return out


def _squeeze(node, args):
    axes = _axes(node, args)
    return np.squeeze(args[0], axis=None if axes is None else tuple(axes))


def _reshape(node, args):
    data, shape = args[0], [int(d) for d in np.asarray(args[1]).reshape(-1)]
    if not node_attr(node, "allowzero", 0):
        shape = [data.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return np.reshape(data, shape)


def _divide(node, args):
    a, b = args
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return (np.trunc(a / b)).astype(np.result_type(a, b))  # ONNX integer Div truncates
    return np.divide(a, b).astype(np.result_type(a, b))


def _binary(fn: Callable) -> Callable:
    def run(node, args):
        a, b = args
        return fn(a, b).astype(np.result_type(a, b))
    return run


def _unary(fn: Callable) -> Callable:
    return lambda node, args: fn(args[0]).astype(args[0].dtype)


def _constant_of_shape(node, args):
    value = node.attrs.get("value")
    fill = np.asarray(value.values).reshape(-1)[0] if value is not None else np.float32(0)
    shape = [int(d) for d in np.asarray(args[0]).reshape(-1)]
    if int(np.prod(shape, dtype=np.int64)) > MAX_FOLD_ELEMENTS:
        raise ValueError("too large")
    return np.full(shape, fill, dtype=np.asarray(fill).dtype)


def _gather(node, args):
    return np.take(args[0], args[1].astype(np.int64), axis=int(node_attr(node, "axis", 0)))


FOLDABLE: dict[str, Callable] = {
    "Identity": lambda node, args: args[0],
    "Cast": lambda node, args: args[0].astype(_np_dtype(node.attrs["to"])),
    "Neg": _unary(np.negative),
    "Abs": _unary(np.abs),
    "Sqrt": _unary(np.sqrt),
    "Reciprocal": _unary(np.reciprocal),
    "Exp": _unary(np.exp),
    "Log": _unary(np.log),
    "Add": _binary(np.add),
    "Sub": _binary(np.subtract),
    "Mul": _binary(np.multiply),
    "Div": _divide,
    "Pow": lambda node, args: np.power(args[0], args[1]).astype(args[0].dtype),
    "Reshape": _reshape,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Transpose": lambda node, args: np.transpose(args[0], node.attrs.get("perm")),
    "Concat": lambda node, args: np.concatenate(args, axis=int(node.attrs["axis"])),
    "ConstantOfShape": _constant_of_shape,
    "Gather": _gather,
}


def constant_node_value(node) -> np.ndarray | None:
    """The value a `Constant` node writes (any of its attribute spellings), or None."""
    attrs = node.attrs
    if "value" in attrs:
        return np.asarray(attrs["value"].values)
    scalars = {"value_float": np.float32, "value_int": np.int64}
    lists = {"value_floats": np.float32, "value_ints": np.int64}
    for name, dtype in scalars.items():
        if name in attrs:
            return np.asarray(attrs[name], dtype=dtype)
    for name, dtype in lists.items():
        if name in attrs:
            return np.asarray(list(attrs[name]), dtype=dtype)
    return None


class Constants:
    """Constant values of tensors, computed once per tensor and remembered.

    Rewrites preserve what every surviving tensor computes, so a remembered value stays right for as
    long as the tensor exists; entries hold the tensor itself so a recycled `id` is never confused.
    """

    def __init__(self, in_graph: Callable[[object], bool] = lambda node: True):
        self.cache: dict[int, tuple[object, object]] = {}
        self.in_graph = in_graph

    def value(self, tensor) -> np.ndarray | None:
        """The tensor's constant value, or None when it is not (or not cheaply) a constant."""
        hit = self.cache.get(id(tensor))
        if hit is not None and hit[0] is tensor:
            return hit[1]
        return self._resolve(tensor)

    def _known(self, tensor) -> object:
        hit = self.cache.get(id(tensor))
        return hit[1] if hit is not None and hit[0] is tensor else _PENDING

    def _store(self, tensor, value) -> None:
        self.cache[id(tensor)] = (tensor, value)

    def _resolve(self, root) -> np.ndarray | None:
        stack, budget, expanded = [root], MAX_FOLD_NODES, set()
        while stack:
            tensor = stack[-1]
            if self._known(tensor) is not _PENDING:
                stack.pop()
                continue
            # a tensor whose inputs were pushed once and are still unresolved sits on a cycle: not constant
            outcome = self._step(tensor, 0 if id(tensor) in expanded else budget)
            if outcome is None:
                budget -= 1
                expanded.add(id(tensor))
                stack.extend(self._unresolved(tensor))
                continue
            self._store(tensor, outcome[0])
            stack.pop()
        return self._known(root)

    def _step(self, tensor, budget: int) -> tuple | None:
        """(value,) when it can be decided now; None when inputs must be resolved first."""
        values = getattr(tensor, "values", None)
        if values is not None:
            return (np.asarray(values),)
        producer = tensor.inputs[0] if tensor.inputs else None
        if producer is None:
            return (None,)
        if producer.op == "Constant":
            return (constant_node_value(producer),)
        if producer.op not in FOLDABLE or not self.in_graph(producer) or len(producer.outputs) != 1:
            return (None,) if producer.op != "Shape" else (_static_shape(producer),)
        if any(_too_big(t) for t in producer.inputs):
            return (None,)  # `_fold` would refuse it: never read it (a Gather of BERT's word embeddings)
        if self._unresolved(tensor):
            return (None,) if budget <= 0 else None
        return (_fold(producer, [self._known(t) for t in producer.inputs]),)

    def _unresolved(self, tensor) -> list:
        producer = tensor.inputs[0]
        return [t for t in producer.inputs if not t.is_empty() and self._known(t) is _PENDING]


def stored_size(tensor) -> int | None:
    """A Constant's element count, told by its shape (`values` would read it); None for other tensors."""
    if not isinstance(tensor, gs.Constant):
        return None
    size = 1
    for dim in tensor.shape:
        size *= dim
    return size


def _too_big(tensor) -> bool:
    """A weight over MAX_FOLD_ELEMENTS."""
    size = stored_size(tensor)
    return size is not None and size > MAX_FOLD_ELEMENTS


def _fold(node, args: list) -> np.ndarray | None:
    if any(a is None for a in args if a is not _PENDING):
        return None
    args = [None if a is _PENDING else a for a in args]
    if any(a is not None and a.size > MAX_FOLD_ELEMENTS for a in args):
        return None
    try:
        with np.errstate(all="ignore"):
            result = np.asarray(FOLDABLE[node.op](node, args))
    except (ValueError, TypeError, KeyError, IndexError):
        return None
    return result if result.size <= MAX_FOLD_ELEMENTS else None


def _static_shape(node) -> np.ndarray | None:
    shape = node.inputs[0].shape if node.inputs else None
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    start, end = int(node_attr(node, "start", 0)), node.attrs.get("end")
    return np.asarray(shape[start:end], dtype=np.int64)
