"""Malformed, hostile and extreme ONNX models, written to a folder, for the CLI tests.

Each builder writes what it makes into `folder` and returns the model's path. The models are small unless
size is the point (a 200,000-node chain, 50 nested If bodies).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from reliability_helpers import small_model

F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, initializers=(), opset: int = 17, ir: int = 8) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir,
                             producer_name="reliability-tests")


def _io(name: str, shape, dtype=F):
    return helper.make_tensor_value_info(name, dtype, shape)


def save(model: onnx.ModelProto, folder: Path, name: str) -> Path:
    path = folder / name
    path.write_bytes(model.SerializeToString())
    return path


def valid(folder: Path) -> Path:
    return save(small_model(), folder, "valid.onnx")


def truncated(folder: Path, keep: float) -> Path:
    data = small_model().SerializeToString()
    path = folder / f"truncated_{keep}.onnx"
    path.write_bytes(data[:max(1, int(len(data) * keep))])
    return path


def bit_flipped(folder: Path, seed: int, flips: int = 3) -> Path:
    """`flips` random bits flipped outside the weights (inside them they are just other weights)."""
    model = small_model()
    data = bytearray(model.SerializeToString())
    weights = [bytes(t.raw_data) for t in model.graph.initializer if len(t.raw_data) > 16]
    skip = set()
    for w in weights:
        start = data.find(w)
        skip.update(range(start, start + len(w)))
    positions = [p for p in range(len(data)) if p not in skip]
    rng = np.random.default_rng(seed)
    for pos in rng.choice(positions, size=flips, replace=False):
        data[pos] ^= 1 << int(rng.integers(8))
    path = folder / f"flipped_{seed}.onnx"
    path.write_bytes(bytes(data))
    return path


def with_versions(folder: Path, ir: int, opset: int) -> Path:
    model = small_model()
    model.ir_version = ir
    model.opset_import[0].version = opset
    return save(model, folder, f"ir{ir}_opset{opset}.onnx")


def cycle(folder: Path) -> Path:
    """a = Relu(b), b = Neg(a): each node reads the other's output."""
    nodes = [helper.make_node("Relu", ["x_plus_b"], ["a"], name="relu"),
             helper.make_node("Neg", ["a"], ["b"], name="neg"),
             helper.make_node("Add", ["x", "b"], ["x_plus_b"], name="add")]
    return save(_model(nodes, [_io("x", [2])], [_io("a", [2])]), folder, "cycle.onnx")


def duplicate_names(folder: Path) -> Path:
    """Two nodes write the same tensor name."""
    nodes = [helper.make_node("Relu", ["x"], ["t"], name="relu"),
             helper.make_node("Neg", ["x"], ["t"], name="neg"),
             helper.make_node("Identity", ["t"], ["y"], name="id")]
    return save(_model(nodes, [_io("x", [2])], [_io("y", [2])]), folder, "duplicate.onnx")


def duplicate_node_names(folder: Path) -> Path:
    nodes = [helper.make_node("Relu", ["x"], ["t"], name="same"),
             helper.make_node("Neg", ["t"], ["y"], name="same")]
    return save(_model(nodes, [_io("x", [2])], [_io("y", [2])]), folder, "duplicate_nodes.onnx")


def dangling_input(folder: Path) -> Path:
    """A node reads `ghost`, which no node, input or initializer provides."""
    nodes = [helper.make_node("Add", ["x", "ghost"], ["y"], name="add")]
    return save(_model(nodes, [_io("x", [2])], [_io("y", [2])]), folder, "dangling.onnx")


def dangling_output(folder: Path) -> Path:
    """The graph output `y` is produced by nothing."""
    nodes = [helper.make_node("Relu", ["x"], ["t"], name="relu")]
    return save(_model(nodes, [_io("x", [2])], [_io("y", [2])]), folder, "dangling_output.onnx")


def huge_dims(folder: Path) -> Path:
    """An input declared [2^62, 16]: random verification data of that size cannot exist."""
    model = small_model()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2**62
    return save(model, folder, "huge_dims.onnx")


def huge_weight_dims(folder: Path) -> Path:
    """An initializer that declares dims [2^62, 2^62] and holds 4 bytes."""
    w = TensorProto(name="w", data_type=F, dims=[2**62, 2**62], raw_data=b"\0\0\0\0")
    nodes = [helper.make_node("Add", ["x", "w"], ["y"], name="add")]
    return save(_model(nodes, [_io("x", [2])], [_io("y", [2])], [w]), folder, "huge_weight.onnx")


def external(folder: Path, location: str, name: str, length: int | None = None) -> Path:
    """The small model with w1 stored externally at `location` (offset 0, `length` bytes declared)."""
    model = small_model()
    w1 = next(t for t in model.graph.initializer if t.name == "w1")
    declared = length if length is not None else len(w1.raw_data)
    w1.ClearField("raw_data")
    w1.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(declared))):
        entry = w1.external_data.add()
        entry.key, entry.value = key, value
    return save(model, folder, name)


def external_data_file(folder: Path, name: str, size: int) -> Path:
    path = folder / name
    path.write_bytes(np.ones(size // 4, np.float32).tobytes())
    return path


def fifo(path: Path) -> Path:
    """A named pipe: opening it for reading blocks until a writer comes, so a test that reads it hangs."""
    os.mkfifo(path)
    return path


def chain(folder: Path, length: int) -> Path:
    """x -> Relu -> Neg -> Relu -> ... : `length` nodes in a line."""
    nodes, prev = [], "x"
    for i in range(length):
        out = "y" if i == length - 1 else f"t{i}"
        nodes.append(helper.make_node("Relu" if i % 2 else "Neg", [prev], [out], name=f"n{i}"))
        prev = out
    return save(_model(nodes, [_io("x", [4])], [_io("y", [4])]), folder, f"chain_{length}.onnx")


def nested_ifs(folder: Path, depth: int) -> Path:
    """`depth` nested If bodies (`deepgraphs.nested_if_graph`), written by graphdsl's streaming writer."""
    from deepgraphs import nested_if_graph

    from graphdsl.onnxio import write_model

    path = folder / f"nested_if_{depth}.onnx"
    write_model(nested_if_graph(depth), path)
    return path


def if_outer_scope(folder: Path) -> Path:
    """An If whose branches read tensors of the enclosing graph by name (w, xs), one branch nested, and a
    constant-foldable subexpression inside a branch."""
    rng = np.random.default_rng(2)
    w = numpy_helper.from_array(rng.standard_normal((4, 4)).astype(np.float32), "w")
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    then_inner = helper.make_graph([helper.make_node("Neg", ["xs"], ["inner_out"])], "then_inner", [],
                                   [_io("inner_out", [2, 4])])
    then_branch = helper.make_graph(
        [helper.make_node("Mul", ["two", "two"], ["four"]),
         helper.make_node("MatMul", ["xs", "w"], ["t0"]),
         helper.make_node("Mul", ["t0", "four"], ["t0s"]),
         helper.make_node("If", ["cond"], ["t1"], then_branch=then_inner, else_branch=then_inner),
         helper.make_node("Add", ["t0s", "t1"], ["then_out"])],
        "then", [], [_io("then_out", [2, 4])])
    else_branch = helper.make_graph([helper.make_node("Sub", ["xs", "two"], ["else_out"])], "else", [],
                                    [_io("else_out", [2, 4])])
    nodes = [helper.make_node("Relu", ["x"], ["xs"], name="relu"),
             helper.make_node("If", ["cond"], ["y"], name="if", then_branch=then_branch,
                              else_branch=else_branch)]
    model = _model(nodes, [_io("x", [2, 4]), _io("cond", [], TensorProto.BOOL)], [_io("y", [2, 4])], [w, two])
    return save(model, folder, "if_outer_scope.onnx")


def big_external(folder: Path, count: int, side: int = 8192, name: str = "big.onnx",
                 value_info: bool = True) -> tuple[Path, dict]:
    """`count` MatMul weights of side x side float32 in external data, and things for the default pipeline
    to do: a Reshape whose target is a foldable Shape chain, an Identity, a spelled-out (erf) GELU.

    x[1, side] -> Reshape(x, Concat(1, Unsqueeze(Gather(Shape(x), 1)))) -> Identity -> MatMul x count
    -> x * (1 + erf(x / sqrt 2)) * 0.5 -> y. The data file is written 16 MiB at a time, so no more than
    that is ever in memory; returns the model's path and each weight's sha256. `value_info`: the types
    of the tensors between nodes, as exporters record them (shape inference without the weights).
    """
    data_name = name + ".data"
    digests, offset, chunk = {}, 0, 1 << 22  # elements: 16 MiB
    initializers = []
    rng = np.random.default_rng(0)
    scale = np.float32(2 / side ** 0.5)  # values in [-1, 1) / sqrt(side): activations stay finite
    with open(folder / data_name, "wb") as f:
        for i in range(count):
            h = hashlib.sha256()
            for start in range(0, side * side, chunk):
                part = rng.random(min(chunk, side * side - start), dtype=np.float32)
                part -= 0.5
                part *= scale
                f.write(part)
                h.update(part)
            nbytes = side * side * 4
            w = TensorProto(name=f"w{i}", data_type=F, dims=[side, side], data_location=TensorProto.EXTERNAL)
            for key, value in (("location", data_name), ("offset", offset), ("length", nbytes)):
                w.external_data.add(key=key, value=str(value))
            initializers.append(w)
            digests[w.name] = h.hexdigest()
            offset += nbytes
    nodes = [helper.make_node("Shape", ["x"], ["x_shape"], name="shape"),
             helper.make_node("Gather", ["x_shape", "one_i"], ["width"], name="gather", axis=0),
             helper.make_node("Unsqueeze", ["width", "zero_axis"], ["width_1d"], name="unsqueeze"),
             helper.make_node("Concat", ["one_1d", "width_1d"], ["target"], name="concat", axis=0),
             helper.make_node("Reshape", ["x", "target"], ["x2"], name="reshape"),
             helper.make_node("Identity", ["x2"], ["h0"], name="identity")]
    for i in range(count):
        nodes.append(helper.make_node("MatMul", [f"h{i}", f"w{i}"], [f"h{i + 1}"], name=f"matmul{i}"))
    h = f"h{count}"
    nodes += [helper.make_node("Div", [h, "sqrt2"], ["g_div"], name="gelu_div"),
              helper.make_node("Erf", ["g_div"], ["g_erf"], name="gelu_erf"),
              helper.make_node("Add", ["g_erf", "one_f"], ["g_add"], name="gelu_add"),
              helper.make_node("Mul", [h, "g_add"], ["g_mul"], name="gelu_mul"),
              helper.make_node("Mul", ["g_mul", "half"], ["y"], name="gelu_half")]
    small = [numpy_helper.from_array(np.array(v, dtype), n) for n, v, dtype in (
        ("one_i", 1, np.int64), ("zero_axis", [0], np.int64), ("one_1d", [1], np.int64),
        ("sqrt2", 2 ** 0.5, np.float32), ("one_f", 1.0, np.float32), ("half", 0.5, np.float32))]
    model = _model(nodes, [_io("x", [1, side])], [_io("y", [1, side])], small + initializers, opset=20, ir=9)
    if value_info:  # types of the tensors between nodes, as torch.onnx.export writes them
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    return save(model, folder, name), digests
