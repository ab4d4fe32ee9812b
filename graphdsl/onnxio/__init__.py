"""Fast ONNX file <-> graphsurgeon Graph IO."""
