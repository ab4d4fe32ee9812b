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

import onnx_graphsurgeon as gs
from onnx_graphsurgeon.util.misc import SynchronizedList

_new = object.__new__
_new_list = list.__new__
_extend = list.extend
_append = list.append
# gs's Node and Tensor define __setattr__ in Python, so plain assignment would run it; __dict__.update
# would be as fast but materialises a dict per object, which slows every later attribute access (and
# every garbage collection) for whoever uses the graph. object.__setattr__ keeps CPython's inline values.
_set = object.__setattr__

ORIGIN = "_gds_origin"  # extra instance attribute of imported nodes and graphs; read by exporter.py
HOME = "_gds_home"  # extra attribute of imported initializers: (declaring graph, (source id, offset))


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
    _set(t, "name", name)
    _set(t, "inputs", sync_list(t, "outputs"))
    _set(t, "outputs", sync_list(t, "inputs"))
    _set(t, "dtype", dtype)
    _set(t, "shape", shape)
    _set(t, "type", type_name)
    return t


def constant(name: str, values, data_location: int | None = None, home: tuple | None = None) -> gs.Constant:
    """A gs.Constant over `values` (a numpy array or a gs.LazyValues).

    `home`, for initializers read from a file: (the graph declaring it, (source id, offset in the file)),
    so the writer keeps it in that graph and at that place among the initializers.
    """
    t = _new(gs.Constant)
    _set(t, "name", name)
    _set(t, "inputs", sync_list(t, "outputs"))
    _set(t, "outputs", sync_list(t, "inputs"))
    _set(t, "_values", values)
    _set(t, "data_location", data_location)
    _set(t, "_export_dtype", None)
    if home is not None:
        _set(t, HOME, home)
    return t


def node(op: str, name: str, attrs: dict, inputs: list, outputs: list, domain, origin=None) -> gs.Node:
    """A gs.Node wired to its tensors: it joins each input's consumers and each output's producers.

    `origin`, when given, is stored as the extra attribute ORIGIN (read by the exporter).
    """
    n = _new(gs.Node)
    # sync_list inlined: this runs once per node of every graph read
    ins = _new_list(SynchronizedList)
    _extend(ins, inputs)
    ins.parent_obj, ins.field_name = n, "outputs"
    outs = _new_list(SynchronizedList)
    _extend(outs, outputs)
    outs.parent_obj, outs.field_name = n, "inputs"
    _set(n, "op", op)
    _set(n, "name", name)
    _set(n, "attrs", attrs)
    _set(n, "inputs", ins)
    _set(n, "outputs", outs)
    _set(n, "domain", domain)
    if origin is not None:
        _set(n, ORIGIN, origin)
    for t in inputs:
        _append(t.outputs, n)
    for t in outputs:
        _append(t.inputs, n)
    return n


def set_origin(obj, origin) -> None:
    """Attach the importer's record of where an object's bytes are (gs.Graph's __setattr__ bypassed)."""
    _set(obj, ORIGIN, origin)


def origin_of(obj):
    """The importer's record for a node or graph, or None (never materialises an instance dict)."""
    try:
        return object.__getattribute__(obj, ORIGIN)
    except AttributeError:
        return None


def home_of(constant: gs.Constant) -> tuple:
    """(declaring graph, (source id, offset)) of an imported initializer, or (None, None)."""
    try:
        return object.__getattribute__(constant, HOME)
    except AttributeError:
        return None, None


def graph(cls, functions: list, **fields):
    """A gs.Graph (or gs.Function) without Graph.__init__'s walk over every node.

    That walk (_merge_subgraph_functions) makes all graphs of a model share one list of functions;
    the importer passes the same `functions` list to every graph it builds, which is the same result.
    """
    g = _new(cls)
    for key, value in fields.items():
        _set(g, key, value)
    _set(g, "__name__", fields["name"])
    _set(g, "name_idx", 0)
    _set(g, "_functions", functions)
    return g
