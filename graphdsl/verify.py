"""Proof that a rewrite changed nothing: `onnx.checker`, then ONNX Runtime on the input model and the result.

`check_model` runs the ONNX checker with full (strict, type-checking) shape inference. `verify` runs the
input model (the *reference*) and the result (the *candidate*) in real ONNX Runtime CPU sessions on the
same seeded inputs and compares every output of the candidate with its counterpart in the reference.

The candidate's inputs and outputs need not be the reference's. After `extract` they are intermediate
tensors of the reference, and passes may rename tensors (`renames`: candidate name -> reference name).
Like Polygraphy's "mark outputs", the reference is run with those intermediate tensors added as extra
graph outputs, and the candidate's inputs are fed with the reference's values for them.

Models are handed to ONNX Runtime as serialized bytes. Extra outputs are added by appending a serialized
`ModelProto` that holds only those outputs: protobuf merges concatenated messages (repeated fields are
appended), so the caller's proto is never copied or modified. Models over 2 GB go through a temporary
folder with external data, which ONNX Runtime is told about with a session config entry.
"""

from __future__ import annotations

import contextlib
import math
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from graphdsl.diagnostics import Diagnostic, ModelError, did_you_mean, model_error
from graphdsl.onnxio.skeleton import skeleton_bytes

CHECK_FAILED = "GDS306"
ORT_FAILED = "GDS402"
BAD_DATA = "GDS403"

#: Protobuf cannot serialize a message of 2 GiB or more; such models are written with external data.
PROTO_LIMIT = 2**31 - 1
#: Random integer inputs are drawn from [0, INT_HIGH): small and non-negative, so index-like inputs
#: (Gather indices, token ids, sizes) stay in range for almost any model.
INT_HIGH = 4
#: rtol used when the settings give none; atol is then derived from ONNX Runtime's own noise.
DEFAULT_RTOL = 1e-4

_EXTERNAL_FOLDER_KEY = "session.model_external_initializers_file_folder_path"
_EXTERNAL_THRESHOLD = 1024
Progress = Callable[[str, float], None]


@dataclass
class VerifySettings:
    """How to compare: tolerances, how many samples, which data.

    Args:
        atol: absolute tolerance; None derives it from ONNX Runtime's noise (see `verify`).
        rtol: relative tolerance; None means 1e-4.
        samples: how many random input samples to run (user data brings its own count).
        seed: seed of the numpy Generator that draws the random inputs.
        data: a `.npz` file (arrays by input name) or a `.npy` file (the model's single input); an array
            with one more leading axis than the input's rank holds several samples.
        dims: sizes for symbolic dims by name; any other symbolic or unknown dim is 1.

    Attributes:
        shapes: sizes by input name and position, from `verify shape` (set by the runner, not an option):
            they size an input's dims the model leaves open, named or not (`[-1, 3, ?, ?]`).
    """

    atol: float | None = None
    rtol: float | None = None
    samples: int = 1
    seed: int = 0
    data: Path | None = None
    dims: dict[str, int] = field(default_factory=dict)
    shapes: dict[str, list] = field(default_factory=dict, init=False)


@dataclass
class OutputCheck:
    """The comparison of one candidate output with its reference tensor.

    When the output could not be compared element by element (no counterpart in the input model, a
    different shape, the result failed to run), `max_abs` and `max_rel` are inf, `cosine` is nan and
    `note` says why. `noise` is None when tolerances were given rather than derived.
    """

    name: str
    reference_name: str
    shape: list[int]
    dtype: str
    max_abs: float
    max_rel: float
    cosine: float
    noise: float | None
    atol: float
    rtol: float
    passed: bool
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """Keys: name, reference_name, shape, dtype, max_abs, max_rel, cosine, noise, atol, rtol, passed,
        note. Non-finite floats are the strings "inf", "-inf", "nan" (JSON has no such numbers)."""
        return {"name": self.name, "reference_name": self.reference_name, "shape": list(self.shape),
                "dtype": self.dtype, "max_abs": _json_float(self.max_abs),
                "max_rel": _json_float(self.max_rel), "cosine": _json_float(self.cosine),
                "noise": _json_float(self.noise),
                "atol": _json_float(self.atol), "rtol": _json_float(self.rtol), "passed": self.passed,
                "note": self.note}


@dataclass
class Verification:
    """The outcome of `verify`: one `OutputCheck` per candidate output, and what was noticed on the way."""

    outputs: list[OutputCheck]
    passed: bool
    samples: int
    seconds: float
    messages: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Keys: passed, samples, outputs (see `OutputCheck.to_json`), messages, timings.seconds."""
        return {"passed": self.passed, "samples": self.samples,
                "outputs": [o.to_json() for o in self.outputs], "messages": list(self.messages),
                "timings": {"seconds": self.seconds}}

    def __rich_console__(self, console, options):
        from graphdsl.report.render import verification_table

        yield verification_table(self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        from graphdsl.report.render import mimebundle

        return mimebundle(self)


def _json_float(value: float | None) -> float | str | None:
    if value is None or np.isfinite(value):
        return value
    return "nan" if np.isnan(value) else ("inf" if value > 0 else "-inf")


# --- onnx.checker -------------------------------------------------------------------------------------


# Below this size a file is checked whole: the checker's second copy of it costs little, and building the
# skeleton walks every node's bytes in Python (about 1 s on a 100k-node model).
SKELETON_MIN = 256 * 2**20


def check_model(model: onnx.ModelProto | Path, *, skeleton: bool = False) -> list[Diagnostic]:
    """Run `onnx.checker` with full checking (strict shape inference, type checks) on a model.

    Args:
        model: the model, or its path (a proto over 2 GB is written to a temporary folder and checked
            from there, since protobuf cannot serialize it whole).
        skeleton: for a path of SKELETON_MIN bytes or more: check its skeleton first (onnxio/skeleton.py),
            written beside it, so that embedded weights are not read (the checker holds a file twice over
            while it parses it). Only a model the skeleton fails is checked whole, so every verdict and
            message is the file's own.

    Returns:
        An empty list for a valid model, else one GDS306 diagnostic naming the node or tensor involved
        when the checker's message lets us find it.
    """
    label = Path(model).name if isinstance(model, (str, Path)) else "result"
    if skeleton and isinstance(model, (str, Path)) and _big(Path(model)):
        stripped = _Skeleton(Path(model))
        found = _run_checker(stripped, label)
        if not found or not stripped.made:
            return found
    return _run_checker(model, label)


def _big(path: Path) -> bool:
    return path.stat().st_size >= SKELETON_MIN


class _Skeleton:
    """The skeleton of a model file while it is checked (or the file itself when none is needed)."""

    def __init__(self, path: Path):
        self.path, self.copy, self.made = path, None, False

    def __enter__(self) -> Path:
        from graphdsl.onnxio.skeleton import write_skeleton

        try:
            self.copy = write_skeleton(self.path)
        except OSError:  # a folder we cannot write to: check the file itself
            self.copy = None
        self.made = self.copy is not None
        return self.copy or self.path

    def __exit__(self, *exc) -> None:
        if self.copy is not None:
            self.copy.unlink(missing_ok=True)


def _run_checker(model: onnx.ModelProto | Path | _Skeleton, label: str) -> list[Diagnostic]:
    try:
        with contextlib.ExitStack() as stack:
            onnx.checker.check_model(_checkable(model, stack), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        return [_checker_diagnostic(str(e), label)]
    return []


def _checkable(model, stack: contextlib.ExitStack) -> onnx.ModelProto | str:
    if isinstance(model, _Skeleton):
        return str(stack.enter_context(model))
    if isinstance(model, (str, Path)):
        return str(model)
    if model.ByteSize() <= PROTO_LIMIT:
        return model
    return str(_externalized(model, stack))


# (pattern, group of the node name, group of the op) for the messages of the checker and of ONNX Runtime
_NODE_PATTERNS = (
    (r"[Nn]ame: (\S+) OpType: (\S+)", 1, 2),          # checker: "Bad node spec ... Name: n0 OpType: Foo"
    (r"op_type:(\w+), node name: ([^)]+)\)", 2, 1),    # shape inference: "(op_type:Add, node name: add0)"
    (r"In Node, \(\"([^\"]*)\", (\w+)", 1, 2),          # ORT: In Node, ("foo0", Foo, ...
    (r"Node \(([^)]+)\) Op \((\w+)\)", 1, 2),           # ORT: Node (add0) Op (Add)
    (r"in node \(([^)]+)\)", 1, None),                # ORT: ... in node (add0).
    (r"running (\w+) node\. Name:'([^']*)'", 2, 1),     # ORT run: running Reshape node. Name:'flatten'
)
_TENSOR_PATTERNS = (r"input '([^']+)'", r"[Tt]ensor '([^']+)'", r"initializer: ([^.\s]+)")


def _where(message: str, label: str) -> str:
    """`label: node 'n' (Op)` or `label: tensor 't'` when the message names one, else just the label."""
    for pattern, name_group, op_group in _NODE_PATTERNS:
        m = re.search(pattern, message)
        if m:
            name, op = m.group(name_group), m.group(op_group) if op_group else ""
            if not name:
                return f"{label}: a {op} node"
            return f"{label}: node '{name}' ({op})" if op else f"{label}: node '{name}'"
    for pattern in _TENSOR_PATTERNS:
        m = re.search(pattern, message)
        if m:
            return f"{label}: tensor '{m.group(1)}'"
    return label


def _checker_hint(message: str) -> str:
    if "topologically sorted" in message:
        return ("a node reads a tensor that no earlier node produces: run `cleanup` (it sorts the graph) "
                "or check that the pass connected every input")
    if "No opset import" in message:
        return "the model imports no opset for the node's domain: whatever added the node must add one"
    if "No Op registered" in message:
        return "the op is not in this domain at the model's opset: check its spelling, domain and opset"
    if "InferenceError" in message:
        return "a node's inputs do not fit its op (types, shapes or attributes); run with --verify-each " \
               "to find the pass that made it"
    return "run with --verify-each to find the pass that made the model invalid"


def _checker_diagnostic(message: str, label: str) -> Diagnostic:
    subject = "the result" if label == "result" else label
    return Diagnostic(CHECK_FAILED, f"{subject} is not a valid ONNX model: {_condense(message)}",
                      location=_where(message, label),
                      hints=(_checker_hint(message),))


def _condense(message: str, limit: int = 240) -> str:
    """One line: ORT's `[ONNXRuntimeError] : 1 : FAIL :` prefix and the checker's context lines dropped."""
    text = re.sub(r"\[ONNXRuntimeError\] : \d+ : \w+ : ", "", message)
    text = re.sub(r"Load model from .*? failed:", "", text)
    # run-time failures: the node is named in the location already; ORT's source file and C++ signature
    # say nothing to a user
    text = re.sub(r"Non-zero status code returned while running \w+ node\. Name:'[^']*' Status Message: ", "",
                  text)
    text = re.sub(r"\S+\.(?:h|cc|cpp):\d+ [\w:~<>]+\(.*?\)\s+", "", text)
    text = text.split("==> Context:")[0]
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- models as ONNX Runtime loads them ------------------------------------------------------------------


@dataclass
class _Model:
    """A model ready for ONNX Runtime: bytes, the folder its external data lives in, its graph's names."""

    data: bytes
    folder: Path | None
    label: str  # "input model" or "result", for error messages
    inputs: list["_Port"]
    outputs: list["_Port"]
    tensors: set[str]  # every name a top-level node produces, plus inputs and initializers


def _open(model: onnx.ModelProto | Path, label: str, stack: contextlib.ExitStack) -> _Model:
    if isinstance(model, (str, Path)):
        path = Path(model)
        try:
            # a file with big embedded weights is handed over as its skeleton (onnxio/skeleton.py): ONNX
            # Runtime reads the weights from the file itself, once, instead of parsing a copy of the file
            data = (skeleton_bytes(path) if _big(path) else None) or path.read_bytes()
        except OSError as e:
            raise model_error(ORT_FAILED, f"cannot read the {label} `{path}`: {e.strerror}",
                              location=str(path)) from None
        # external weights are not loaded: only the graph's names are needed here
        try:
            proto = onnx.load_from_string(data)
        except DecodeError as e:  # protobuf's nesting limit (about 33 If levels), or a corrupt file
            raise model_error(ORT_FAILED, f"the {label} cannot be parsed by protobuf, so neither onnx nor "
                              f"ONNX Runtime can load it: {str(e).splitlines()[0]}", location=str(path),
                              hint="a model nested deeper than protobuf parses (about 33 levels of If "
                                   "bodies) runs nowhere; skip the comparison with --no-verify") from None
        return _described(proto, data, path.parent, label)
    if model.ByteSize() <= PROTO_LIMIT:
        return _described(model, model.SerializeToString(), None, label)
    path = _externalized(model, stack)
    return _described(model, path.read_bytes(), path.parent, label)


def _described(proto: onnx.ModelProto, data: bytes, folder: Path | None, label: str) -> _Model:
    g = proto.graph
    weights = {i.name for i in g.initializer}
    tensors = {o for node in g.node for o in node.output if o} | weights
    tensors.update(i.name for i in g.input)
    inputs = [_port(v) for v in g.input if v.name not in weights]  # IR < 4 lists initializers as inputs
    return _Model(data, folder, label, inputs, [_port(v) for v in g.output], tensors)


def _externalized(model: onnx.ModelProto, stack: contextlib.ExitStack) -> Path:
    """Write a model too big for protobuf to a temporary folder, its weights in one external file."""
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="graphdsl-verify-")))
    path = folder / "model.onnx"
    save_external(model, path)
    return path


def save_external(model: onnx.ModelProto, path: Path, threshold: int = _EXTERNAL_THRESHOLD) -> None:
    """Save `model` at `path` with its large tensors in `path.stem + '.data'` beside it.

    Unlike `onnx.save_model(..., save_as_external_data=True)` this neither copies the proto nor leaves it
    changed: each tensor's bytes move to the data file, the (now small) proto is written, and the bytes
    are read back into the tensors, so memory stays about one tensor above the model's own size.
    """
    from onnx.external_data_helper import _get_all_tensors, set_external_data

    location = path.stem + ".data"
    moved: list[tuple[onnx.TensorProto, int, int, bool]] = []
    try:
        with open(path.parent / location, "wb") as out:
            for tensor in _get_all_tensors(model):
                raw = tensor.raw_data if tensor.HasField("raw_data") else b""
                if len(raw) >= threshold:
                    offset = out.tell()
                    out.write(raw)
                    moved.append((tensor, offset, len(raw), tensor.HasField("data_location")))
                    set_external_data(tensor, location, offset, len(raw))
                    tensor.data_location = onnx.TensorProto.EXTERNAL
                    tensor.ClearField("raw_data")
        path.write_bytes(model.SerializeToString())
    finally:
        _restore(moved, path.parent / location)


def _restore(moved: list[tuple[onnx.TensorProto, int, int, bool]], data_file: Path) -> None:
    if not moved:
        return
    with open(data_file, "rb") as data:
        for tensor, offset, length, had_location in moved:
            data.seek(offset)
            tensor.raw_data = data.read(length)
            del tensor.external_data[:]
            # clearing, not setting DEFAULT: an explicitly set field would serialize differently
            if had_location:
                tensor.data_location = onnx.TensorProto.DEFAULT
            else:
                tensor.ClearField("data_location")


def _session(model: _Model, extra_outputs: list[str], optimize: bool = True):
    """An ONNX Runtime CPU session; `extra_outputs` are marked as graph outputs first."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # failures are reported as diagnostics, not as ORT log lines
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    if model.folder is not None:
        options.add_session_config_entry(_EXTERNAL_FOLDER_KEY, str(model.folder))
    data = model.data
    if extra_outputs:
        # protobuf merges concatenated messages, appending repeated fields: these become extra outputs
        outputs = [onnx.ValueInfoProto(name=n) for n in extra_outputs]
        marks = onnx.ModelProto(graph=onnx.GraphProto(output=outputs))
        data = data + marks.SerializeToString()
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own exception types, one per status code
        raise _ort_error(model, str(e), loading=True) from None


def _ort_error(model: _Model, message: str, loading: bool) -> ModelError:
    where = _where(message, model.label)
    if model.label == "result":  # only loading: a result that fails running fails verification instead
        return model_error(ORT_FAILED, f"ONNX Runtime cannot load the result: {_condense(message)}",
                           location=where, hint="the result passed onnx.checker but ONNX Runtime rejects it; "
                                                "run with --verify-each to find the pass that made it")
    hint = ("verification compares the result with the input model, so the input must run; fix it, or skip "
            "the comparison with --no-verify" if loading else
            "the inputs are random data of the declared shapes: give symbolic dims with `verify shape` or "
            "real inputs with `verify data`, or skip the comparison with --no-verify")
    return model_error(ORT_FAILED, "the input model itself does not run in ONNX Runtime: "
                       + _condense(message), location=where, hint=hint)


class _RunFailed(Exception):
    """ONNX Runtime loaded a model but failed running it on the verification inputs."""


def _run(session, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    options = _quiet_run_options()
    try:
        values = session.run(names, feeds, options)
    except Exception as e:  # as for loading: one exception type per ORT status code
        raise _RunFailed(str(e)) from None
    return dict(zip(names, (np.asarray(v) for v in values)))


def _quiet_run_options():
    """Failures become diagnostics or verdicts: ORT's own log line on stderr would say it twice."""
    import onnxruntime as ort

    options = ort.RunOptions()
    options.log_severity_level = 4
    return options


# --- what to compare, what to feed ----------------------------------------------------------------------


@dataclass
class _Port:
    """A graph input or output as the model declares it."""

    name: str
    dtype: np.dtype | None  # None for non-tensor types and element types numpy lacks (bfloat16, float8)
    shape: list | None  # ints, symbolic names (str) or None per dim; None when the rank is unknown


def _port(value: onnx.ValueInfoProto) -> _Port:
    t = value.type.tensor_type if value.type.HasField("tensor_type") else None
    dtype = None
    if t is not None and t.elem_type in _NUMPY_TYPES:
        dtype = np.dtype(_NUMPY_TYPES[t.elem_type])
    shape = None
    if t is not None and t.HasField("shape"):
        # a negative dim_value (some exporters write -1 for "any size") is as open as a missing one
        shape = [(d.dim_value if d.dim_value >= 0 else None) if d.HasField("dim_value")
                 else (d.dim_param or None) for d in t.shape.dim]
    return _Port(value.name, dtype, shape)


_NUMPY_TYPES = {onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.DOUBLE: np.float64,
                onnx.TensorProto.FLOAT16: np.float16, onnx.TensorProto.BOOL: np.bool_,
                onnx.TensorProto.INT8: np.int8, onnx.TensorProto.INT16: np.int16,
                onnx.TensorProto.INT32: np.int32, onnx.TensorProto.INT64: np.int64,
                onnx.TensorProto.UINT8: np.uint8,
                onnx.TensorProto.UINT16: np.uint16, onnx.TensorProto.UINT32: np.uint32,
                onnx.TensorProto.UINT64: np.uint64, onnx.TensorProto.STRING: np.object_}


@dataclass
class _Plan:
    """How the candidate's I/O relates to the reference: what to mark, feed and compare."""

    ref_inputs: list[_Port]
    shared: dict[str, _Port]  # reference input name -> the candidate input fed the same data
    from_reference: dict[str, tuple[str, np.dtype | None]]  # candidate input -> (reference tensor, dtype)
    new_inputs: list[_Port]  # candidate inputs with no counterpart: random data of their own
    compare: dict[str, str]  # candidate output -> reference tensor
    unmatched: list[str]  # candidate outputs with no counterpart
    marked: list[str]  # reference tensors to add as outputs
    messages: list[str]


def _plan(ref: _Model, cand: _Model, renames: dict[str, str]) -> _Plan:
    ref_input_names = {p.name for p in ref.inputs}
    plan = _Plan(ref.inputs, {}, {}, [], {}, [], [], [])
    for port in cand.inputs:
        source = renames.get(port.name, port.name)
        if source in ref_input_names:
            plan.shared[source] = port
        elif source in ref.tensors:
            plan.from_reference[port.name] = (source, port.dtype)
        else:
            plan.new_inputs.append(port)
            plan.messages.append(f"input `{port.name}` has no counterpart in the input model: "
                                 "fed random data")
    for port in cand.outputs:
        source = renames.get(port.name, port.name)
        if source in ref.tensors:
            plan.compare[port.name] = source
        else:
            plan.unmatched.append(port.name)
    wanted = [s for s, _ in plan.from_reference.values()] + list(plan.compare.values())
    declared = {p.name for p in ref.outputs} | ref_input_names
    plan.marked = sorted({t for t in wanted if t not in declared})
    if plan.marked:
        plan.messages.append("intermediate tensors of the input model compared or fed: "
                             + ", ".join(plan.marked))
    return plan


def _common_shape(ref: _Port, cand: _Port | None, dims: dict[str, int],
                  sizes: list | None = None) -> list[int]:
    """Concrete dims win (the reference's first); open ones take the input's `verify shape` size at their
    position, else `dims[name]`, else 1."""
    shape = ref.shape if ref.shape is not None else (cand.shape if cand is not None else None) or []
    if not shape and sizes:
        shape = [None] * len(sizes)
    other = cand.shape if cand is not None and cand.shape is not None else None
    other = other if other is not None and len(other) == len(shape) else None
    sizes = sizes if sizes is not None and len(sizes) == len(shape) else None
    out = []
    for i, dim in enumerate(shape):
        alt = other[i] if other is not None else None
        if isinstance(dim, int):
            out.append(dim)
        elif isinstance(alt, int):
            out.append(alt)
        elif sizes is not None and isinstance(sizes[i], int):
            out.append(sizes[i])
        else:
            out.append(next((dims[d] for d in (dim, alt) if isinstance(d, str) and d in dims), 1))
    return out


RANDOM_LIMIT = 1 << 31  # bytes of random data for one input: more is a declared shape, not a test input


def _random(rng: np.random.Generator, dtype: np.dtype, shape: list[int], name: str = "") -> np.ndarray:
    """Floats standard normal; ints in [0, INT_HIGH); bools fair coin flips; strings digits."""
    size = math.prod(shape) * dtype.itemsize
    if size > RANDOM_LIMIT:
        raise model_error(BAD_DATA, f"random verification data for input `{name}` of shape {shape} would "
                          f"take {size:.3g} bytes", location=name,
                          hint="give the input's sizes with `verify shape`, real data with `verify data`, or "
                               "skip the comparison with --no-verify")
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind in "iu":
        return rng.integers(0, INT_HIGH, size=shape).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    return rng.integers(0, INT_HIGH, size=shape).astype(str).astype(object)


def _load_data(path: Path, ref_inputs: list[_Port]) -> list[dict[str, np.ndarray]]:
    """User data as samples: one dict of arrays (by reference input name) per sample."""
    arrays = _read_arrays(path, ref_inputs)
    by_name = {p.name: p for p in ref_inputs}
    per_name: dict[str, list[np.ndarray]] = {}
    for name, array in arrays.items():
        if name not in by_name:
            best = did_you_mean(name, by_name)
            raise model_error(BAD_DATA, f"`{path.name}` holds an array `{name}` but the input model has "
                              "no such input", location=str(path),
                              hint=f"did you mean `{best}`?" if best else "inputs: " + ", ".join(by_name))
        per_name[name] = _split_samples(array, by_name[name], path)
    counts = {len(v) for v in per_name.values() if len(v) > 1}
    if len(counts) > 1:
        raise model_error(BAD_DATA, f"the arrays in `{path.name}` hold different numbers of samples: "
                          f"{sorted(counts)}", location=str(path), hint="give every input the same count")
    n = counts.pop() if counts else 1
    return [{k: v[i] if len(v) > 1 else v[0] for k, v in per_name.items()} for i in range(n)]


def _read_arrays(path: Path, ref_inputs: list[_Port]) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise model_error(BAD_DATA, f"cannot read verification data `{path}`: {e}", location=str(path),
                          hint="give a .npz file (arrays by input name) or a .npy file (one input)")
    if isinstance(loaded, np.ndarray):
        if len(ref_inputs) != 1:
            raise model_error(BAD_DATA, f"`{path.name}` holds one array but the input model has "
                              f"{len(ref_inputs)} inputs", location=str(path),
                              hint="use a .npz file with one array per input: " +
                                   ", ".join(p.name for p in ref_inputs))
        return {ref_inputs[0].name: loaded}
    with loaded:
        try:  # a .npz reads each array when it is asked for: a pickled one is refused only now
            return {name: loaded[name] for name in loaded.files}
        except (OSError, ValueError, EOFError) as e:
            raise model_error(BAD_DATA, f"cannot read verification data `{path}`: {e}", location=str(path),
                              hint="arrays of numbers only: object arrays (pickles) are never loaded",
                              ) from None


def _split_samples(array: np.ndarray, port: _Port, path: Path) -> list[np.ndarray]:
    rank = len(port.shape) if port.shape is not None else array.ndim
    if array.ndim == rank + 1:
        return list(array)
    if array.ndim == rank:
        return [array]
    raise model_error(BAD_DATA, f"array `{port.name}` in `{path.name}` has shape {list(array.shape)}, "
                      f"the input has rank {rank}", location=str(path),
                      hint=f"give shape {port.shape} or [samples] + {port.shape}")


def _feeds(plan: _Plan, settings: VerifySettings, sample: dict[str, np.ndarray], rng: np.random.Generator):
    """Reference feeds and candidate feeds for the inputs both share (same values, each in its own dtype)."""
    ref_feeds: dict[str, np.ndarray] = {}
    cand_feeds: dict[str, np.ndarray] = {}
    for port in plan.ref_inputs:
        cand = plan.shared.get(port.name)
        value = sample.get(port.name)
        if value is None:
            shape = _common_shape(port, cand, settings.dims, settings.shapes.get(port.name))
            value = _random(rng, port.dtype, shape, port.name)
        value = np.asarray(value).astype(port.dtype, copy=False)
        if cand is not None and cand.dtype is not None and cand.dtype != port.dtype:
            # round through the candidate's type, so both models see exactly the same numbers
            cand_feeds[cand.name] = value.astype(cand.dtype)
            value = cand_feeds[cand.name].astype(port.dtype)
        elif cand is not None:
            cand_feeds[cand.name] = value
        ref_feeds[port.name] = value
    for port in plan.new_inputs:
        sizes = settings.shapes.get(port.name)
        shape = _common_shape(port, None, settings.dims, sizes)
        cand_feeds[port.name] = _random(rng, port.dtype, shape, port.name)
    return ref_feeds, cand_feeds


def _samples(plan: _Plan, settings: VerifySettings) -> tuple[int, Iterator[tuple[dict, dict]]]:
    data = _load_data(Path(settings.data), plan.ref_inputs) if settings.data is not None else None
    count = len(data) if data is not None else max(1, settings.samples)
    rng = np.random.default_rng(settings.seed)
    unsupported = [p.name for p in plan.ref_inputs + plan.new_inputs if p.dtype is None]
    if unsupported:
        raise model_error(BAD_DATA, "cannot make verification data for inputs of types numpy lacks: "
                          + ", ".join(unsupported), hint="skip the comparison with --no-verify")
    return count, (_feeds(plan, settings, data[i] if data else {}, rng) for i in range(count))


# --- comparison -----------------------------------------------------------------------------------------


@dataclass
class _Stats:
    """Running comparison of one output over all samples (tolerances are settled only at the end)."""

    shape: list[int] | None = None
    dtype: str = ""
    max_abs: float = 0.0
    max_rel: float = 0.0
    excess: float = -np.inf  # max(|a - b| - rtol * |b|): passes iff <= atol
    dot: float = 0.0
    norm_a: float = 0.0
    norm_b: float = 0.0
    max_ref: float = 0.0
    noise: float | None = 0.0
    note: str = ""
    measured: bool = True  # False when no element-by-element comparison was possible

    def add(self, got: np.ndarray, want: np.ndarray, rtol: float) -> None:
        if self.shape is None:
            self.shape, self.dtype = list(got.shape), str(got.dtype)
        if got.shape != want.shape:
            self.note = self.note or f"shape {list(got.shape)}, reference {list(want.shape)}"
            self.measured = False
            return
        if got.dtype.kind in "OSU" or want.dtype.kind in "OSU":
            if not np.array_equal(got, want):
                self.note = self.note or "strings differ"
            return
        a, b = got.astype(np.float64).ravel(), want.astype(np.float64).ravel()
        if not np.array_equal(np.isnan(a), np.isnan(b)):
            self.note = self.note or "NaN at different positions"
        same = (a == b) | (np.isnan(a) & np.isnan(b))  # equal infinities and matching NaNs differ by 0
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.where(same, 0.0, np.abs(a - b))
            ref_abs = np.abs(b)
        self.max_abs = max(self.max_abs, _nanmax(diff))
        nonzero = ref_abs > 0
        self.max_rel = max(self.max_rel, _nanmax(diff[nonzero] / ref_abs[nonzero]))
        self.excess = max(self.excess, _nanmax(diff - rtol * np.where(same, 0.0, ref_abs)))
        finite = np.isfinite(a) & np.isfinite(b)
        self.dot += float(a[finite] @ b[finite])
        self.norm_a += float(a[finite] @ a[finite])
        self.norm_b += float(b[finite] @ b[finite])
        self.max_ref = max(self.max_ref, _nanmax(np.where(np.isfinite(b), ref_abs, 0.0)))

    def add_noise(self, optimized: np.ndarray, plain: np.ndarray) -> None:
        if optimized.shape == plain.shape:
            diff = np.abs(optimized.astype(np.float64) - plain.astype(np.float64))
            self.noise = max(self.noise, _nanmax(np.where(np.isfinite(diff), diff, 0.0)))

    @property
    def cosine(self) -> float:
        if self.norm_a == 0.0 and self.norm_b == 0.0:
            return 1.0
        if self.norm_a == 0.0 or self.norm_b == 0.0:
            return 0.0
        return float(self.dot / np.sqrt(self.norm_a * self.norm_b))


def _nanmax(values: np.ndarray) -> float:
    """The largest value ignoring NaN; 0 for none (a NaN mismatch is reported on its own)."""
    if values.size == 0:
        return 0.0
    top = np.max(values, initial=-np.inf, where=~np.isnan(values))
    return float(top) if top != -np.inf else 0.0


def tolerances(settings: VerifySettings, noise: float | None, max_ref: float) -> tuple[float, float]:
    """(atol, rtol): the settings' values, else atol = max(4 * noise, 1e-5 * max|ref|, 1e-6), rtol = 1e-4."""
    rtol = settings.rtol if settings.rtol is not None else DEFAULT_RTOL
    if settings.atol is not None:
        return settings.atol, rtol
    return max(4.0 * (noise or 0.0), 1e-5 * max_ref, 1e-6), rtol


def _check(name: str, reference: str, stats: _Stats, settings: VerifySettings, derive: bool) -> OutputCheck:
    atol, rtol = tolerances(settings, stats.noise if derive else None, stats.max_ref)
    if not stats.measured:
        return OutputCheck(name, reference, stats.shape or [], stats.dtype, np.inf, np.inf, np.nan,
                           stats.noise if derive else None, atol, rtol, False, stats.note)
    passed = not stats.note and stats.excess <= atol
    return OutputCheck(name, reference, stats.shape or [], stats.dtype, stats.max_abs, stats.max_rel,
                       stats.cosine, stats.noise if derive else None, atol, rtol, passed, stats.note)


# --- the comparison as a whole --------------------------------------------------------------------------


def verify(reference: onnx.ModelProto | Path, candidate: onnx.ModelProto | Path,
           settings: VerifySettings | None = None, *, renames: dict[str, str] | None = None,
           progress: Progress | None = None) -> Verification:
    """Run the input model and the result in ONNX Runtime on the same inputs and compare every output.

    Each output passes when, element by element, `|result - reference| <= atol + rtol * |reference|`
    (numpy's `allclose`) and NaNs sit at the same positions. Without `settings.atol`, atol is derived
    from ONNX Runtime's own noise on the input model: the reference runs once with all graph
    optimizations and once with none, on the same inputs, and per output

        noise = max |optimized - unoptimized|      (over all elements and samples)
        atol  = max(4 * noise, 1e-5 * max|reference|, 1e-6)
        rtol  = 1e-4                               (unless settings.rtol is given)

    The comparison itself uses the optimized reference, as the result runs optimized too. `max_rel` is
    over elements where the reference is non-zero; `cosine` is over all samples' finite elements.

    Args:
        reference: the input model (a proto or a path; it is never modified).
        candidate: the result.
        settings: tolerances, samples, seed, data; default `VerifySettings()`.
        renames: candidate tensor name -> the name it had in the input model.
        progress: called with (description, fraction done) as the work proceeds.

    Returns:
        A `Verification`: one `OutputCheck` per candidate output (an output with no counterpart in the
        input model fails, as nothing proves it right).

    Raises:
        ModelError: GDS402 when ONNX Runtime cannot load either model or cannot run the input model (a
            result that loads but fails to run fails verification instead, the reason in `messages`);
            GDS403 for bad user data.
    """
    start = time.perf_counter()
    settings = settings or VerifySettings()
    report = progress or (lambda description, fraction: None)
    derive = settings.atol is None
    with contextlib.ExitStack() as stack:
        report("verify: loading models", 0.0)
        ref, cand = _open(reference, "input model", stack), _open(candidate, "result", stack)
        cand_session = _session(cand, [])
        plan = _plan(ref, cand, renames or {})
        runs = _Sessions(ref, _session(ref, plan.marked), _session(ref, plan.marked, optimize=False) if derive
                         else None, cand, cand_session)
        count, stats, failure = _compare(plan, settings, runs, report)
    checks = [_check(n, plan.compare[n], stats[n], settings, derive) for n in plan.compare]
    checks += [_unmatched(n, stats[n], settings) for n in plan.unmatched]
    messages = plan.messages + _notes(settings, derive, count) + ([failure] if failure else [])
    passed = bool(checks) and all(c.passed for c in checks)
    report("verify: done", 1.0)
    return Verification(checks, passed, count, time.perf_counter() - start, messages)


@dataclass
class _Sessions:
    """The models and their ONNX Runtime sessions; `plain` is the unoptimized reference, for noise."""

    ref: _Model
    ref_session: Any
    plain_session: Any
    cand: _Model
    cand_session: Any


def _compare(plan: _Plan, settings: VerifySettings, runs: _Sessions,
             report: Progress) -> tuple[int, dict[str, _Stats], str]:
    """Run every sample through both models, folding the differences into one `_Stats` per output.

    Returns the sample count, the statistics, and why the result failed to run ("" when it ran).
    """
    rtol = settings.rtol if settings.rtol is not None else DEFAULT_RTOL
    stats = {name: _Stats() for name in list(plan.compare) + plan.unmatched}
    count, samples = _samples(plan, settings)
    for index, (ref_feeds, cand_feeds) in enumerate(samples):
        report(f"verify: sample {index + 1}/{count}", index / count)
        values = {**ref_feeds, **_run_reference(runs.ref_session, runs.ref, ref_feeds)}
        cand_feeds.update({c: values[r].astype(dtype or values[r].dtype, copy=False)
                           for c, (r, dtype) in plan.from_reference.items()})
        try:
            got = _run(runs.cand_session, cand_feeds)
        except _RunFailed as e:  # the input model ran on these inputs: the result is what broke
            return count, _all_failed(stats, runs.cand.outputs), _run_failure(str(e))
        plain = None
        if runs.plain_session is not None:
            plain = {**ref_feeds, **_run_reference(runs.plain_session, runs.ref, ref_feeds)}
        for name, source in plan.compare.items():
            stats[name].add(got[name], values[source], rtol)
            if plain is not None:
                stats[name].add_noise(values[source], plain[source])
        for name in plan.unmatched:
            stats[name].shape, stats[name].dtype = list(got[name].shape), str(got[name].dtype)
    return count, stats, ""


def _run_reference(session, model: _Model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    try:
        return _run(session, feeds)
    except _RunFailed as e:
        raise _ort_error(model, str(e), loading=False) from None


def _all_failed(stats: dict[str, _Stats], declared: list[_Port]) -> dict[str, _Stats]:
    """Every output unmeasured, described by its declared type and shape (it was never computed)."""
    ports = {p.name: p for p in declared}
    for name, s in stats.items():
        s.measured, s.note, s.noise = False, "the result failed to run", None
        port = ports.get(name)
        if port is not None:
            s.shape = list(port.shape) if port.shape is not None else []
            s.dtype = str(port.dtype) if port.dtype is not None else "?"
    return stats


def _run_failure(message: str) -> str:
    return f"ONNX Runtime failed running the result ({_where(message, 'result')}): {_condense(message)}"


def _unmatched(name: str, stats: _Stats, settings: VerifySettings) -> OutputCheck:
    atol, rtol = tolerances(settings, None, 0.0)
    note = stats.note if not stats.measured else \
        "no counterpart in the input model (a pass renamed it without recording the rename?)"
    return OutputCheck(name, "", stats.shape or [], stats.dtype, np.inf, np.inf, np.nan, None, atol, rtol,
                       False, note)


def _notes(settings: VerifySettings, derive: bool, count: int) -> list[str]:
    source = f"data from {Path(settings.data).name}" if settings.data is not None else f"seed {settings.seed}"
    notes = [f"{count} sample{'s' if count != 1 else ''}, {source}"]
    if derive:
        notes.append("atol derived per output: max(4 × ORT noise, 1e-5 × max|reference|, 1e-6)")
    return notes
