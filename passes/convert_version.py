"""`convert opset 17`, `convert ir 10`: move the model to another opset (onnx's converter) or IR version."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import onnx
import onnx.version_converter
import onnx_graphsurgeon as gs

from graphdsl.diagnostics import Diagnostic, ModelError, ScriptError, Span, model_error
from graphdsl.pipeline import Pass, PassContext, PassResult
from graphdsl.passes.naming import name_unnamed_nodes
from graphdsl.opschema import graph_opsets
from graphdsl.passes.toposort import node_label

if TYPE_CHECKING:
    from graphdsl.check import ModelScope

BAD_OPSET = "GDS319"
CONVERT_FAILED = "GDS317"
BAD_IR = "GDS318"
FUNCTIONS_IR = 8  # model-local functions came with IR version 8


@dataclass
class ConvertOpset(Pass):
    """Convert the default-domain opset with onnx's version converter (its adapters rewrite ops).

    opset 11 `Split(x, split=[2, 2])` -> opset 13 `Split(x, split_const)`

    Args:
        version: the target opset of the default (`ai.onnx`) domain.
    """

    name = "convert_opset"
    version: int
    span: Span | None = None

    def check(self, scope: "ModelScope") -> None:
        problem = _opset_problem(self.version, self.span)
        if problem is not None:
            scope.error(problem)
        else:
            scope.opset[""] = self.version

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        problem = _opset_problem(self.version, self.span)
        if problem is not None:
            raise ScriptError(problem)
        if graph.opset == self.version:
            return PassResult()
        model = gs.export_onnx(graph)
        try:
            converted = onnx.version_converter.convert_version(model, self.version)
        except (RuntimeError, ValueError, IndexError) as e:
            raise conversion_error(graph, self.version, str(e), self.span) from None
        converted.ir_version = max(model.ir_version, min_ir_version(converted))
        new = gs.import_onnx(converted)
        keep_io_types(graph, new)
        name_unnamed_nodes(new, f"opset{self.version}")
        return PassResult(changed=True, graph=new, counts={"nodes": len(new.nodes)},
                          notes=[f"opset {graph.opset} -> {self.version}"])


@dataclass
class SetIRVersion(Pass):
    """Set the model's IR version, refusing one too old for its opsets (or functions) or unknown to onnx.

    IR 14, opset 17 -> IR 8 (opset 17 needs IR 8 at least)

    Args:
        version: the IR version to write.
    """

    name = "convert_ir"
    version: int
    span: Span | None = None

    def check(self, scope: "ModelScope") -> None:
        if self.version > onnx.IR_VERSION or self.version < 1:
            scope.error(_too_new(self.version, self.span))
        elif scope.knows_model:
            needed = onnx.helper.find_min_ir_version_for(
                [onnx.helper.make_opsetid(d, v) for d, v in scope.opset.items()], ignore_unknown=True)
            if self.version < needed:
                scope.error(_too_old(self.version, needed, "its opsets", self.span))

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        if self.version > onnx.IR_VERSION or self.version < 1:
            raise ModelError(_too_new(self.version, self.span))
        needed, why = required_ir(graph)
        if self.version < needed:
            raise ModelError(_too_old(self.version, needed, why, self.span))
        changed = graph.ir_version != self.version
        graph.ir_version = self.version
        return PassResult(changed=changed, notes=[f"IR version {self.version}"])


def keep_io_types(old: gs.Graph, new: gs.Graph) -> None:
    """Give the converted graph's inputs and outputs the types they were declared with.

    The converter runs shape inference and writes what it infers over the declared I/O shapes (a
    `set output y dim 0 = N` would become 1 again): converting the opset must not change the interface.
    """
    declared = {t.name: t for t in old.inputs + old.outputs}
    for tensor in new.inputs + new.outputs:
        if tensor.name in declared:
            tensor.dtype, tensor.shape = declared[tensor.name].dtype, declared[tensor.name].shape


def _opset_problem(version: int, span: Span | None) -> Diagnostic | None:
    newest = onnx.defs.onnx_opset_version()
    if 1 <= version <= newest:
        return None
    return Diagnostic(BAD_OPSET, f"opset {version} does not exist", span=span,
                      hints=(f"the installed onnx knows opsets 1 to {newest}",))


def min_ir_version(model: onnx.ModelProto) -> int:
    return onnx.helper.find_min_ir_version_for(list(model.opset_import), ignore_unknown=True)


def required_ir(graph: gs.Graph) -> tuple[int, str]:
    """The lowest IR version the graph can be written in, and what requires it."""
    opsets = [onnx.helper.make_opsetid(d, v) for d, v in graph_opsets(graph).items()]
    needed, why = onnx.helper.find_min_ir_version_for(opsets, ignore_unknown=True), "its opsets"
    if graph.functions and FUNCTIONS_IR > needed:
        needed, why = FUNCTIONS_IR, "its model-local functions"
    return needed, why


def _too_new(version: int, span: Span | None) -> Diagnostic:
    return Diagnostic(BAD_IR, f"IR version {version} is not one the installed onnx knows", span=span,
                      hints=(f"IR versions go from 1 to {onnx.IR_VERSION} (onnx {onnx.__version__})",))


def _too_old(version: int, needed: int, why: str, span: Span | None) -> Diagnostic:
    return Diagnostic(BAD_IR, f"IR version {version} is too old for the model: {why} need IR {needed}",
                      span=span,
                      hints=(f"use `convert ir {needed}` or newer, or convert the opset down first",))


def conversion_error(graph: gs.Graph, version: int, message: str, span: Span | None) -> ModelError:
    """The converter's assertion text, with the ops it names and the nodes of those ops."""
    reason = message.split("failed: ", 1)[-1].strip().splitlines()[0] if message.strip() else "unknown error"
    mentioned = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", reason))
    culprits = [n for n in graph.nodes if n.op in mentioned]
    return model_error(CONVERT_FAILED,
                       f"cannot convert opset {graph.opset} to {version}{_naming(culprits)}: {reason}",
                       span=span, location=f"node '{node_label(culprits[0])}'" if culprits else "",
                       hint="onnx's converter has no adapter for this op between these versions; "
                            "rewrite the op with a rule first, or choose another target opset")


def _naming(culprits: list[gs.Node]) -> str:
    """` at op Relu (node r1, r2)` for the nodes of the ops the converter's message names."""
    if not culprits:
        return ""
    ops = ", ".join(sorted({n.op for n in culprits}))
    nodes = ", ".join(node_label(n) for n in culprits[:3]) + (", ..." if len(culprits) > 3 else "")
    return f" at op {ops} (node {nodes})"


__all__ = ["ConvertOpset", "SetIRVersion", "required_ir", "min_ir_version"]
