"""Toposort: graphsurgeon's order without its recursion, and a cycle as a diagnostic naming the nodes."""

import numpy as np
import onnx_graphsurgeon as gs
import pytest
from helpers import apply, assert_numerically_equal, export, make_model, node, run_ort, value
from onnx import helper

from graphdsl.diagnostics import ModelError
from graphdsl.graphwalk import GraphTree
from graphdsl.passes.toposort import Toposort, find_cycle, is_sorted


def chain_graph() -> gs.Graph:
    model = make_model([node("Relu", ["x"], ["a"]), node("Neg", ["a"], ["b"]), node("Abs", ["b"], ["y"])],
                       [value("x", [3])], [value("y", [3])])
    return gs.import_onnx(model)


def test_sorts_shuffled_nodes():
    model = export(chain_graph())
    graph = chain_graph()
    graph.nodes.reverse()
    assert not is_sorted(graph)
    graph, result, _ = apply(Toposort(), graph)
    assert [n.name for n in graph.nodes] == ["a", "b", "y"] and is_sorted(graph)
    assert result.changed and result.counts == {"nodes_moved": 2}
    assert_numerically_equal(model, export(graph))


def test_sorted_graph_is_unchanged():
    _, result, _ = apply(Toposort(), chain_graph())
    assert not result.changed


def test_cycle_is_a_diagnostic_naming_the_nodes(capsys):
    graph = chain_graph()
    first, last = graph.nodes[1], graph.nodes[2]
    first.inputs[0] = last.outputs[0]  # Neg reads what Abs writes, and Abs reads Neg's output
    graph.outputs = [graph.nodes[0].outputs[0]]
    with pytest.raises(ModelError) as e:
        apply(Toposort(), graph)
    d = e.value.diagnostics[0]
    assert d.code == "GDS311" and d.message == "the graph has a cycle: b -> y -> b"
    assert "Cycle detected" not in capsys.readouterr().out  # graphsurgeon's own print is captured


def test_find_cycle_on_acyclic_graph_is_empty():
    assert find_cycle(chain_graph().nodes) == []


def random_dag(n: int, seed: int) -> gs.Graph:
    """n nodes, each reading one or two earlier tensors (or the input), then shuffled."""
    rng = np.random.default_rng(seed)
    x = gs.Variable("x", np.float32, [1])
    tensors, nodes = [x], []
    for i in range(n):
        picked = [tensors[j] for j in rng.choice(len(tensors), size=min(2, len(tensors)), replace=False)]
        out = gs.Variable(f"t{i}", np.float32, [1])
        nodes.append(gs.Node("Sum", name=f"n{i}", inputs=picked, outputs=[out]))
        tensors.append(out)
    order = rng.permutation(n)
    return gs.Graph(nodes=[nodes[i] for i in order], inputs=[x], outputs=[tensors[-1]], opset=17)


@pytest.mark.parametrize("seed", range(5))
def test_order_is_graphsurgeons(seed):
    ours, theirs = random_dag(200, seed), random_dag(200, seed)
    apply(Toposort(), ours)
    theirs.toposort()
    assert [n.name for n in ours.nodes] == [n.name for n in theirs.nodes]


def test_deep_chain_sorts_without_recursion():
    n = 20_000  # graphsurgeon's recursive toposort stops at about a thousandth of this
    x = gs.Variable("x", np.float32, [1])
    nodes = [gs.Node("Neg", name="n0", inputs=[x], outputs=[gs.Variable("t0", np.float32, [1])])]
    for i in range(1, n):
        out = gs.Variable(f"t{i}", np.float32, [1])
        nodes.append(gs.Node("Neg", name=f"n{i}", inputs=nodes[-1].outputs, outputs=[out]))
    graph = gs.Graph(nodes=list(reversed(nodes)), inputs=[x], outputs=nodes[-1].outputs)
    graph, result, _ = apply(Toposort(), graph)
    assert all(a is b for a, b in zip(graph.nodes, nodes)) and result.counts == {"nodes_moved": n}
    with pytest.raises(RecursionError):
        gs.Graph(nodes=list(reversed(nodes)), inputs=[x], outputs=nodes[-1].outputs).toposort()


def test_what_a_subgraph_reads_orders_its_holder():
    """The If reads `t` only inside its branch: it must still come after t's producer."""
    x, c, t, y = (gs.Variable(n, np.float32, [3]) for n in ("x", "c", "t", "y"))
    c.dtype, c.shape = np.bool_, []
    o1, o2 = gs.Variable("o1", np.float32, [3]), gs.Variable("o2", np.float32, [3])
    then = gs.Graph(nodes=[gs.Node("Identity", inputs=[t], outputs=[o1])], outputs=[o1], name="then")
    other = gs.Graph(nodes=[gs.Node("Identity", inputs=[x], outputs=[o2])], outputs=[o2], name="else")
    branches = {"then_branch": then, "else_branch": other}
    branch = gs.Node("If", name="if", inputs=[c], outputs=[y], attrs=branches)
    neg = gs.Node("Neg", inputs=[x], outputs=[t])
    graph = gs.Graph(nodes=[branch, neg], inputs=[x, c], outputs=[y], opset=17)
    assert not is_sorted(graph, GraphTree(graph).capture_all()) and is_sorted(graph)
    graph, _, _ = apply(Toposort(), graph)
    assert [n.op for n in graph.nodes] == ["Neg", "If"]
    x_value = np.array([1, -2, 3], np.float32)
    assert run_ort(export(graph), {"x": x_value, "c": np.array(True)})["y"].tolist() == [-1, 2, -3]


def test_functions_come_after_the_functions_they_call():
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]
    calls_inner = helper.make_node("Inner", ["a"], ["b"], domain="local")
    outer = helper.make_function("local", "Outer", ["a"], ["b"], [calls_inner], opsets)
    relu = helper.make_node("Relu", ["a"], ["b"])
    inner = helper.make_function("local", "Inner", ["a"], ["b"], [relu], opsets)
    model = make_model([node("Outer", ["x"], ["y"], domain="local")], [value("x", [2])], [value("y", [2])],
                       functions=[outer, inner], extra_opsets=[helper.make_opsetid("local", 1)])
    graph, _, _ = apply(Toposort(), model)
    assert [f.name for f in graph.functions] == ["Inner", "Outer"]
