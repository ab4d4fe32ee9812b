"""Toposort: graphsurgeon's sort, and its cycle error as a diagnostic naming the nodes."""

import onnx_graphsurgeon as gs
import pytest
from helpers import apply, assert_numerically_equal, export, make_model, node, value

from graphdsl.diagnostics import ModelError
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
