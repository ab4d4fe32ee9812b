"""graphdsl: a small language for ONNX graph surgery, checked numerically with ONNX Runtime."""
