"""The default pipeline keeps what every ONNX backend node test computes.

Every node test of the installed onnx (`load_model_tests(kind="node")`, each with its own inputs, expected
outputs and tolerances) is first run in ONNX Runtime as it is. Those ORT cannot load or run, or whose
outputs ORT gets wrong, are "not applicable" and counted by reason. Every other one goes through the
default pipeline (std/default.gds and the standard rule files, see reliability_helpers) in-process, and the
result must still load in ORT and give the expected outputs within the test's tolerance, and ORT's own
outputs from before within the same tolerance. Nothing is skipped silently: the summary line counts each
group. Failures caused by known bugs of other modules are listed in KNOWN_BUGS by a test that recognises
the models they hit; the test fails on any other failure, and on a known bug that no longer shows (so the
list is kept honest).
"""

from __future__ import annotations

import collections
import time
import warnings

import onnx
import pytest
from reliability_helpers import (
    default_pipeline_files,
    default_script,
    identical,
    outputs_close,
    session,
    to_numpy,
)

import graphdsl
from graphdsl.diagnostics import GraphdslError


def _graphs(graph: onnx.GraphProto):
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            for sub in attr.graphs:
                yield from _graphs(sub)


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _has_op(model: onnx.ModelProto, op: str) -> bool:
    return any(n.op_type == op for g in _graphs(model.graph) for n in g.node)


# bug -> (does a test case's model hit it?, what is wrong). Each is described in full in the report of
# issue 6; whoever fixes one removes its entry (the test fails while an entry no case hits is listed).
KNOWN_BUGS: dict = {}  # none known now (fixed: fold-branch-output-shape, fusion-swish-opset24)


def _cases():
    from onnx.backend.test.loader import load_model_tests

    with warnings.catch_warnings():  # the generators of a few cases overflow casts on purpose
        warnings.simplefilter("ignore")
        return load_model_tests(kind="node")


def _run_all(model: onnx.ModelProto, data_sets) -> list:
    sess = session(model)
    names = [i.name for i in sess.get_inputs()]
    return [sess.run(None, dict(zip(names, map(to_numpy, inputs)))) for inputs, _ in data_sets]


def _as_expected(results: list, case) -> bool:
    return all(outputs_close(got, to_numpy(want), case.rtol, case.atol)
               for got, (_, want) in zip(results, case.data_sets))


def _before(case) -> tuple[str, list | None]:
    """("ok", outputs) when ORT passes the test as it is, else (reason it is not applicable, None)."""
    try:
        sess = session(case.model)
    except Exception:  # noqa: BLE001 - any load failure makes the case not applicable
        return "ORT cannot load", None
    names = [i.name for i in sess.get_inputs()]
    try:
        results = [sess.run(None, dict(zip(names, map(to_numpy, inputs)))) for inputs, _ in case.data_sets]
    except Exception as e:  # noqa: BLE001
        if "Numpy_type" in str(e) or "No corresponding Numpy type" in str(e):  # bfloat16, float8, int4, ...
            return "ORT's Python API cannot take the input type", None
        return "ORT cannot run", None
    if not _as_expected(results, case):
        return "ORT gives other outputs", None
    return "ok", results


def _after(pipeline, case, before: list) -> tuple[str, bool]:
    """("pass", bit-identical?) or (what went wrong, False)."""
    try:
        result = pipeline.run(case.model, no_verify=True)
    except GraphdslError as e:
        return f"pipeline refused the model ({e.diagnostics[0].code})", False
    if result.checker:
        return "result fails onnx.checker", False
    try:
        after = _run_all(result.model, case.data_sets)
    except Exception:  # noqa: BLE001
        return "ORT cannot load or run the result", False
    if not _as_expected(after, case):
        return "result gives other outputs than expected", False
    if not all(outputs_close(a, b, case.rtol, case.atol) for a, b in zip(after, before)):
        return "result gives other outputs than before", False
    return "pass", all(identical(a, b) for a, b in zip(after, before))


def _known_bug(case) -> str | None:
    return next((name for name, (hits, _) in KNOWN_BUGS.items() if hits(case)), None)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_default_pipeline_keeps_every_node_test_ort_passes(figures):
    start = time.perf_counter()
    cases = _cases()
    pipeline = graphdsl.compile(default_script())
    not_applicable: collections.Counter = collections.Counter()
    passed = identical_count = 0
    known: dict[str, list[str]] = collections.defaultdict(list)
    unexpected: list[str] = []
    for case in cases:
        state, before = _before(case)
        if state != "ok":
            not_applicable[state] += 1
            continue
        outcome, same_bits = _after(pipeline, case, before)
        if outcome == "pass":
            passed += 1
            identical_count += same_bits
            continue
        bug = _known_bug(case)
        if bug:
            known[bug].append(case.name)
        else:
            unexpected.append(f"{case.name}: {outcome}")
    applicable = len(cases) - sum(not_applicable.values())
    figures(f"backend node tests ({' + '.join(default_pipeline_files())}): {len(cases)} cases; "
            f"ORT passes {applicable} before the pipeline, {passed} after ({identical_count} bit-identical); "
            f"not applicable: " + ", ".join(f"{n} {why}" for why, n in sorted(not_applicable.items())) +
            "; known bugs: " + (", ".join(f"{len(v)} {k}" for k, v in sorted(known.items())) or "none") +
            f"; unexpected failures: {len(unexpected)}; {time.perf_counter() - start:.1f} s")
    assert not unexpected, "the default pipeline changed what these tests compute:\n" + "\n".join(unexpected)
    fixed = [name for name in KNOWN_BUGS if not known[name]]
    assert not fixed, f"known bugs that no longer show (remove them from KNOWN_BUGS): {fixed}"
    assert passed + sum(map(len, known.values())) == applicable
