"""Graph snapshots and their diffs: what a pass added, removed and changed, cheaply enough to run around
every pass.

A snapshot records every node (subgraph bodies included) by identity, with its op, domain, name, input
and output tensors (by identity) and attributes. Constant tensors are recorded by identity with their
name and the identity of their value array: values are never read, so lazily loaded weights stay on
disk. A node replaced by a new object of the same op and name counts as changed (or as unchanged when
all its fields are equal), not as a removal plus an addition; a constant replaced by a new object
under the same name counts as changed, as its values cannot be compared without loading them.

Speed: a 100k-node graph is snapshotted in about 0.2 s and diffed in a few hundredths on the dev machine
(`python tests/report/bench_snapshot.py`); see `graphdsl.report.columns` for how.

What a snapshot cannot see: a tensor renamed in place (its consumers still read the same object;
`PassContext.renames` records renames), a constant's values edited in place (`const.values[...] = 0`),
and an attribute's list edited in place (`node.attrs["perm"].append(2)`). Assigning a new value, a new
tensor or a new constant is seen.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import chain, compress, islice, repeat
from operator import attrgetter, is_, is_not
from typing import Any

import numpy as np
import onnx_graphsurgeon as gs

from graphdsl.gcpause import gc_paused
from graphdsl.report.columns import Changes, Ragged, Store, compare, records

_ROW = attrgetter("op", "domain", "name", "inputs", "outputs", "attrs")
_NAME = attrgetter("name")
_VALUES = attrgetter("_values")  # LazyValues or ndarray, whichever the constant holds: never loaded here
# attribute value types whose == is cheap and exact; others get a stand-in (see _stand_in)
_PLAIN = frozenset({int, float, str, bytes, bool, list, tuple, type(None)})


@dataclass(eq=False)
class GraphSnapshot:
    """The state of a graph at one moment, for `diff`.

    It holds references to the graph's nodes, tensors and constant value arrays (never copies of
    values), which also keeps their id()s unique while it lives.

    Attributes:
        nodes: every node; a subgraph's nodes come after its graph's.
        constants: every constant a node reads or a graph outputs, once each.
    """

    nodes: list[gs.Node]
    constants: list[gs.Constant]
    node_store: Store = field(repr=False)
    constant_store: Store = field(repr=False)
    _keep: list = field(default_factory=list, repr=False)

    @property
    def ops(self) -> Counter:
        """Op type -> node count (subgraph nodes included)."""
        return Counter(self.node_store.fixed[0])


def snapshot(graph: gs.Graph) -> GraphSnapshot:
    """Record every node (If/Loop/Scan bodies included) and every constant a node reads or a graph outputs."""
    with gc_paused():
        return _snapshot(graph)


@dataclass
class _Columns:
    """The node fields being collected, one list per field (see `graphdsl.report.columns`)."""

    nodes: list = field(default_factory=list)
    ops: list = field(default_factory=list)
    domains: list = field(default_factory=list)
    names: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    input_counts: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    output_counts: list = field(default_factory=list)
    attr_keys: list = field(default_factory=list)
    attr_values: list = field(default_factory=list)
    attr_counts: list = field(default_factory=list)
    graph_outputs: list = field(default_factory=list)
    keep: list = field(default_factory=list)  # attribute values replaced by stand-ins, kept alive

    def store(self) -> Store:
        return Store(list(map(id, self.nodes)), [self.ops, self.domains, self.names],
                     [Ragged(self.inputs, self.input_counts, is_not),
                      Ragged(self.outputs, self.output_counts, is_not),
                      Ragged(self.attr_keys, self.attr_counts), Ragged(self.attr_values, self.attr_counts)])


def _snapshot(graph: gs.Graph) -> GraphSnapshot:
    cols = _Columns()
    pending = [graph]
    while pending:
        _record_graph(pending.pop(), cols, pending)
    inputs = cols.inputs
    constants = list(compress(inputs, map(is_, map(type, inputs), repeat(gs.Constant))))
    constants += [t for t in cols.graph_outputs if isinstance(t, gs.Constant)]
    constants = list(dict(zip(map(id, constants), constants)).values())
    values = list(map(_VALUES, constants))
    constant_store = Store(list(map(id, constants)), [list(map(_NAME, constants)), list(map(id, values))], [])
    return GraphSnapshot(cols.nodes, constants, cols.store(), constant_store, cols.keep + values)


def _record_graph(graph: gs.Graph, cols: _Columns, pending: list) -> None:
    """Append one graph's nodes to the columns; queue the subgraphs its attributes hold."""
    nodes = list(graph.nodes)
    cols.nodes.extend(nodes)
    cols.graph_outputs.extend(graph.outputs)
    if not nodes:
        return
    ops, domains, names, inputs, outputs, attrs = zip(*map(_ROW, nodes))
    cols.ops.extend(ops)
    cols.domains.extend(domains)
    cols.names.extend(names)
    ragged = ((cols.inputs, cols.input_counts, inputs), (cols.outputs, cols.output_counts, outputs),
              (cols.attr_keys, cols.attr_counts, attrs))
    for flat, counts, lists in ragged:
        flat.extend(chain.from_iterable(lists))
        counts.extend(map(len, lists))
    start = len(cols.attr_values)
    cols.attr_values.extend(chain.from_iterable(map(dict.values, attrs)))
    if set(map(type, islice(cols.attr_values, start, None))) - _PLAIN:
        _replace_odd_values(cols, start, pending)


def _replace_odd_values(cols: _Columns, start: int, pending: list) -> None:
    values = cols.attr_values
    for i in range(start, len(values)):
        if type(values[i]) not in _PLAIN:
            cols.keep.append(values[i])
            values[i] = _stand_in(values[i], pending)


def _stand_in(value: Any, pending: list) -> tuple:
    """A value with a cheap, exact ==: a subgraph by name (its nodes are recorded on their own)."""
    if isinstance(value, gs.Graph):
        pending.append(value)
        return ("graph", value.name)
    if isinstance(value, (np.ndarray, np.generic)):
        return ("array", str(value.dtype), value.shape, value.tobytes())
    return ("object", type(value).__name__, id(value))  # a tensor attribute: by identity


@dataclass(eq=False)
class GraphDiff:
    """What changed between two snapshots.

    Attributes:
        added, removed, changed: the nodes (subgraph nodes included).
        initializers_added, initializers_removed, initializers_changed: the constant tensors.
        op_delta: op type -> change in its node count, zero entries left out, sorted by op.
    """

    added: list[gs.Node] = field(default_factory=list)
    removed: list[gs.Node] = field(default_factory=list)
    changed: list[gs.Node] = field(default_factory=list)
    initializers_added: list[gs.Constant] = field(default_factory=list)
    initializers_removed: list[gs.Constant] = field(default_factory=list)
    initializers_changed: list[gs.Constant] = field(default_factory=list)
    op_delta: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """True when nothing changed."""
        return not any(self.counts().values())

    def counts(self) -> dict[str, int]:
        """Keys: nodes_added, nodes_removed, nodes_changed, initializers_added, initializers_removed,
        initializers_changed."""
        return {"nodes_added": len(self.added), "nodes_removed": len(self.removed),
                "nodes_changed": len(self.changed), "initializers_added": len(self.initializers_added),
                "initializers_removed": len(self.initializers_removed),
                "initializers_changed": len(self.initializers_changed)}

    def to_json(self) -> dict[str, Any]:
        """Keys: the `counts()` keys, op_delta, then `nodes` and `initializers`, each with sorted name
        lists under added, removed, changed (an unnamed node appears as `<Op>`)."""
        def names(items):
            return sorted(x.name or f"<{getattr(x, 'op', 'tensor')}>" for x in items)

        return {**self.counts(), "op_delta": dict(self.op_delta),
                "nodes": {"added": names(self.added), "removed": names(self.removed),
                          "changed": names(self.changed)},
                "initializers": {"added": names(self.initializers_added),
                                 "removed": names(self.initializers_removed),
                                 "changed": names(self.initializers_changed)}}


def diff(before: GraphSnapshot, after: GraphSnapshot) -> GraphDiff:
    """Nodes and constants added, removed and changed from `before` to `after`, and the op count delta."""
    with gc_paused():
        return _diff(before, after)


def _diff(before: GraphSnapshot, after: GraphSnapshot) -> GraphDiff:
    a, b = before.node_store, after.node_store
    found = compare(a, b)
    nodes = _changes(before.nodes, a, after.nodes, b, found, (0, 2))
    constants = _changes(before.constants, before.constant_store, after.constants, after.constant_store,
                         compare(before.constant_store, after.constant_store), (0,))
    return GraphDiff(*nodes, *constants, _op_delta(a.fixed[0], b.fixed[0], found))


def _op_delta(ops_a: list[str], ops_b: list[str], found: Changes) -> dict[str, int]:
    """Counted from the changes alone: kept nodes cancel out, so the whole graph need not be counted."""
    delta = Counter(ops_b[j] for j in found.new)
    delta.update(ops_b[j] for _, j in found.changed)
    delta.subtract(ops_a[i] for i in found.gone)
    delta.subtract(ops_a[i] for i, _ in found.changed)
    return {op: n for op, n in sorted(delta.items()) if n}


def _changes(objs_a: list, a: Store, objs_b: list, b: Store, found: Changes,
             key: tuple[int, ...]) -> tuple[list, list, list]:
    """(added, removed, changed) objects; ones replaced under the same key (op and name) pair up."""
    changed = [objs_b[j] for _, j in found.changed]
    if not found.gone or not found.new:
        return [objs_b[i] for i in found.new], [objs_a[i] for i in found.gone], changed
    old = dict(zip(found.gone, records(a, found.gone)))
    by_key: dict[tuple, list[int]] = {}
    for i, rec in old.items():
        if rec[key[-1]]:  # unnamed objects cannot be matched up
            by_key.setdefault(tuple(rec[k] for k in key), []).append(i)
    added, paired = [], set()
    for j, rec in zip(found.new, records(b, found.new)):
        match = by_key.get(tuple(rec[k] for k in key))
        if not match:
            added.append(objs_b[j])
            continue
        i = match.pop(0)
        paired.add(i)
        if old[i] != rec:
            changed.append(objs_b[j])
    return added, [objs_a[i] for i in found.gone if i not in paired], changed
