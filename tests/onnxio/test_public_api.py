"""The names other modules code against stay importable (onnx-ir's public_api_test, in small)."""

import inspect

import graphdsl.onnxio as onnxio

PUBLIC = ["LoadedModel", "ModelMeta", "WriteResult", "atomic_write", "default_ir_version", "export_model",
          "import_model", "model_stats", "read_model", "write_model"]


def test_public_names():
    assert sorted(onnxio.__all__) == PUBLIC
    for name in PUBLIC:
        obj = getattr(onnxio, name)
        assert inspect.getdoc(obj), f"{name} has no docstring"


def test_signatures():
    params = inspect.signature(onnxio.write_model).parameters
    assert list(params) == ["graph", "path", "meta", "ir_version", "external_data", "size_threshold",
                            "input_path", "overwrite_input"]
    assert params["size_threshold"].default == 1024 and params["overwrite_input"].default is False
    assert list(inspect.signature(onnxio.read_model).parameters) == ["path", "load_external"]
    assert list(inspect.signature(onnxio.import_model).parameters) == ["model", "base_dir"]
    assert list(inspect.signature(onnxio.export_model).parameters) == ["graph", "meta", "ir_version", "weights"]
