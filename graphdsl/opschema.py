"""Op schemas for semantic checks: onnx.defs for the standard domains, ONNX Runtime for `com.microsoft`.

onnx.defs knows only the ONNX domains; ORT publishes its contrib ops' schemas (SkipLayerNormalization,
FastGelu, Attention, ...) through `get_all_operator_schema`, so both are read through one small view.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import onnx.defs

MS_DOMAIN = "com.microsoft"


@dataclass(frozen=True)
class OpInfo:
    name: str
    domain: str
    since_version: int
    attributes: dict[str, int]  # name -> onnx AttributeProto.AttributeType value
    required: frozenset[str]
    min_input: int
    max_input: int
    min_output: int
    max_output: int


def _info(schema) -> OpInfo:
    return OpInfo(
        name=schema.name, domain=schema.domain, since_version=schema.since_version,
        attributes={n: int(a.type.value) if hasattr(a.type, "value") else int(a.type)
                    for n, a in schema.attributes.items()},
        required=frozenset(n for n, a in schema.attributes.items() if a.required),
        min_input=schema.min_input, max_input=schema.max_input,
        min_output=schema.min_output, max_output=schema.max_output,
    )


@functools.lru_cache(maxsize=None)
def _all() -> dict[tuple[str, str], list[OpInfo]]:
    """(domain, op) -> schemas sorted by since_version."""
    table: dict[tuple[str, str], list[OpInfo]] = {}
    for s in onnx.defs.get_all_schemas_with_history():
        table.setdefault((s.domain, s.name), []).append(_info(s))
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_c

        for s in ort_c.get_all_operator_schema():
            if s.domain == MS_DOMAIN:
                table.setdefault((s.domain, s.name), []).append(_info(s))
    except (ImportError, AttributeError):  # an ORT build without contrib schemas: com.microsoft goes unchecked
        pass
    for infos in table.values():
        infos.sort(key=lambda i: i.since_version)
    return table


def known_domains() -> set[str]:
    return {d for d, _ in _all()} | {"ai.onnx"}


def op_names(domain: str) -> set[str]:
    return {op for d, op in _all() if d == _norm(domain)}


def lookup(op: str, domain: str, version: int) -> OpInfo | None:
    """The schema in force at `version` of the domain (the newest with since_version <= version)."""
    found = None
    for info in _all().get((_norm(domain), op), ()):
        if info.since_version <= version:
            found = info
    return found


def exists_in_any_version(op: str, domain: str) -> bool:
    return (_norm(domain), op) in _all()


def all_versions(op: str, domain: str) -> list[OpInfo]:
    """Every schema of the op, oldest first ([] for unknown ops)."""
    return list(_all().get((_norm(domain), op), ()))


def first_version(op: str, domain: str) -> int | None:
    infos = _all().get((_norm(domain), op))
    return infos[0].since_version if infos else None


def _norm(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain


def schema_at(qualified_op: str, opsets: dict[str, int]) -> OpInfo | None:
    """The schema of `Op` or `domain::Op` at the model's opset; None for ops without one.

    A model's custom ops have no schema and are not an error here (`scope.schema` would report them):
    the node exists, so its op is whatever the model says it is.
    """
    domain, _, op = qualified_op.rpartition("::")
    domain = "" if domain == "ai.onnx" else domain
    version = opsets.get(domain, onnx.defs.onnx_opset_version() if domain == "" else 1)
    return lookup(op, domain, version)


def graph_opsets(graph) -> dict[str, int]:
    opsets = {d.domain: d.version for d in graph.import_domains or ()}
    opsets.setdefault("", graph.opset)
    return {("" if k == "ai.onnx" else k): v for k, v in opsets.items()}


def as_schema_type(value: object, attr_type: int | None) -> object:
    """Ints widen to floats where the schema takes FLOAT or FLOATS; tuples become lists."""
    if isinstance(value, tuple):
        value = list(value)
    if attr_type == onnx.AttributeProto.FLOAT and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if attr_type == onnx.AttributeProto.FLOATS and isinstance(value, list):
        return [float(v) for v in value]
    return value
