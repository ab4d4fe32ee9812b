"""Every standard rule keeps what the ONNX backend node tests it touches compute.

Each rule file of passes/std is applied alone (no folding, no cleanup pass) to every node test of the
installed onnx (`load_model_tests(kind="node")`). Where a rule rewrote something, the result must pass
`onnx.checker` (full), and ONNX Runtime must give the test's expected outputs and its own outputs from
before the rewrite, within the test's tolerances. Cases ONNX Runtime cannot run (or gets wrong) as they
are, are counted as not applicable. The figures (cases touched per rule) are printed in the summary.
"""

from __future__ import annotations

import collections
import functools
import warnings

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from onnx import numpy_helper
from stdkit import session, std_rules

from graphdsl.match import apply_rules

FILES = ("fusions", "cleanup", "ort", "trt_compat", "swish")


@functools.cache
def _cases() -> list:
    from onnx.backend.test.loader import load_model_tests

    with warnings.catch_warnings():  # the generators of a few cases overflow casts on purpose
        warnings.simplefilter("ignore")
        return load_model_tests(kind="node")


def _array(value):
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, (list, tuple)):
        return [_array(v) for v in value]
    return value if value is None else np.asarray(value)


def _close(got, want, rtol: float, atol: float) -> bool:
    if isinstance(want, list) or isinstance(got, list):
        return isinstance(got, list) and isinstance(want, list) and len(got) == len(want) and \
            all(_close(g, w, rtol, atol) for g, w in zip(got, want))
    if want is None or got is None:
        return want is None and got is None
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return False
    if want.dtype.kind in "fc":
        return bool(np.allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol,
                                equal_nan=True))
    return bool(np.array_equal(got, want))


def _run(model: onnx.ModelProto, case) -> list | None:
    try:
        sess = session(model)
        names = [i.name for i in sess.get_inputs()]
        return [sess.run(None, dict(zip(names, map(_array, inputs)))) for inputs, _ in case.data_sets]
    except Exception:  # noqa: BLE001 - the caller decides what a failure to run means
        return None


def _op_types(graph: onnx.GraphProto) -> set[str]:
    ops = set()
    for n in graph.node:
        ops.add(n.op_type)
        for a in n.attribute:
            for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                ops |= _op_types(g)
    return ops


def _could_match(case, rules) -> bool:
    """Some rule has all its mandatory ops in the model (a cheap filter before importing it)."""
    present = _op_types(case.model.graph) | {n.op_type for f in case.model.functions for n in f.node}
    return any({p.op for p in rule.pattern.mandatory()} <= present for rule in rules)


def _rewrite(case, rules) -> tuple[onnx.ModelProto | None, dict]:
    """The case's model with the rules applied, or (None, {}) when none applied."""
    if not _could_match(case, rules):
        return None, {}
    try:
        graph = gs.import_onnx(case.model)
    except Exception:  # noqa: BLE001 - models graphsurgeon cannot import are nothing a rule can touch
        return None, {}
    outcome = apply_rules(graph, rules)
    if not outcome.changed:
        return None, {}
    return gs.export_onnx(graph), outcome.counts


def _reference(model: onnx.ModelProto, case) -> list | None:
    """onnx's reference evaluator on the case's inputs: the judge where ONNX Runtime has no kernel for an
    op a rule introduced (Swish-24 runs in ORT 1.32 at opset 24 only)."""
    from onnx.reference import ReferenceEvaluator

    try:
        evaluator = ReferenceEvaluator(model)
        names = [i.name for i in model.graph.input]
        return [evaluator.run(None, dict(zip(names, map(_array, inputs)))) for inputs, _ in case.data_sets]
    except Exception:  # noqa: BLE001
        return None


def _expected_ok(outputs: list, case) -> bool:
    return all(_close(got, _array(want), case.rtol, case.atol)
               for run, (_, wants) in zip(outputs, case.data_sets) for got, want in zip(run, wants))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", FILES)
def test_std_rules_keep_backend_node_tests(name, std_figures):
    rules = std_rules(name)
    touched: collections.Counter = collections.Counter()
    cases_touched, not_applicable, by_reference, failures = 0, 0, 0, []
    for case in _cases():
        after, counts = _rewrite(case, rules)
        if after is None:
            continue
        before = _run(case.model, case)
        if before is None or not _expected_ok(before, case):
            not_applicable += 1
            continue
        cases_touched += 1
        touched.update(counts)
        try:
            onnx.checker.check_model(after, full_check=True)
        except Exception as e:  # noqa: BLE001
            failures.append(f"{case.name} ({', '.join(counts)}): onnx.checker: {str(e)[:200]}")
            continue
        got = _run(after, case)
        if got is None:
            got = _reference(after, case)
            if got is None or not _expected_ok(got, case):
                failures.append(f"{case.name} ({', '.join(counts)}): ORT cannot run the result, and onnx's "
                                "reference evaluator does not give the expected outputs")
            by_reference += 1
        elif not _expected_ok(got, case) or not all(_close(a, b, case.rtol, case.atol)
                                                    for a, b in zip(got, before)):
            failures.append(f"{case.name} ({', '.join(counts)}): other outputs")
    rules_touched = ", ".join(f"{rule} {n}" for rule, n in sorted(touched.items())) or "none"
    std_figures(f"std/{name}.gds on the backend node tests: {cases_touched} cases rewritten, outputs as "
                f"expected and as before ({by_reference} of them judged by onnx's reference evaluator: ORT "
                f"has no kernel for the result); {not_applicable} rewritten but not runnable in ORT as they "
                f"are; rules: {rules_touched}")
    assert not failures, "\n".join(failures)
