"""The diagnostic codes this package raises (documented in docs/errors.md)."""

MODEL_UNREADABLE = "GDS301"  # the model file does not exist, is a folder, or cannot be opened
MODEL_CORRUPT = "GDS302"  # the bytes are not an ONNX model: truncated, bit-flipped, inconsistent
EXTERNAL_OUTSIDE = "GDS303"  # an external data path leaves the model's folder (.., absolute, symlink)
OVERWRITES_INPUT = "GDS304"  # an output would replace the input model or a file it reads from
EXTERNAL_SHORT = "GDS308"  # an external data file is missing or shorter than the model declares
