"""Evaluating graphsurgeon nodes whose inputs are all known, with ONNX Runtime (for `fold constants`).

The nodes become one small ONNX model: known inputs as initializers, the wanted tensors as outputs. It
runs once in a CPU session with graph optimizations off (ORT's own folding and fusions must not change
what is computed) and one thread (the same bytes on every machine, and no thread pool to start).
When that fails and partitioning is asked for, the nodes are split in halves, recursively, so that each
failing node is found with about log2(n) sessions and everything else still folds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Sequence

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx import helper, numpy_helper
from onnx_graphsurgeon.exporters.onnx_exporter import OnnxExporter
from onnx_graphsurgeon.ir.tensor import SparseValues

from graphdsl.graphwalk import GraphTree, graph_tree
from graphdsl.onnxio import default_ir_version
from graphdsl.passes.gs_log import captured_gs_log


@dataclass
class Failure:
    """Nodes ONNX Runtime could not evaluate together (one node once partitioned), and its error."""

    nodes: list[gs.Node]
    error: str


@dataclass
class Evaluation:
    """Values by id(tensor), what failed, and which nodes were not tried because an input failed.

    When partitioned, `boundary` lists the computed tensors that failed or skipped nodes read: folding
    them too leaves those nodes reading constants (as graphsurgeon's recursive partitioning does).
    """

    values: dict[int, np.ndarray] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    skipped: set[int] = field(default_factory=set)
    boundary: list[gs.Tensor] = field(default_factory=list)


class Evaluator:
    """Runs node sets of one model in ONNX Runtime; the model gives opsets and local functions."""

    def __init__(self, model: gs.Graph, tree: GraphTree):
        self.model = model
        self.tree = tree
        self._opsets: list[onnx.OperatorSetIdProto] | None = None
        self._functions: list[onnx.FunctionProto] | None = None

    def evaluate(self, nodes: Sequence[gs.Node], targets: Sequence[gs.Tensor], known: dict[int, np.ndarray],
                 partition: bool) -> Evaluation:
        """Values of `targets`, computed by `nodes` (topologically sorted) from Constants and `known`."""
        result = Evaluation()
        wanted = {id(t) for t in targets}
        if not partition:
            try:
                outputs = [t for n in nodes for t in n.outputs if id(t) in wanted]
                result.values = self._run(nodes, outputs, known)
            except Exception as e:  # noqa: BLE001 - whatever ORT refuses is reported, never fatal
                result.failures.append(Failure(list(nodes), _error_text(e)))
            return result
        self._bisect(list(nodes), wanted, known, result)
        return result

    def _bisect(self, nodes: list[gs.Node], wanted: set[int], known: dict[int, np.ndarray],
                result: Evaluation) -> None:
        last_read = _last_reader(nodes, self.tree)
        available = dict(known)
        chunks = [(0, len(nodes))]
        while chunks:
            lo, hi = chunks.pop()
            runnable = self._runnable(nodes[lo:hi], available, result)
            if not runnable:
                continue
            outputs = [t for n in runnable for t in n.outputs
                       if t.name and (id(t) in wanted or last_read.get(id(t), -1) >= hi)]
            try:
                available.update(self._run(runnable, outputs, available))
            except Exception as e:  # noqa: BLE001 - narrowed down below, reported per node
                if len(runnable) == 1:
                    result.failures.append(Failure(runnable, _error_text(e)))
                else:
                    mid = (lo + hi) // 2
                    chunks += [(mid, hi), (lo, mid)]
        failed = [n for f in result.failures for n in f.nodes]
        unfolded = failed + [n for n in nodes if id(n) in result.skipped]
        boundary = {id(t): t for n in unfolded for t in self.tree.reads(n)
                    if id(t) in available and id(t) not in known and id(t) not in wanted}
        result.boundary = list(boundary.values())
        result.values = {k: v for k, v in available.items() if k in wanted or k in boundary}

    def _runnable(self, nodes: list[gs.Node], available: dict, result: Evaluation) -> list[gs.Node]:
        """The nodes whose inputs are all at hand (given, computed, or made earlier in the list)."""
        made: set[int] = set()
        runnable = []
        for node in nodes:
            if all(_at_hand(t, available, made) for t in self.tree.reads(node)):
                runnable.append(node)
                made.update(id(t) for t in node.outputs)
                result.skipped.discard(id(node))
            else:
                result.skipped.add(id(node))
        return runnable

    def _run(self, nodes: Sequence[gs.Node], outputs: list[gs.Tensor], known: dict) -> dict[int, np.ndarray]:
        if not outputs:
            return {}
        model = self._model(nodes, outputs, known)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        values = session.run([t.name for t in outputs], {})
        return {id(t): v for t, v in zip(outputs, values)}

    def _model(self, nodes: Sequence[gs.Node], outputs: list[gs.Tensor], known: dict) -> onnx.ModelProto:
        with captured_gs_log():  # gs warns of duplicate node names in exported subgraphs: not ours to report
            node_protos = [OnnxExporter.export_node(n) for n in nodes]
            dense, sparse = self._initializers(nodes, known)
        results = [onnx.ValueInfoProto(name=t.name) for t in outputs]  # types: ORT infers them
        graph = helper.make_graph(node_protos, "fold_constants", [], results, initializer=dense,
                                  sparse_initializer=sparse)
        functions = self.functions() if self._calls_functions(nodes) else []
        return helper.make_model(graph, opset_imports=self.opsets(), functions=functions,
                                 ir_version=default_ir_version())

    def _initializers(self, nodes: Sequence[gs.Node], known: dict) -> tuple[list, list]:
        made = {id(t) for n in nodes for t in n.outputs}
        dense: dict[str, onnx.TensorProto] = {}
        sparse: dict[str, onnx.SparseTensorProto] = {}
        for node in nodes:
            # Constants a subgraph reads are exported inside it by gs; its other outer reads come from here
            for t in self.tree.reads(node):
                if id(t) in made or not t.name or t.name in dense or t.name in sparse:
                    continue
                if not isinstance(t, gs.Constant):
                    dense[t.name] = numpy_helper.from_array(np.asarray(known[id(t)]), t.name)
                elif not any(t is i for i in node.inputs):
                    continue
                elif isinstance(t._values, SparseValues):
                    sparse[t.name] = OnnxExporter.export_sparse_tensor_proto(t)
                else:
                    dense[t.name] = OnnxExporter.export_tensor_proto(t)
        return list(dense.values()), list(sparse.values())

    def opsets(self) -> list[onnx.OperatorSetIdProto]:
        """The model's opset imports (its declared ones, else its opset plus every domain its nodes use)."""
        if self._opsets is None:
            self._opsets = _opset_imports(self.model)
        return self._opsets

    def functions(self) -> list[onnx.FunctionProto]:
        if self._functions is None:
            with captured_gs_log():
                self._functions = [OnnxExporter.export_function(f) for f in self.model.functions]
        return self._functions

    def _calls_functions(self, nodes: Sequence[gs.Node]) -> bool:
        ids = {f.unique_id for f in self.model.functions}
        if not ids:
            return False
        inner = [g for n in nodes for sub in self.tree.subgraphs(n) for g in graph_tree(sub, functions=False)]
        return any((n.domain or "", n.op) in ids for n in list(nodes) + [n for g in inner for n in g.nodes])


def _opset_imports(model: gs.Graph) -> list[onnx.OperatorSetIdProto]:
    declared = {o.domain: o.version for o in (model.import_domains or [])}
    declared.setdefault("", declared.pop("ai.onnx", model.opset))
    for g in graph_tree(model):
        for n in g.nodes:
            if n.domain and n.domain != "ai.onnx":
                declared.setdefault(n.domain, 1)
    return [helper.make_opsetid(d, v) for d, v in sorted(declared.items())]


def _at_hand(t: gs.Tensor, available: dict, made: set[int]) -> bool:
    return not t.name or isinstance(t, gs.Constant) or id(t) in available or id(t) in made


def _last_reader(nodes: list[gs.Node], tree: GraphTree) -> dict[int, int]:
    """id(tensor) -> index of the last node in `nodes` that reads it."""
    last: dict[int, int] = {}
    for i, node in enumerate(nodes):
        for t in tree.reads(node):
            last[id(t)] = i
    return last


def _error_text(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


__all__ = ["Evaluation", "Evaluator", "Failure"]
