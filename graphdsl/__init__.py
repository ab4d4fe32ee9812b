"""graphdsl: ONNX graph surgery in a small language, checked numerically with ONNX Runtime.

    import graphdsl
    pipeline = graphdsl.compile("examples/quickstart.gds")
    result = pipeline.run("model.onnx", output="out.onnx")
    result.report          # rich report (renders in Jupyter too)
"""

from graphdsl.compile import Pipeline, compile
from graphdsl.diagnostics import Diagnostic, ExitCode, GraphdslError, ModelError, ScriptError, Span
from graphdsl.pipeline import Pass, PassContext, PassResult
from graphdsl.run import Result, RunOptions

__version__ = "0.1.0"

__all__ = [
    "Diagnostic",
    "ExitCode",
    "GraphdslError",
    "ModelError",
    "Pass",
    "PassContext",
    "PassResult",
    "Pipeline",
    "Result",
    "RunOptions",
    "ScriptError",
    "Span",
    "compile",
]
