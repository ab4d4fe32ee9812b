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

from graphdsl.report.columns import Ragged, Store, compare, gc_paused, records

_ROW = attrgetter("op", "domain", "name", "inputs", "outputs", "attrs")
_NAME, _OP = attrgetter("name"), attrgetter("op")
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
        ops: op type -> node count.
    """

    nodes: list[gs.Node]
    constants: list[gs.Constant]
    ops: Counter
    node_store: Store = field(repr=False)
    constant_store: Store = field(repr=False)
    _keep: list = field(default_factory=list, repr=False)


def snapshot(graph: gs.Graph) -> GraphSnapshot:
    """Record every node (If/Loop/Scan bodies included) and every constant a node reads or a graph outputs."""
    with gc_paused():
        return _snapshot(graph)


def _snapshot(graph: gs.Graph) -> GraphSnapshot:
    nodes, fixed, ragged, keep, outputs = [], ([], [], []), tuple(([], []) for _ in range(4)), [], []
    pending = [graph]
    while pending:
        g = pending.pop()
        nodes.extend(g.nodes)
        outputs.extend(g.outputs)
        _record_graph(list(g.nodes), fixed, ragged, keep, pending)
    node_store = Store(list(map(id, nodes)), list(fixed),
                       [Ragged(v, n, is_not) for v, n in ragged[:2]] + [Ragged(v, n) for v, n in ragged[2:]])
    tensors = list(chain(ragged[0][0], outputs))
    constants = list(compress(tensors, map(is_, map(type, tensors), repeat(gs.Constant))))
    constants = list(dict(zip(map(id, constants), constants)).values())
    values = list(map(_VALUES, constants))
    constant_store = Store(list(map(id, constants)), [list(map(_NAME, constants)), list(map(id, values))], [])
    return GraphSnapshot(nodes, constants, Counter(fixed[0]), node_store, constant_store, keep + values)


def _record_graph(nodes: list, fixed: tuple, ragged: tuple, keep: list, pending: list) -> None:
    """Append one graph's nodes to the columns; queue the subgraphs its attributes hold."""
    ops, domains, names, inputs, outputs, attrs = zip(*map(_ROW, nodes)) if nodes else ((),) * 6
    for column, values in zip(fixed, (ops, domains, names)):
        column.extend(values)
    for (flat, lengths), lists in zip(ragged, (inputs, outputs, attrs, map(dict.values, attrs))):
        lists = list(lists)
        flat.extend(chain.from_iterable(lists))
        lengths.extend(map(len, lists))
    values = ragged[3][0]
    start = len(values) - sum(ragged[3][1][-len(nodes):]) if nodes else len(values)
    if set(map(type, islice(values, start, None))) - _PLAIN:
        for i in range(start, len(values)):
            if type(values[i]) not in _PLAIN:
                keep.append(values[i])
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
    nodes = _changes(before.nodes, before.node_store, after.nodes, after.node_store, (0, 2))
    constants = _changes(before.constants, before.constant_store, after.constants, after.constant_store, (0,))
    ops = Counter(after.ops)
    ops.subtract(before.ops)
    return GraphDiff(*nodes, *constants, {op: n for op, n in sorted(ops.items()) if n})


def _changes(objs_a: list, a: Store, objs_b: list, b: Store, key: tuple[int, ...]) -> tuple[list, list, list]:
    """(added, removed, changed) objects; ones replaced under the same key (op and name) pair up."""
    found = compare(a, b)
    changed = [objs_b[i] for i in found.changed]
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
