"""Column stores: many small records compared in bulk, with every per-record step running in C.

Python spends most of a graph snapshot on per-object overhead: a loop iteration, a tuple per node, and
later the garbage collector walking those tuples (a full collection over a 100k-node graph takes about
a second). So records are kept as a few long lists instead: fixed-width fields as one list each, and
variable-length fields (a node's inputs) as one flat list plus a list of lengths. Comparing two stores
is then `map(operator.ne, ...)` over whole lists, and Python-level loops run only over what differs.

Records kept from one store to the next are aligned as *runs*: stretches that are consecutive in both
stores. A pass that removes or inserts a few nodes leaves a few long runs, so lining the two stores up
costs one slice per run.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate, chain, compress, repeat
from operator import is_, ne, not_
from typing import Callable, Sequence

import numpy as np



@dataclass(eq=False)
class Ragged:
    """A variable-length field of every record: all values end to end, and each record's count."""

    values: list
    lengths: list[int]
    differ: Callable = ne  # how two values are compared: `ne`, or `is_not` for identity
    _starts: list[int] | None = field(default=None, repr=False)

    def starts(self) -> list[int]:
        """Where each record's values begin in `values` (one more entry: the end)."""
        if self._starts is None:
            self._starts = list(accumulate(self.lengths, initial=0))
        return self._starts


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


@dataclass
class _Runs:
    """The records kept in both stores, as runs: (start in store a, start in store b, length).

    `keep_a[k]`, `keep_b[k]` are the positions of the k-th kept record in each store.
    """

    runs: list[tuple[int, int, int]]
    keep_a: np.ndarray
    keep_b: np.ndarray

    @classmethod
    def of(cls, keep_a: np.ndarray, keep_b: np.ndarray) -> "_Runs":
        if len(keep_a) == 0:
            return cls([], keep_a, keep_b)
        breaks = np.flatnonzero((np.diff(keep_a) != 1) | (np.diff(keep_b) != 1)) + 1
        firsts = np.concatenate(([0], breaks))
        sizes = np.diff(np.concatenate((firsts, [len(keep_a)])))
        runs = zip(keep_a[firsts].tolist(), keep_b[firsts].tolist(), sizes.tolist())
        return cls(list(runs), keep_a, keep_b)

    def without(self, kept_indexes: list[int]) -> "_Runs":
        """The same runs minus the k-th kept records for every k given."""
        return _Runs.of(np.delete(self.keep_a, kept_indexes), np.delete(self.keep_b, kept_indexes))

    def pick(self, column: list, side: int) -> list:
        """The column's entries for the kept records, in kept order (side 0: store a, 1: store b)."""
        if len(self.runs) == 1 and self.runs[0][side] == 0 and self.runs[0][2] == len(column):
            return column
        return list(chain.from_iterable(column[r[side]:r[side] + r[2]] for r in self.runs))

    def gather(self, ragged: Ragged, side: int) -> list:
        """The ragged field's values of the kept records, end to end, in kept order."""
        if len(self.runs) == 1 and self.runs[0][side] == 0 and self.runs[0][2] == len(ragged.lengths):
            return ragged.values
        starts = ragged.starts()
        values = ragged.values
        return list(chain.from_iterable(values[starts[r[side]]:starts[r[side] + r[2]]] for r in self.runs))


def compare(a: Store, b: Store) -> Changes:
    """Which records of `a` are gone, which of `b` are new, and which kept ones differ in any field."""
    if a.ids == b.ids:  # the common case of a pass that edits in place: nothing to match up
        everything = np.arange(len(a.ids))
        runs, gone, new = _Runs([(0, 0, len(a.ids))] if a.ids else [], everything, everything), [], []
    else:
        where = dict(zip(b.ids, range(len(b.ids))))
        found = np.fromiter(map(where.get, a.ids, repeat(-1)), dtype=np.int64, count=len(a.ids))
        kept = found >= 0
        unseen = np.ones(len(b.ids), dtype=bool)
        unseen[found[kept]] = False
        runs = _Runs.of(np.flatnonzero(kept), found[kept])
        gone, new = np.flatnonzero(~kept).tolist(), np.flatnonzero(unseen).tolist()
    changed: set[int] = set()  # kept indexes
    for col_a, col_b in zip(a.fixed, b.fixed):
        col_a, col_b = runs.pick(col_a, 0), runs.pick(col_b, 1)
        if col_a != col_b:  # list == runs in C and short-cuts on identity: the usual all-equal case is quick
            changed.update(compress(range(len(col_b)), map(ne, col_a, col_b)))
    for rag_a, rag_b in zip(a.ragged, b.ragged):
        changed.update(_ragged_changes(rag_a, rag_b, runs))
    ordered = sorted(changed)
    return Changes(gone, new, list(zip(runs.keep_a[ordered].tolist(), runs.keep_b[ordered].tolist())))


def _ragged_changes(a: Ragged, b: Ragged, runs: _Runs) -> list[int]:
    """Kept indexes of the records whose values of this field differ."""
    len_a, len_b = runs.pick(a.lengths, 0), runs.pick(b.lengths, 1)
    changed: list[int] = []
    index = range(len(len_b))
    if len_a != len_b:  # set those records aside, so that the remaining values line up one to one
        counts_differ = list(map(ne, len_a, len_b))
        changed = list(compress(range(len(len_b)), counts_differ))
        same = list(map(not_, counts_differ))
        index, len_b = list(compress(index, same)), list(compress(len_b, same))
        runs = runs.without(changed)
    values_a, values_b = runs.gather(a, 0), runs.gather(b, 1)
    if all(map(is_, values_a, values_b)):  # the usual case, and exact for either way of comparing
        return changed
    hits = list(compress(range(len(values_b)), map(a.differ, values_a, values_b)))
    if hits:
        ends = list(accumulate(len_b))
        changed.extend(index[bisect_right(ends, p)] for p in hits)
    return changed


def records(store: Store, positions: Sequence[int]) -> list[tuple]:
    """All fields of the records at `positions`, one tuple each (for comparing a few records one by one)."""
    starts = [r.starts() for r in store.ragged]
    return [tuple(col[i] for col in store.fixed)
            + tuple(tuple(r.values[s[i]:s[i + 1]]) for r, s in zip(store.ragged, starts)) for i in positions]
