"""`set batch N`: make the batch dim dynamic (graphsurgeon example 10, dynamic batch size)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import onnx_graphsurgeon as gs

from graphdsl.diagnostics import Span
from graphdsl.passes.extract import first_dangling
from graphdsl.passes.set_tensor import plain_dim
from graphdsl.passes.toposort import node_label
from graphdsl.pipeline import Pass, PassContext, PassResult

if TYPE_CHECKING:
    from graphdsl.check import ModelScope

AMBIGUOUS = "GDS323"


@dataclass
class DynamicBatch(Pass):
    """Set dim 0 of every graph input (and of the outputs that share it) and fix Reshape targets.

    `x: float32[1, 3, 28, 28]; Reshape(c, [1, 21632])` -> `x: float32[N, 3, 28, 28]; Reshape(c, [-1, 21632])`

    Like graphsurgeon's example, a Reshape whose constant target starts with the old static batch gets
    -1 there, so it follows the batch. The example rewrites every Reshape; this pass only rewrites those
    whose target starts with the old batch and whose data is not known to have another dim 0 (then it
    warns and leaves the Reshape). Where the target already has a -1 the first element becomes 0 (copy
    dim 0 of the data). Shapes recorded on intermediate tensors were inferred for the old batch and
    would now be wrong (and constant folding would bake them in), so they are dropped: shape inference
    recomputes them.

    Args:
        dim: the new dim 0: a symbolic name (dynamic), an int (a fixed batch) or None (unknown).
    """

    name = "dynamic_batch"
    dim: object = "batch"
    span: Span | None = None

    def check(self, scope: "ModelScope") -> None:
        return None  # changes shapes, not names

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        old = {t.shape[0] for t in graph.inputs if t.shape}
        static = {d for d in old if isinstance(d, int)}
        if len(static) > 1:
            ctx.warn(AMBIGUOUS, f"graph inputs have different static batch sizes {sorted(static)}",
                     hint="Reshapes starting with any of them are rewritten; check the result")
        reshapes = sum(fix_reshape(n, static or {1}, graph, ctx, warn_only=not static)
                       for n in graph.nodes if n.op == "Reshape")
        batch = plain_dim(self.dim)
        inputs = _set_dim0([t for t in graph.inputs if t.shape], batch)
        outputs = _set_dim0([t for t in graph.outputs if t.shape and t.shape[0] in old], batch)
        forgotten = forget_intermediate_shapes(graph)
        counts = {"inputs": inputs, "outputs": outputs, "reshapes": reshapes, "shapes_dropped": forgotten}
        return PassResult(changed=any(counts.values()), counts={k: v for k, v in counts.items() if v})


def _set_dim0(tensors: list[gs.Variable], batch: object) -> int:
    changed = 0
    for tensor in tensors:
        if tensor.shape[0] != batch:
            tensor.shape = [batch] + list(tensor.shape[1:])
            changed += 1
    return changed


def fix_reshape(node: gs.Node, batches: set[int], graph: gs.Graph, ctx: PassContext,
                warn_only: bool = False) -> bool:
    """Replace the old batch at the start of a Reshape's constant target by -1 (or 0); True if done.

    With `warn_only` (the inputs had no static batch, so 1, the usual export batch, is only a guess)
    a target that would be rewritten is reported instead.
    """
    target = node.inputs[1] if len(node.inputs) > 1 else None
    if not isinstance(target, gs.Constant):
        _warn_if_foldable(node, target, ctx)
        return False
    values = np.asarray(target.values)
    data = node.inputs[0]
    if values.ndim != 1 or not values.size or int(values[0]) not in batches or isinstance(data, gs.Constant):
        return False  # not a batch-leading target, or a weight being reshaped
    lead = data.shape[0] if data.shape else None
    if isinstance(lead, int) and lead not in batches:
        _warn(ctx, node, f"its target starts with the old batch {int(values[0])} but its data has dim 0 = "
                         f"{lead}; left unchanged")
        return False
    if -1 in values[1:] and node.attrs.get("allowzero", 0):
        _warn(ctx, node, "its target has a -1 already and allowzero=1, so dim 0 cannot follow the batch")
        return False
    if warn_only:
        _warn(ctx, node, f"its target starts with {int(values[0])} but the graph inputs have no static "
                         "batch to compare with; left unchanged", hint="run `set batch` before setting "
                         "input shapes, or set this Reshape's target with a rule")
        return False
    if lead is None:
        _warn(ctx, node, "the shape of its data is unknown; assumed its dim 0 is the batch")
    new = values.copy()
    new[0] = 0 if -1 in values[1:] else -1  # only one -1 is allowed; 0 copies the data's dim 0
    _set_target(node, target, new, graph)
    return True


def _set_target(node: gs.Node, target: gs.Constant, values: np.ndarray, graph: gs.Graph) -> None:
    if len(target.outputs) == 1:
        target.values = values
        return
    # the constant is shared with other nodes, which must keep it: this Reshape gets its own copy
    names = set(graph.tensors())
    name = next(f"{target.name}_dynamic_batch{i or ''}" for i in range(len(names) + 1)
                if f"{target.name}_dynamic_batch{i or ''}" not in names)
    node.inputs[1] = gs.Constant(name, values)


def _warn_if_foldable(node: gs.Node, target: gs.Tensor | None, ctx: PassContext) -> None:
    # a target computed from constants alone still holds the static batch, hidden from this pass
    if target is not None and first_dangling(target, set()) is None and target.inputs:
        _warn(ctx, node, "its target is computed from constants only, so it may hold the static batch",
              hint="run `fold constants` before `set batch`")


def _warn(ctx: PassContext, node: gs.Node, why: str, hint: str = "") -> None:
    ctx.warn(AMBIGUOUS, f"Reshape `{node_label(node)}`: {why}",
             hint=hint or "check this Reshape with a batch other than the old one (`verify shape`)",
             location=f"node '{node_label(node)}'")


def forget_intermediate_shapes(graph: gs.Graph) -> int:
    """Drop the shapes of tensors that are neither graph inputs nor outputs nor constants; keep dtypes."""
    io = {id(t) for t in graph.inputs + graph.outputs}
    dropped = 0
    for tensor in graph.tensors().values():
        if isinstance(tensor, gs.Variable) and id(tensor) not in io and tensor.shape is not None:
            tensor.shape = None
            dropped += 1
    return dropped


__all__ = ["DynamicBatch", "fix_reshape", "forget_intermediate_shapes"]
