"""Column stores: many small records compared in bulk, with every per-record step running in C.

Python spends most of a graph snapshot on per-object overhead: a loop iteration, a tuple per node, and
later the garbage collector walking those tuples (a full collection over a 100k-node graph takes about
a second). So records are kept as a few long lists instead: fixed-width fields as one list each, and
variable-length fields (a node's inputs) as one flat list plus a list of lengths. Comparing two stores
is then `map(operator.ne, ...)` over whole lists, and Python-level loops run only over what differs.
"""

from __future__ import annotations

import contextlib
import gc

from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate, compress, islice, repeat
from operator import add, is_, ne, not_
from typing import Callable, Sequence


@contextlib.contextmanager
def gc_paused():
    """No garbage collection while building or comparing stores.

    The temporaries (a tuple per node, say) die before the block ends; collected mid-way they would be
    promoted and soon trigger a full collection, which walks every object of a large graph.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(eq=False)
class Ragged:
    """A variable-length field of every record: all values end to end, and each record's count."""

    values: list
    lengths: list[int]
    differ: Callable = ne  # how two values are compared: `ne`, or `is_not` for identity


@dataclass(eq=False)
class Store:
    """Records by identity: `ids[i]` is the id() of record i, `fixed[f][i]` and `ragged[r]` its fields."""

    ids: list[int]
    fixed: list[list]
    ragged: list[Ragged]


@dataclass
class Changes:
    """Positions of records: `gone` in the old store, `new` in the new one, `changed` as (old, new) pairs."""

    gone: list[int]
    new: list[int]
    changed: list[tuple[int, int]]


def compare(a: Store, b: Store) -> Changes:
    """Which records of `a` are gone, which of `b` are new, and which kept ones differ in any field."""
    if a.ids == b.ids:  # the common case of a pass that edits in place: nothing to match up
        keep_a = keep_b = range(len(a.ids))
        gone: list[int] = []
        new: list[int] = []
    else:
        where = dict(zip(b.ids, range(len(b.ids))))
        found = list(map(where.get, a.ids))
        missing = list(map(is_, found, repeat(None)))
        keep_a = list(compress(range(len(found)), map(not_, missing)))
        keep_b = list(compress(found, map(not_, missing)))
        gone = list(compress(range(len(found)), missing))
        new = sorted(set(range(len(b.ids))).difference(keep_b))
    changed: set[int] = set()
    for col_a, col_b in zip(a.fixed, b.fixed):
        col_a, col_b = _pick(col_a, keep_a), _pick(col_b, keep_b)
        if col_a != col_b:  # list == runs in C and short-cuts on identity: the usual all-equal case is quick
            changed.update(compress(keep_b, map(ne, col_a, col_b)))
    for rag_a, rag_b in zip(a.ragged, b.ragged):
        changed.update(_ragged_changes(rag_a, rag_b, keep_a, keep_b))
    if not changed:
        return Changes(gone, new, [])
    back = {j: j for j in changed} if isinstance(keep_b, range) else dict(zip(keep_b, keep_a))
    return Changes(gone, new, [(back[j], j) for j in sorted(changed)])


def _pick(column: list, positions: Sequence[int]) -> Sequence:
    return column if isinstance(positions, range) else list(map(column.__getitem__, positions))


def _ragged_changes(a: Ragged, b: Ragged, keep_a: Sequence[int], keep_b: Sequence[int]) -> list[int]:
    """Kept records (positions in b) whose values of this field differ."""
    len_a, len_b = _pick(a.lengths, keep_a), _pick(b.lengths, keep_b)
    changed: list[int] = []
    if len_a != len_b:
        counts_differ = list(map(ne, len_a, len_b))
        changed = list(compress(keep_b, counts_differ))
    if changed:  # drop those records, so that the remaining values line up one to one
        same = list(map(not_, counts_differ))
        keep_a, keep_b = list(compress(keep_a, same)), list(compress(keep_b, same))
        len_b = list(compress(len_b, same))
    values_a = _gather(a.values, a.lengths, keep_a)
    values_b = _gather(b.values, b.lengths, keep_b)
    if all(map(is_, values_a, values_b)):
        return changed
    hits = list(compress(range(len(values_b)), map(a.differ, values_a, values_b)))
    if hits:
        ends = list(accumulate(len_b))
        changed.extend(keep_b[bisect_right(ends, p)] for p in hits)
    return changed


def _gather(values: list, lengths: list[int], positions: Sequence[int]) -> list:
    """The values of the records at `positions`, end to end; one slice per run of consecutive records."""
    if isinstance(positions, range) and len(positions) == len(lengths):
        return values
    if not positions:
        return []
    starts = list(accumulate(lengths, initial=0))
    breaks = list(compress(range(1, len(positions)),
                           map(ne, islice(positions, 1, None), map(add, positions, repeat(1)))))
    out: list = []
    first = 0
    for end in breaks + [len(positions)]:
        out.extend(values[starts[positions[first]]:starts[positions[end - 1] + 1]])
        first = end
    return out


def records(store: Store, positions: Sequence[int]) -> list[tuple]:
    """All fields of the records at `positions`, one tuple each (for comparing a few records one by one)."""
    starts = [list(accumulate(r.lengths, initial=0)) for r in store.ragged]
    return [tuple(col[i] for col in store.fixed)
            + tuple(tuple(r.values[s[i]:s[i + 1]]) for r, s in zip(store.ragged, starts)) for i in positions]
