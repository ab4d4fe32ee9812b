"""The graphs of a model as the matcher sees them: node order, an index by op type, types and attributes.

`ModelState` is shared by all graphs of a model while rules run (names in use, constant values, types
from shape inference); a `GraphView` is one graph (the main graph, an If/Loop/Scan body, a model-local
function) during one round of rule application.
"""

from __future__ import annotations

import functools

import onnx
import onnx_graphsurgeon as gs

from graphdsl import dtypes
from graphdsl.diagnostics import model_error
from graphdsl.graphwalk import tensor_names
from graphdsl.match.consts import Constants
from graphdsl.onnxio import export_model

MISSING = object()
REWRITE_CYCLE = "GDS509"

# Attributes that later opsets turned into inputs: (op, attribute) -> input index. A pattern's
# `axes=[-1]` matches either spelling, and a rewrite writes whichever the model's opset wants.
_AXES_OPS = ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
             "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "Squeeze", "Unsqueeze")
ATTRIBUTE_INPUTS = {(op, "axes"): 1 for op in _AXES_OPS}
ATTRIBUTE_INPUTS[("Split", "split")] = 1


def norm_domain(domain: str | None) -> str:
    """The default domain spelled one way: `` for None, ``, `ai.onnx`."""
    return "" if domain in (None, "", "ai.onnx") else domain


def all_graphs(root: gs.Graph) -> list[tuple[str, gs.Graph]]:
    """(label, graph) for the main graph, every If/Loop/Scan body at any depth, and local functions."""
    out, pending = [], [("main", root)] + [(f"function {f.name}", f) for f in getattr(root, "functions", [])]
    while pending:
        label, graph = pending.pop(0)
        out.append((label, graph))
        pending[0:0] = list(_subgraphs(label, graph))
    return out


# Ops of the default domain with graph attributes; nodes of other domains are all looked at.
GRAPH_OPS = frozenset({"If", "Loop", "Scan", "SequenceMap"})


def _subgraphs(label: str, graph: gs.Graph):
    for node in graph.nodes:
        if not node.attrs or not node.domain and node.op not in GRAPH_OPS:
            continue
        for key, value in node.attrs.items():
            if not isinstance(value, (gs.Graph, list)):
                continue
            values = value if isinstance(value, list) else [value]
            for index, sub in enumerate(v for v in values if isinstance(v, gs.Graph)):
                suffix = f"[{index}]" if isinstance(value, list) else ""
                yield f"{label} > {node.name or node.op}.{key}{suffix}", sub


class ModelState:
    """What every graph of a model shares while rules run: its graphs' outputs, constant values, types
    from shape inference, and (built on first use, since only a rewrite needs them) the names in use."""

    def __init__(self, root: gs.Graph):
        self.root = root
        self.graphs = all_graphs(root)
        self.outputs: set[int] = {id(t) for _, g in self.graphs for t in g.outputs}  # every graph's outputs
        self.consts = Constants()
        self.inferred: dict | None = None
        # types of values that rewritten nodes now compute, as known before: inference stops at an op it
        # has no schema for (com.microsoft's), and a later round must still see `dtype(y) == float32`
        self.carried: dict[str, tuple] = {}
        self._names: tuple[set[str], set[str]] | None = None

    @classmethod
    def of(cls, root: gs.Graph) -> "ModelState":
        """The state of a model whose main graph is `root`."""
        return cls(root)

    @property
    def tensor_names(self) -> set[str]:
        """Every tensor name in use in the model (collected on first use)."""
        return self._collect()[0]

    @property
    def node_names(self) -> set[str]:
        """Every node name in use in the model (collected on first use)."""
        return self._collect()[1]

    def _collect(self) -> tuple[set[str], set[str]]:
        if self._names is None:
            tensors, nodes = set(), set()
            for _, graph in self.graphs:
                tensors |= tensor_names(graph)
                nodes.update([n.name for n in graph.nodes])
            self._names = (tensors, nodes)
        return self._names

    def types(self, tensor) -> tuple:
        """(dtype name or None, shape or None) of a tensor: as recorded, else from shape inference."""
        dtype, shape = _recorded(tensor)
        if dtype is not None and shape is not None:
            return dtype, shape
        if self.inferred is None:
            self.inferred = _infer(self.root)
        found_dtype, found_shape = self.inferred.get(tensor.name, (None, None))
        if found_dtype is None or found_shape is None:
            carried_dtype, carried_shape = self.carried.get(tensor.name, (None, None))
            found_dtype = found_dtype or carried_dtype
            found_shape = found_shape if found_shape is not None else carried_shape
        return dtype or found_dtype, shape if shape is not None else found_shape

    def carry(self, tensor) -> None:
        """Keep the types a value has now for when a new op, unknown to inference, computes it."""
        self.carried[tensor.name] = self.types(tensor)


def _recorded(tensor) -> tuple:
    dtype = getattr(tensor, "dtype", None)
    shape = getattr(tensor, "shape", None)
    name = dtypes.dtype_name(dtype) if dtype is not None else None
    if isinstance(tensor, gs.Constant):
        return name, list(tensor.shape)
    producer = tensor.inputs[0] if tensor.inputs else None
    if shape is None and producer is not None and producer.op == "Constant":
        from graphdsl.match.consts import constant_node_value

        value = constant_node_value(producer)
        if value is not None:
            return dtypes.dtype_name(value.dtype), list(value.shape)
    return name, None if shape is None else list(shape)


def _infer(root: gs.Graph) -> dict:
    """name -> (dtype name, shape) for every typed value ONNX shape inference finds, subgraphs included;
    {} when inference fails (conditions on types then fail with "unknown")."""
    try:
        # without the weights (inference reads only small shape-like values): with them, the export and
        # protobuf's copies in and out of infer_shapes cost about 5x the weight bytes, and most of the time
        model = onnx.shape_inference.infer_shapes(export_model(root, weights=False))
    except Exception:  # noqa: BLE001 - inference is best effort; a missing type is reported where asked
        return {}
    found, graphs = {}, [model.graph]
    while graphs:
        graph = graphs.pop()
        for info in list(graph.value_info) + list(graph.output) + list(graph.input):
            if info.type.HasField("tensor_type"):
                found[info.name] = _value_type(info.type.tensor_type)
        graphs.extend(a.g for n in graph.node for a in n.attribute if a.type == onnx.AttributeProto.GRAPH)
    return found


def _value_type(tensor_type) -> tuple:
    dtype = dtypes.dtype_name(tensor_type.elem_type) if tensor_type.elem_type else None
    if not tensor_type.HasField("shape"):
        return dtype, None
    dims = tensor_type.shape.dim
    return dtype, [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims]


def index_key(domain: str | None, op: str) -> object:
    """Nodes of the default domain are indexed by op alone (no tuple to build per node)."""
    return op if not domain or domain == "ai.onnx" else (domain, op)


class GraphView:
    """One graph while rules run: node positions, nodes by op type, and what tensors hold.

    Edits of a round are collected (`add`, `remove`) and put into `graph.nodes` by `commit`, which also
    updates the index, so a later round does not rebuild it: a round that finds nothing costs only the
    anchor candidates it looks at.
    """

    def __init__(self, graph: gs.Graph, label: str, state: ModelState):
        self.graph, self.label, self.state = graph, label, state
        self.opsets = _opsets(graph, state.root)
        self.added: list = []  # nodes rewrites created this round, in creation order
        self.added_ids: set[int] = set()
        self.removed: set[int] = set()  # ids of nodes rewrites removed this round
        self.dirty: set = set()  # index keys whose lists changed this round
        self.placed: dict[int, object] = {}  # new node id -> the existing node it goes before
        self._schemas: dict[str, object] = {}
        self.unsorted = ""  # the rule whose new node could not be placed before its readers: sort at commit
        nodes = graph.nodes
        self.order: dict[int, tuple] = {id(n): (i,) for i, n in enumerate(nodes)}
        self.index: dict[object, list] = {}
        for node in nodes:
            domain = node.domain
            key = node.op if not domain or domain == "ai.onnx" else (domain, node.op)  # index_key, inlined
            bucket = self.index.get(key)
            if bucket is None:
                self.index[key] = [node]
            else:
                bucket.append(node)

    def add(self, node, key: tuple, before) -> None:
        """A new node, placed just before node `before` (None: at the end); `key` orders new nodes."""
        self.order[id(node)] = key
        self.added.append(node)
        self.added_ids.add(id(node))
        self.placed[id(node)] = self.placed.get(id(before), before)  # before a new node: where it goes

    def remove(self, node) -> None:
        """A node a rewrite removed (it leaves `graph.nodes` at `commit`)."""
        del self.order[id(node)]
        self.removed.add(id(node))
        domain = node.domain
        self.dirty.add(node.op if not domain or domain == "ai.onnx" else (domain, node.op))

    def imported(self, domain: str, version: int) -> None:
        """The model now imports `domain` (a rewrite added a node of it)."""
        self.opsets[domain] = version
        self._schemas.clear()

    def schema(self, qualified: str):
        """The op's schema at this graph's opsets (None for custom ops), looked up once per op."""
        if qualified not in self._schemas:
            from graphdsl.opschema import schema_at

            self._schemas[qualified] = schema_at(qualified, self.opsets)
        return self._schemas[qualified]

    def commit(self) -> None:
        """Put the round's edits into `graph.nodes`: removed nodes out, new ones at their positions.

        Keys stay valid (a new node's key sorts between its neighbours'), so nothing is renumbered.
        """
        if not self.added and not self.removed:
            return
        order, removed = self.order, self.removed
        before: dict[int, list] = {}
        grown = set()
        for node in sorted((n for n in self.added if id(n) in order), key=lambda n: order[id(n)]):
            before.setdefault(id(self.placed[id(node)]), []).append(node)
            self.index.setdefault(index_key(node.domain, node.op), []).append(node)
            grown.add(index_key(node.domain, node.op))
        merged = []
        for node in self.graph.nodes:
            if id(node) in before:
                merged.extend(before[id(node)])
            if id(node) not in removed:
                merged.append(node)
        merged.extend(before.get(id(None), ()))
        self.graph.nodes = merged
        if self.unsorted:
            self._sort()
        order = self.order
        for key in self.dirty | grown:
            kept = [n for n in self.index[key] if id(n) in order]
            self.index[key] = sorted(kept, key=lambda n: order[id(n)]) if key in grown else kept
        self.added, self.removed, self.dirty, self.placed, self.unsorted = [], set(), set(), {}, ""
        self.added_ids = set()

    def _sort(self) -> None:
        """A new node reads a value computed after the place it took: sort the graph (rare: multi-output
        rewrites). A rewrite that made a cycle (it reads what it replaces) is the rule's error."""
        try:
            with gs.logger.G_LOGGER.suppress(gs.logger.G_LOGGER.CRITICAL + 1):  # the error says it all
                self.graph.toposort(recurse_subgraphs=False, recurse_functions=False)
        except Exception:  # noqa: BLE001 - graphsurgeon raises its own exception type for cycles
            raise model_error(REWRITE_CYCLE, f"rule `{self.unsorted}` made the graph cyclic: its rewrite "
                              "reads a value computed from one it replaces", location=self.label,
                              hint="a rewrite may read the pattern's inputs and the values it matched, not "
                                   "values computed downstream of what it replaces") from None
        self.order = {id(n): (i,) for i, n in enumerate(self.graph.nodes)}

    def candidates(self, domain: str, op: str) -> list:
        """Nodes of an op, in graph order (may include nodes removed this round)."""
        return self.index.get(index_key(domain, op), [])

    def const(self, tensor):
        """The tensor's constant value (see `graphdsl.match.consts`), or None."""
        return self.state.consts.value(tensor)

    def shape(self, tensor) -> list | None:
        """The tensor's shape, from the model or shape inference, or None."""
        return self.state.types(tensor)[1]

    def dtype(self, tensor) -> str | None:
        """The tensor's element type name, from the model or shape inference, or None."""
        return self.state.types(tensor)[0]

    def uses(self, tensor) -> int:
        """Nodes reading the tensor (`Mul(d, d)` counts once), plus one if it is a graph output."""
        readers = tensor.outputs
        distinct = len(readers) if len(readers) < 2 else len({id(n) for n in readers})
        return distinct + (1 if id(tensor) in self.state.outputs else 0)

    def attribute(self, node, name: str) -> object:
        """The node's attribute as the pattern sees it: set, given as a constant input, or the default."""
        if name in node.attrs:
            return node.attrs[name]
        index = ATTRIBUTE_INPUTS.get((node.op, name))
        if index is not None and len(node.inputs) > index and not node.inputs[index].is_empty():
            value = self.const(node.inputs[index])
            return MISSING if value is None else value.reshape(-1).tolist()
        domain = norm_domain(node.domain)
        version = self.opsets.get(domain)
        return MISSING if version is None else default_attribute(node.op, domain, version, name)


def _opsets(graph: gs.Graph, root: gs.Graph) -> dict[str, int]:
    from graphdsl.opschema import graph_opsets

    source = graph if getattr(graph, "import_domains", None) else root
    return graph_opsets(source)


@functools.lru_cache(maxsize=4096)
def default_attribute(op: str, domain: str, version: int, name: str) -> object:
    """The schema's default for an unset attribute, or MISSING."""
    try:
        schema = onnx.defs.get_schema(op, version, domain)
    except onnx.defs.SchemaError:
        return MISSING
    attr = schema.attributes.get(name)
    if attr is None or attr.default_value.type == 0:
        return MISSING
    value = onnx.helper.get_attribute_value(attr.default_value)
    return value.decode() if isinstance(value, bytes) else value
