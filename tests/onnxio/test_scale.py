"""Big and deep graphs: no recursion anywhere, and nesting past protobuf's own parse limit."""

import sys

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxio_builders as builders
from deepgraphs import nested_if_graph
import onnxruntime as ort
import pytest

from graphdsl.onnxio import export_model, read_model, write_model


@pytest.fixture
def low_recursion_limit():
    """Recursion would show at once: a 200k chain needs far more frames than this allows."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    yield
    sys.setrecursionlimit(old)


def test_200k_node_chain(tmp_path):
    path = tmp_path / "chain.onnx"
    onnx.save(builders.chain(200_000), path)
    loaded = read_model(path)
    assert len(loaded.graph.nodes) == 200_000
    assert loaded.graph.nodes[-1].inputs[0].inputs[0] is loaded.graph.nodes[-2]
    write_model(loaded.graph, tmp_path / "out.onnx", loaded.meta)
    assert (tmp_path / "out.onnx").read_bytes() == path.read_bytes()
    loaded.graph.nodes[100_000].name = "middle"  # one node re-encoded among reused ones
    write_model(loaded.graph, tmp_path / "edited.onnx", loaded.meta)
    edited = onnx.load(tmp_path / "edited.onnx")
    assert edited.graph.node[100_000].name == "middle" and len(edited.graph.node) == 200_000


def test_chain_with_a_low_recursion_limit(tmp_path, low_recursion_limit):
    onnx.save(builders.chain(5_000), tmp_path / "chain.onnx")
    loaded = read_model(tmp_path / "chain.onnx")
    write_model(loaded.graph, tmp_path / "out.onnx", loaded.meta)
    assert len(export_model(loaded.graph).graph.node) == 5_000


def depth_of(graph: gs.Graph) -> int:
    depth = 0
    while (ifs := [n for n in graph.nodes if n.op == "If"]):
        graph, depth = ifs[0].attrs["then_branch"], depth + 1
    return depth


def test_50_nested_if_bodies(tmp_path, low_recursion_limit):
    write_model(nested_if_graph(50), tmp_path / "deep.onnx")
    loaded = read_model(tmp_path / "deep.onnx")  # protobuf alone refuses this file (depth > 100)
    assert depth_of(loaded.graph) == 50
    innermost = loaded.graph
    for _ in range(50):
        innermost = innermost.nodes[0].attrs["then_branch"]
    assert innermost.nodes[0].inputs[0] is loaded.graph.inputs[0]  # outer `x`, shared across 50 levels
    write_model(loaded.graph, tmp_path / "again.onnx", loaded.meta)
    assert (tmp_path / "again.onnx").read_bytes() == (tmp_path / "deep.onnx").read_bytes()
    with pytest.raises(ValueError, match="deeper than protobuf"):
        export_model(loaded.graph)


def test_30_nested_if_bodies_run(tmp_path):
    write_model(nested_if_graph(30), tmp_path / "deep.onnx")
    loaded = read_model(tmp_path / "deep.onnx")
    loaded.graph.nodes[0].name = "outermost"
    write_model(loaded.graph, tmp_path / "again.onnx", loaded.meta)
    session = ort.InferenceSession(str(tmp_path / "again.onnx"), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": np.array([2.0], np.float32), "cond": np.array(True)})
    assert y.tolist() == [3.0]
