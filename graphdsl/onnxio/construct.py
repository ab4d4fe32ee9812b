"""Building graphsurgeon objects without their constructors' per-element bookkeeping.

gs.Node(...) and gs.Variable(...) route every input and output through SynchronizedList.extend and
Tensor.__setattr__, which costs ~7 us per tensor; on a 100k-node graph that is most of an import. The
functions here build the same objects field by field. The invariants gs keeps, and these keep too:

- `node.inputs` / `node.outputs` are SynchronizedLists whose parent is the node, synchronised with
  field "outputs" / "inputs" of their elements;
- `tensor.inputs` / `tensor.outputs` are SynchronizedLists (parent: the tensor, field "outputs" /
  "inputs"), and every node appears in `t.outputs` once per time `t` is among its inputs, in node
  order (the importer appends, exactly as SynchronizedList._add_to_elem would).

The instance attributes are exactly those gs's __init__ methods set (see onnx_graphsurgeon/ir/*.py).
"""

from __future__ import annotations

from collections import OrderedDict

import onnx_graphsurgeon as gs
from onnx_graphsurgeon.util.misc import SynchronizedList

_new = object.__new__
_new_list = list.__new__
_extend = list.extend
_append = list.append


def sync_list(parent, field_name: str, items=()) -> SynchronizedList:
    """A SynchronizedList holding `items`, without touching the items' own lists."""
    out = _new_list(SynchronizedList)
    if items:
        _extend(out, items)
    out.parent_obj = parent
    out.field_name = field_name
    return out


def variable(name: str, dtype=None, shape=None, type_name: str = "tensor_type") -> gs.Variable:
    """A gs.Variable with no producers or consumers yet."""
    t = _new(gs.Variable)
    t.__dict__.update(name=name, inputs=sync_list(t, "outputs"), outputs=sync_list(t, "inputs"),
                      dtype=dtype, shape=shape, type=type_name)
    return t


def constant(name: str, values, data_location: int | None = None) -> gs.Constant:
    """A gs.Constant over `values` (a numpy array or a gs.LazyValues)."""
    t = _new(gs.Constant)
    t.__dict__.update(name=name, inputs=sync_list(t, "outputs"), outputs=sync_list(t, "inputs"),
                      _values=values, data_location=data_location, _export_dtype=None)
    return t


def node(op: str, name: str, attrs: OrderedDict, inputs: list, outputs: list, domain) -> gs.Node:
    """A gs.Node wired to its tensors: it joins each input's consumers and each output's producers."""
    n = _new(gs.Node)
    n.__dict__.update(op=op, name=name, attrs=attrs, inputs=sync_list(n, "outputs", inputs),
                      outputs=sync_list(n, "inputs", outputs), domain=domain)
    for t in inputs:
        _append(t.outputs, n)
    for t in outputs:
        _append(t.inputs, n)
    return n


def graph(cls, functions: list, **fields):
    """A gs.Graph (or gs.Function) without Graph.__init__'s walk over every node.

    That walk (_merge_subgraph_functions) makes all graphs of a model share one list of functions;
    the importer passes the same `functions` list to every graph it builds, which is the same result.
    """
    g = _new(cls)
    g.__dict__.update(fields)
    g.__dict__.update(__name__=fields["name"], name_idx=0, _functions=functions)
    return g
