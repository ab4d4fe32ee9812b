"""`fold constants`: evaluate what depends only on constants, with ONNX Runtime, in one linear sweep.

graphsurgeon's `Graph.fold_constants` is not called: on a 100k-node BERT-like model it took about 25 s
(about 37x `onnx.load` + `onnx.save` of the same model), nearly all of it bookkeeping rather than
evaluation: a full `graph.copy()` (about 10 s), three `cleanup()`s (about 6 s), name-keyed `tensors()`
maps rebuilt per step, `_foreign_tensors()` recomputed per subgraph visit, and SynchronizedList edits that
compare nodes with `Node.__eq__`. This driver works on the graph itself, in place:

1. `Constant` nodes become Constant tensors; with `fold_shapes`, Cast pairs around shape arithmetic are
   elided (graphsurgeon's "shape tensor cast elision");
2. one forward pass in topological order marks foldable nodes (every input constant, or written by a
   foldable node) and folds `Shape`/`Size` of statically shaped tensors, and `Gather`/`Slice` of such a
   `Shape`, in Python;
3. the tensors that leave the foldable part (read by a node that does not fold, or graph outputs) are
   computed by ONE ONNX Runtime session over just the nodes they need (`ort_eval`), and become Constants;
4. subgraphs are folded after the graph that holds them (outer constants are then visible inside), `If`
   nodes whose condition folded are inlined (graphsurgeon's renaming kept), functions last; all without
   recursion;
5. one `cleanup` (`passes/cleanup.py`) drops what computed them.

Where the result differs from graphsurgeon's, on purpose: random ops (RandomNormal, RandomUniform, their
*Like forms, Multinomial, Bernoulli) are not folded (a folded sample is one fixed draw, and the output
would change from run to run of the pass); `value_float(s)` Constant nodes give float32 and
`value_int(s)` int64 as ONNX says (graphsurgeon gives float64); `Shape`'s start/end attributes are
honoured; cast elision skips the cases graphsurgeon gets wrong (comparison ops, whose bool output
cannot replace an int cast; constants that are shared or not exact integers; inputs not from a cast);
an inlined `If` branch that returns an outer tensor or a constant gets an Identity or a Constant
instead of a dangling output, every output of a multi-output `If` is rebound, and one read by `Range`
(which needs scalars) goes through a Reshape to a scalar; a node whose outputs
fold only in part keeps an unused placeholder in the folded slots, so the other outputs keep their
positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx_graphsurgeon.ir.tensor import LazyValues

from graphdsl.diagnostics import ModelError, Span, model_error
from graphdsl.gcpause import gc_paused
from graphdsl.graphwalk import (GraphTree, detach_producers, forget_consumers, nested_nodes, set_input,
                                set_output)
from graphdsl.passes.cleanup import remove_dead
from graphdsl.passes.ort_eval import Evaluation, Evaluator
from graphdsl.passes.toposort import is_sorted, node_label, sort_nodes
from graphdsl.pipeline import Pass, PassContext, PassResult

if TYPE_CHECKING:
    from graphdsl.check import ModelScope

FOLD_WARNING = "GDS326"
FOLD_FAILED = "GDS327"

DEFAULT_DOMAINS = (None, "", "ai.onnx")
# graphsurgeon keeps Q/DQ unfolded (TensorRT needs them to place int8 precision)
NO_FOLD = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"})
RANDOM = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                    "Bernoulli"})
CONSTANT_ATTRS = {"value": None, "value_float": np.float32, "value_floats": np.float32,
                  "value_int": np.int64, "value_ints": np.int64}
ELIDE_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Max", "Min", "Concat"})
INT_TYPES = {onnx.TensorProto.INT32: np.int32, onnx.TensorProto.INT64: np.int64}
LARGE = 1 << 20  # graphsurgeon's threshold for its "large folded tensors" warning


@dataclass
class FoldConstants(Pass):
    """Replace subexpressions of constants by their value, then drop the nodes that computed them.

    `Add(input, Add(Add(a, b), d))` with constants a, b, d -> `Add(input, e)` with e = a + b + d

    Args:
        size_threshold: do not fold tensors larger than this many bytes (e.g. a Tile of a constant);
            None folds everything.
        fold_shapes: also fold `Shape` (and what follows from it) where the input's shape is static.
        partitioning: when ONNX Runtime fails on part of the constant subgraph, keep folding the rest
            (narrowed down to the failing nodes); without it one failure folds nothing in that graph.
        flatten_subgraphs: inline `If` branches whose condition folded to a constant.
    """

    name = "fold_constants"
    size_threshold: int | None = None
    fold_shapes: bool = True
    partitioning: bool = False
    flatten_subgraphs: bool = True
    span: Span | None = None

    def check(self, scope: "ModelScope") -> None:
        scope.uncertain = True  # which nodes fold is known only once ONNX Runtime has run them

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        with gc_paused():  # collections would walk every object of the graph, again and again
            before = len(graph.nodes)
            remove_dead(graph)  # dead nodes first, so that the count below is what folding removed
            dead = before - len(graph.nodes)
            folding = len(graph.nodes)
            self._fold(graph, ctx)
            remove_dead(graph)
            folded = folding - len(graph.nodes)
        counts = {k: v for k, v in (("folded", folded), ("dead_removed", dead)) if v}
        return PassResult(changed=bool(folded or dead), counts=counts)

    def _fold(self, graph: gs.Graph, ctx: PassContext) -> None:
        try:
            _Folder(self, ctx, graph).fold()
        except ModelError:
            raise
        except Exception as e:  # noqa: BLE001 - a graph the driver cannot walk is the model's problem
            raise model_error(FOLD_FAILED, f"constant folding failed: {_first_line(e)}", span=self.span,
                              hint="`fold constants partitioning on` folds around the part that fails",
                              ) from None


@dataclass
class _Plan:
    """One graph's foldable part: its nodes in order, values known in Python, and what to materialize."""

    nodes: list[gs.Node] = field(default_factory=list)
    known: dict[int, np.ndarray] = field(default_factory=dict)  # id(tensor) -> value (Shape folding)
    constant: set[int] = field(default_factory=set)  # ids of tensors whose value folding will know
    targets: list[gs.Tensor] = field(default_factory=list)  # computed by ONNX Runtime
    direct: list[gs.Tensor] = field(default_factory=list)  # known already (folded shapes)


class _Folder:
    """Folds a model's graphs in graphsurgeon's order: a graph, then its subgraphs, then its Ifs inlined;
    the main graph and its tree first, then the functions in reverse order."""

    def __init__(self, options: FoldConstants, ctx: PassContext, root: gs.Graph):
        self.o = options
        self.ctx = ctx
        self.root = root
        self.tree = GraphTree(root).capture_all()
        self.evaluator = Evaluator(root, self.tree)
        self.large: dict[str, int] = {}

    def fold(self) -> None:
        for g in self.tree.graphs:  # graphsurgeon's folding requires sorted graphs; so does the sweep here
            if not is_sorted(g, self.tree):
                sort_nodes(g, self.tree, self.o.span)
        tasks: list[tuple[bool, gs.Graph]] = [(False, f) for f in self.root.functions] + [(False, self.root)]
        while tasks:
            inline, g = tasks.pop()
            if inline:
                if self.o.flatten_subgraphs:
                    inline_constant_ifs(g)
                continue
            self.fold_graph(g)
            tasks.append((True, g))
            # a folded node's subgraphs go with it: not worth folding inside
            subs = [sub for n in g.nodes if n.outputs for sub in self.tree.subgraphs(n)]
            tasks.extend((False, sub) for sub in reversed(subs))
        if self.large:
            sizes = ", ".join(f"{name} ({size / 2**20:.0f} MiB)" for name, size in self.large.items())
            self.ctx.warn(FOLD_WARNING, f"constant folding made large tensors: {sizes}",
                          hint="`size_threshold` keeps large results computed at run time")

    def fold_graph(self, graph: gs.Graph) -> None:
        lower_constant_nodes(graph)
        if self.o.fold_shapes:
            elide_shape_casts(graph)
        plan = self.plan(graph)
        values = dict(plan.known)
        if plan.targets:
            needed = needed_nodes(plan, self.tree)
            evaluation = self.evaluator.evaluate(needed, plan.targets, plan.known, self.o.partitioning)
            self.report(graph, evaluation, len(needed))
            values.update(evaluation.values)
            plan.targets += evaluation.boundary
        self.materialize(plan.direct + plan.targets, values)

    def plan(self, graph: gs.Graph) -> _Plan:
        plan = _Plan()
        constant = plan.constant

        def is_constant(t: gs.Tensor) -> bool:
            return isinstance(t, gs.Constant) or id(t) in constant or not t.name

        for node in graph.nodes:
            if not node.outputs:
                continue
            if self.foldable(node, is_constant):
                plan.nodes.append(node)
                constant.update(id(t) for t in node.outputs)
            elif self.o.fold_shapes:
                value = shape_value(node, is_constant)
                if value is not None:
                    plan.known[id(node.outputs[0])] = value
                    constant.add(id(node.outputs[0]))
        self.choose_targets(graph, plan)
        return plan

    def foldable(self, node: gs.Node, is_constant: Callable[[gs.Tensor], bool]) -> bool:
        if node.op in NO_FOLD or (node.op in RANDOM and node.domain in DEFAULT_DOMAINS):
            return False
        for t in node.inputs:  # a loop, not all(): this runs for every input of every node
            if not is_constant(t):
                return False
        if node.attrs:
            if any(isinstance(v, gs.Node.AttributeRef) for v in node.attrs.values()):
                return False  # a function's attribute: its value is the caller's
            for sub in self.tree.subgraphs(node):
                if not all(is_constant(t) for t in self.tree.captures.get(id(sub), ())):
                    return False
        return True

    def choose_targets(self, graph: gs.Graph, plan: _Plan) -> None:
        """ONNX Runtime computes the foldable tensors read outside the foldable part (or graph outputs)."""
        folding = {id(n) for n in plan.nodes}
        outputs = {id(t) for t in graph.outputs}

        def wanted(t: gs.Tensor) -> bool:
            return id(t) in outputs or any(id(c) not in folding for c in t.outputs)

        for node in plan.nodes:
            plan.targets.extend(t for t in node.outputs if t.name and wanted(t) and not self.too_big(t))
        # shapes folded in Python become Constants even if only foldable nodes read them (as in
        # graphsurgeon): should ONNX Runtime fail on those, the shapes are still folded
        plan.direct = [n.outputs[0] for n in graph.nodes if n.outputs and id(n.outputs[0]) in plan.known]

    def too_big(self, t: gs.Tensor) -> bool:
        """Whether the declared shape and type already show the tensor is over `size_threshold`."""
        limit = self.o.size_threshold
        if limit is None or not isinstance(t, gs.Variable) or t.shape is None or t.dtype is None:
            return False
        if any(not isinstance(d, int) or d < 0 for d in t.shape):
            return False
        size = _itemsize(t.dtype)
        return size is not None and math.prod(t.shape) * size > limit

    def report(self, graph: gs.Graph, evaluation: Evaluation, foldable: int) -> None:
        where = "" if graph is self.root else f" in graph '{graph.name}'"
        if not self.o.partitioning:
            for failure in evaluation.failures:
                self.ctx.warn(FOLD_WARNING, f"constant folding: ONNX Runtime could not evaluate the "
                              f"{foldable} foldable nodes{where}, none folded: {_first_line(failure.error)}",
                              hint="`partitioning on` folds around parts that fail")
            return
        for failure in evaluation.failures:
            node = failure.nodes[0]
            op = f"{node.domain}:{node.op}" if node.domain else node.op
            self.ctx.warn(FOLD_WARNING, f"constant folding skipped node '{node_label(node)}' ({op}){where}: "
                          f"{_first_line(failure.error)}")
        if evaluation.skipped:
            skipped = len(evaluation.skipped)
            self.ctx.warn(FOLD_WARNING, f"constant folding skipped {skipped} more nodes{where} "
                          "that depend on the skipped ones")

    def materialize(self, tensors: list[gs.Tensor], values: dict[int, np.ndarray]) -> None:
        """Turn each computed tensor into a Constant; its producer loses it (and dies unless it keeps
        other outputs, which then stay at their positions)."""
        folded = [(t, values[id(t)]) for t in tensors if id(t) in values and self.accept(t, values[id(t)])]
        ids = {id(t) for t, _ in folded}
        for t, value in folded:
            keeps_others = any(o.name and id(o) not in ids for p in t.inputs for o in p.outputs if o is not t)
            detach_producers(t, placeholder=keeps_others)
            t.to_constant(value)

    def accept(self, t: gs.Tensor, value: object) -> bool:
        if not isinstance(value, np.ndarray) or value.dtype.kind in "OUSV":
            return False  # sequences, maps, strings: not something a Constant here holds
        limit = self.o.size_threshold
        if limit is not None and value.nbytes > limit:
            return False
        if limit is None and value.nbytes > LARGE:
            self.large[t.name] = value.nbytes
        return True


def needed_nodes(plan: _Plan, tree: GraphTree) -> list[gs.Node]:
    """The foldable nodes the targets depend on, in graph order."""
    folding = {id(n) for n in plan.nodes}
    needed: set[int] = set()
    stack = [p for t in plan.targets for p in t.inputs]
    while stack:
        node = stack.pop()
        if id(node) in needed or id(node) not in folding:
            continue
        needed.add(id(node))
        stack.extend(p for t in tree.reads(node) if id(t) not in plan.known for p in t.inputs)
    return [n for n in plan.nodes if id(n) in needed]


# --- Constant nodes -----------------------------------------------------------------------------------

def lower_constant_nodes(graph: gs.Graph) -> None:
    """`Constant(value=...)` nodes -> Constant tensors (the node, left without outputs, is cleaned up)."""
    for node in graph.nodes:
        if node.op != "Constant" or node.domain not in DEFAULT_DOMAINS or len(node.outputs) != 1:
            continue
        if len(node.attrs) != 1 or not node.outputs[0].name:
            continue
        (attr, value), = node.attrs.items()
        if attr not in CONSTANT_ATTRS or isinstance(value, gs.Node.AttributeRef):
            continue  # sparse_value, value_string(s): ONNX Runtime folds those like any other node
        out = node.outputs[0]
        detach_producers(out)
        if isinstance(value, gs.Constant):
            out.to_constant(value._values)  # lazy values stay lazy: nothing is read or copied
            out._export_dtype = value._export_dtype
        else:
            out.to_constant(np.array(value, dtype=CONSTANT_ATTRS[attr]))


# --- Shapes -------------------------------------------------------------------------------------------

def shape_value(node: gs.Node, is_constant: Callable[[gs.Tensor], bool]) -> np.ndarray | None:
    """The value of a shape computation graphsurgeon folds without ONNX Runtime, or None.

    `Shape(x)` and `Size(x)` of a statically shaped x; `Gather(Shape(x), c)` and `Slice(Shape(x), ...)`
    when the dims they pick are static, even if others are not.
    """
    if node.domain not in DEFAULT_DOMAINS or not node.inputs:
        return None
    op = node.op
    if op in ("Shape", "Size"):
        dims = _shape_dims(node, is_constant)
        if dims is None or not all(_static(d) for d in dims):
            return None
        return np.array(dims if op == "Shape" else math.prod(dims), dtype=np.int64)
    if op == "Gather" and len(node.inputs) >= 2:
        return _gather_of_shape(node, is_constant)
    if op == "Slice":
        return _slice_of_shape(node, is_constant)
    return None


def _shape_dims(shape_node: gs.Node, is_constant) -> list | None:
    """What `Shape(x)` (or `Size(x)`) sees of x's declared shape, dynamic dims included; None if unknown."""
    x = shape_node.inputs[0]
    if is_constant(x) or not isinstance(x, gs.Variable) or x.shape is None:
        return None
    dims = list(x.shape)
    if shape_node.op == "Shape":
        start, end = shape_node.attrs.get("start", 0), shape_node.attrs.get("end", None)
        dims = dims[start:end]
    return dims


def _shape_producer(t: gs.Tensor) -> gs.Node | None:
    if len(t.inputs) != 1:
        return None
    producer = t.inputs[0]
    return producer if producer.op == "Shape" and producer.domain in DEFAULT_DOMAINS else None


def _gather_of_shape(node: gs.Node, is_constant) -> np.ndarray | None:
    shape, indices = _shape_producer(node.inputs[0]), node.inputs[1]
    if shape is None or not isinstance(indices, gs.Constant):
        return None
    dims = _shape_dims(shape, is_constant)
    index = values_of(indices)
    if dims is None or index.ndim > 1 or not np.issubdtype(index.dtype, np.integer):
        return None
    picked = [dims[i] for i in index.reshape(-1) if -len(dims) <= i < len(dims)]
    if len(picked) != index.size or not all(_static(d) for d in picked):
        return None
    return np.array(picked[0] if index.ndim == 0 else picked, dtype=np.int64)


def _slice_of_shape(node: gs.Node, is_constant) -> np.ndarray | None:
    shape = _shape_producer(node.inputs[0])
    if shape is None:
        return None
    args = _slice_args(node)
    dims = _shape_dims(shape, is_constant)
    if args is None or dims is None:
        return None
    start, end, axis, step = args
    if axis not in (0, -1) or step == 0:
        return None
    picked = dims[start:end:step]
    return np.array(picked, dtype=np.int64) if all(_static(d) for d in picked) else None


def _slice_args(node: gs.Node) -> tuple[int, int, int, int] | None:
    """(start, end, axis, step) of a one-axis Slice, from constant inputs (opset >= 10) or attributes."""
    if len(node.inputs) >= 3:
        given = [t if t.name else None for t in node.inputs[1:5]]
        if any(t is not None and not isinstance(t, gs.Constant) for t in given):
            return None
        given += [None] * (4 - len(given))
        arrays = [values_of(t).reshape(-1) if t is not None else None for t in given]
        first = [int(a[0]) if a is not None and a.size else None for a in arrays]
        start, end, axis, step = first
        if start is None or end is None:
            return None
        return start, end, 0 if axis is None else axis, 1 if step is None else step
    attrs = node.attrs
    if "starts" not in attrs or "ends" not in attrs:
        return None
    return attrs["starts"][0], attrs["ends"][0], attrs.get("axes", [0])[0], 1


def _static(dim: object) -> bool:
    return isinstance(dim, int) and dim >= 0


# --- Cast elision -------------------------------------------------------------------------------------

def elide_shape_casts(graph: gs.Graph) -> None:
    """`Cast(int->float) -> op(float constants) -> Cast(float->int)` -> `op` on the ints (graphsurgeon's
    shape tensor cast elision: TensorRT refuses float shape tensors). The casts are left to cleanup."""
    outputs = {id(t) for t in graph.outputs}
    for node in graph.nodes:
        if node.op in ELIDE_OPS and node.domain in DEFAULT_DOMAINS and node.outputs and node.inputs:
            readers = node.outputs[0].outputs
            if len(readers) == 1 and readers[0].op == "Cast":  # the cheap test first: most nodes fail it
                _elide(node, outputs)


def _elide(node: gs.Node, graph_outputs: set[int]) -> None:
    out_casts = [_only_int_cast(t, graph_outputs) for t in node.outputs]
    if any(c is None for c in out_casts) or len({c.attrs["to"] for c in out_casts}) != 1:
        return
    final = out_casts[0].attrs["to"]
    in_casts: dict[int, gs.Node] = {}
    for i, t in enumerate(node.inputs):
        if isinstance(t, gs.Constant):
            if not _exact_in(t, final) or any(c is not node for c in t.outputs):
                return
            continue
        cast = t.inputs[0] if len(t.inputs) == 1 else None
        if cast is None or cast.op != "Cast" or cast.attrs.get("to") != onnx.TensorProto.FLOAT:
            return
        if _onnx_type(cast.inputs[0].dtype) != final:
            return
        in_casts[i] = cast
    if not in_casts:
        return
    for i, t in enumerate(node.inputs):
        if i in in_casts:
            set_input(node, i, in_casts[i].inputs[0])
        else:
            t.values = values_of(t).astype(INT_TYPES[final])
    for i, cast in enumerate(out_casts):
        casted = cast.outputs[0]
        detach_producers(casted)
        set_output(node, i, casted)


def _only_int_cast(t: gs.Tensor, graph_outputs: set[int]) -> gs.Node | None:
    if id(t) in graph_outputs or len(t.outputs) != 1:
        return None
    cast = t.outputs[0]
    ok = cast.op == "Cast" and cast.attrs.get("to") in INT_TYPES and len(cast.outputs) == 1
    return cast if ok else None


def _exact_in(t: gs.Constant, onnx_type: int) -> bool:
    values = values_of(t)
    if values.dtype.kind not in "fiu":
        return False
    with np.errstate(all="ignore"):
        cast = values.astype(INT_TYPES[onnx_type])
        return bool(np.array_equal(cast.astype(values.dtype), values))


def _onnx_type(dtype: object) -> int | None:
    if dtype is None:
        return None
    if isinstance(dtype, int):
        return dtype
    try:
        return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    except (TypeError, KeyError, ValueError):
        return None


# --- If inlining --------------------------------------------------------------------------------------

def inline_constant_ifs(graph: gs.Graph) -> None:
    """Replace each `If` whose condition is a Constant by the nodes of the branch it takes.

    The branch's tensors are renamed as graphsurgeon renames them (`<name>_subg_<index>_<branch name>`,
    index = the If's position as the list is rebuilt), so both give the same names.
    """
    if not any(_constant_if(n) for n in graph.nodes):
        return
    nodes: list[gs.Node] = []
    for node in graph.nodes:
        if _constant_if(node):
            nodes.extend(_inline(node, len(nodes)))
        else:
            nodes.append(node)
    graph.nodes = nodes


def _constant_if(node: gs.Node) -> bool:
    return (node.op == "If" and node.domain in DEFAULT_DOMAINS and bool(node.inputs) and bool(node.outputs)
            and isinstance(node.inputs[0], gs.Constant))


def _inline(node: gs.Node, index: int) -> list[gs.Node]:
    taken = bool(values_of(node.inputs[0]).reshape(-1)[0])
    branch = node.attrs["then_branch" if taken else "else_branch"]
    other = node.attrs.get("else_branch" if taken else "then_branch")
    for t in _gs_local_tensors(branch):
        t.name += f"_subg_{index}_{branch.name}"
    extra: list[gs.Node] = []
    rebound: dict[int, gs.Tensor] = {}
    outputs = list(node.outputs)  # each leaves the If as it is rebound
    for i, (out, sub_out) in enumerate(zip(outputs, branch.outputs)):
        detach_producers(out)
        if id(sub_out) in rebound or not sub_out.inputs:
            source = rebound.get(id(sub_out), sub_out)
            if isinstance(source, gs.Constant):
                out.to_constant(source._values)
                out._export_dtype = source._export_dtype
            else:
                name = f"{node.name}_output_{i}"
                extra.append(gs.Node("Identity", name=name, inputs=[source], outputs=[out]))
            continue
        rebound[id(sub_out)] = out
        for producer in list(sub_out.inputs):
            for k, t in enumerate(producer.outputs):
                if t is sub_out:
                    set_output(producer, k, out)
        for consumer in list(sub_out.outputs):
            for k, t in enumerate(consumer.inputs):
                if t is sub_out:
                    set_input(consumer, k, out)
    dropped = other.nodes + nested_nodes(other.nodes) if other is not None else []
    forget_consumers([node] + dropped)  # the If and the branch not taken no longer read anything
    list.clear(node.inputs)
    for out in outputs:
        extra.extend(_scalar_for_readers(out))
    return list(branch.nodes) + extra


# Inputs that ONNX shape inference requires to be scalars, though runtimes take any one-element tensor.
SCALAR_INPUTS = {"Range": (0, 1, 2)}


def _scalar_for_readers(out: gs.Tensor) -> list[gs.Node]:
    """Give the readers that need a scalar a reshaped copy of an inlined If output. Behind the If its shape
    was unknown to inference, so a one-element tensor passed (ONNX's own AffineGrid function body gives
    `Range` [1]-shaped `Split` pieces); inlined, the shape shows and ONNX and ONNX Runtime refuse the model
    (ONNX Runtime's optimizer inlines an If of constant condition too, and fails the same way)."""
    slots = [(reader, i) for reader in list(out.outputs) if reader.domain in DEFAULT_DOMAINS
             for i in SCALAR_INPUTS.get(reader.op, ()) if i < len(reader.inputs) and reader.inputs[i] is out]
    if not slots or (isinstance(out, gs.Constant) and values_of(out).size != 1):
        return []
    nodes, name = [], out.name  # tensor names are unique, node names may be empty
    if isinstance(out, gs.Constant):
        scalar = gs.Constant(f"{name}_scalar", values_of(out).reshape(()))
    else:
        scalar = gs.Variable(f"{name}_scalar", dtype=out.dtype, shape=None if out.dtype is None else [])
        shape = gs.Constant(f"{name}_scalar_shape", np.zeros(0, np.int64))
        nodes.append(gs.Node("Reshape", name=f"{name}_scalar", inputs=[out, shape], outputs=[scalar]))
    for reader, i in slots:
        set_input(reader, i, scalar)
    return nodes


def _gs_local_tensors(branch: gs.Graph) -> list[gs.Tensor]:
    """graphsurgeon's `Graph._local_tensors()` (which includes every Constant the branch reads)."""
    local: dict[str, gs.Tensor] = {}
    for node in branch.nodes:
        for t in node.outputs:
            if t.name:
                local[t.name] = t
    for t in branch.inputs:
        local[t.name] = t
    everything = list(branch.inputs) + [t for n in branch.nodes for t in list(n.inputs) + list(n.outputs)]
    for t in everything + list(branch.outputs):
        if t.name and isinstance(t, gs.Constant):
            local[t.name] = t
    return list({id(t): t for t in local.values()}.values())


# --- Small helpers ------------------------------------------------------------------------------------

def values_of(t: gs.Constant) -> np.ndarray:
    """A Constant's values, loaded without replacing its lazy values (the writer can still copy them)."""
    values = t._values
    return values.load() if isinstance(values, LazyValues) else np.asarray(values)


def _itemsize(dtype: object) -> int | None:
    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        pass
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(dtype)).itemsize
    except (TypeError, KeyError, ValueError):
        return None


def _first_line(message: object, limit: int = 400) -> str:
    """A message on one line (ONNX Runtime's errors span several), cut at `limit` characters."""
    text = " ".join(str(message).split()) or type(message).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["FoldConstants", "inline_constant_ifs", "lower_constant_nodes", "shape_value"]
