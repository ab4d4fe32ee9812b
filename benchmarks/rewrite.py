"""Rewrite benchmark: graphdsl's standard fusions against onnxscript's rewriter, graphsurgeon's
GraphPattern and onnxruntime's transformer optimizer, measured side by side in one run.

    python benchmarks/rewrite.py            # BERT-like models of ~1k, ~10k and ~100k nodes (under ~10 min)
    python benchmarks/rewrite.py --quick    # ~1k and ~10k nodes, one repetition, onnxruntime at 1k only

The models are `make_bert_like_nodes(n, torchscript=True, opset=20)` (benchmarks/models.py): every layer
as TorchScript exports Hugging Face's BERT (Q/K/V MatMul+Add, Reshape/Transpose, MatMul/Div/Add mask/
Softmax/MatMul, erf-GELU as Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5), LayerNorm as ReduceMean/Sub/Pow/
ReduceMean/Add 1e-12/Sqrt/Div/Mul/Add, residual Adds), at opset 20 so that Gelu exists, with the
intermediate types recorded (value_info) as torch.onnx.export records them.

Rows, each in a fresh process, best of --repeat runs, imports and loading outside the clock unless said:
- graphdsl fusions: std/fusions.gds applied to the graph (the rewrite step alone; load and save excluded).
- graphdsl GELU+LN rules: only the file's GELU and LayerNorm rules, what onnxscript's two rules do (the
  like-for-like row; the whole file also tries Gemm, Conv+BN, RMSNorm, ... on every candidate).
- onnxscript rewriter: the equivalent erf-GELU and LayerNorm rules (`RewriteRuleSet(..., commute=True)`),
  applied to the onnx_ir model (deserialising excluded).
- gs GraphPattern: graphsurgeon's matcher with the same two patterns, matching only (it cannot rewrite).
- graphdsl run: the whole `run` of a script (model, std/fusions.gds, std/cleanup.gds, save): load,
  rewrite, onnx.checker, save; ORT verification off (`no_verify`).
- onnx.load+onnx.save: the floor any tool that reads and writes the model pays.
- at 1k and 10k: onnxruntime's `optimize_model(path, model_type="bert", opt_level=0)` (its Python fusions;
  its own load inside), against std/ort.gds on the graph (rewrite step alone), with the default round
  bound, as a script runs it (every layer's Attention fuses in the first round).

Match counts are checked: graphdsl's GELU and LayerNorm fusions against onnxscript's (and what
graphsurgeon finds), std/ort.gds's com.microsoft ops against onnxruntime's. A count that differs is
printed as MISMATCH and makes the exit code 1. The targets at 100k nodes are printed with the ratios:
the rewrite step >= 5x faster than onnxscript's, growth from 10k to 100k no worse than linear, the run
<= 10x the load+save floor.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from measure import run_worker  # noqa: E402

SQRT2 = 1.4142135


# --- the peers' rules ---------------------------------------------------------------------------------------


def onnxscript_rules():
    """erf-GELU and LayerNorm as onnxscript patterns; commute=True matches Mul/Add either way round."""
    from onnxscript.rewriter import pattern

    def gelu(op, x):
        return op.Mul(op.Mul(x, op.Add(op.Erf(op.Div(x, SQRT2)), 1.0)), 0.5)

    def gelu_replacement(op, x):
        return op.Gelu(x)

    def layernorm(op, x, axes, axes2, eps, g, b):
        d = op.Sub(x, op.ReduceMean(x, axes, keepdims=1))
        var = op.ReduceMean(op.Pow(d, 2.0), axes2, keepdims=1)
        return op.Add(op.Mul(op.Div(d, op.Sqrt(op.Add(var, eps))), g), b)

    def last_axis(context, x, axes, axes2, eps, **_):
        values = [v.const_value for v in (axes, axes2, eps)]
        if any(v is None for v in values):
            return False
        last = [[int(a) for a in v.numpy().reshape(-1)] == [-1] for v in values[:2]]
        return all(last) and values[2].numpy().size == 1

    def layernorm_replacement(op, x, axes, axes2, eps, g, b):
        return op.LayerNormalization(x, g, b, axis=-1, epsilon=float(eps.const_value.numpy().reshape(-1)[0]))

    return {"gelu": pattern.RewriteRuleSet([pattern.RewriteRule(gelu, gelu_replacement)], commute=True),
            "layernorm": pattern.RewriteRuleSet([pattern.RewriteRule(layernorm, layernorm_replacement,
                                                                     last_axis)],
                                                commute=True)}


def _constant_equal(value: float):
    import numpy as np

    def check(node) -> bool:
        tensor = node.attrs.get("value")
        array = np.asarray(tensor.values) if tensor is not None else None
        return array is not None and array.size == 1 and float(array.reshape(-1)[0]) == np.float32(value)
    return check


def gs_patterns():
    """The same two patterns for onnx_graphsurgeon's GraphPattern (inputs in the order the model has them:
    it does not commute)."""
    from onnx_graphsurgeon import GraphPattern

    gelu = GraphPattern()
    x = gelu.variable()
    d = gelu.add("div", "Div", inputs=[x, gelu.add("sqrt2", "Constant", check_func=_constant_equal(SQRT2))])
    a = gelu.add("add", "Add", inputs=[gelu.add("erf", "Erf", inputs=[d]),
                                       gelu.add("one", "Constant", check_func=_constant_equal(1.0))])
    y = gelu.add("mul2", "Mul", inputs=[gelu.add("mul", "Mul", inputs=[x, a]),
                                        gelu.add("half", "Constant", check_func=_constant_equal(0.5))])
    gelu.set_output_tensors([y])

    ln = GraphPattern()
    x = ln.variable()
    d = ln.add("sub", "Sub", inputs=[x, ln.add("mean", "ReduceMean", inputs=[x, ln.add("axes", "Constant")])])
    sq = ln.add("pow", "Pow", inputs=[d, ln.add("two", "Constant", check_func=_constant_equal(2.0))])
    var = ln.add("var", "ReduceMean", inputs=[sq, ln.add("axes2", "Constant")])
    std = ln.add("sqrt", "Sqrt", inputs=[ln.add("add_eps", "Add", inputs=[var, ln.add("eps", "Constant")])])
    n = ln.add("div", "Div", inputs=[d, std])
    y = ln.add("add", "Add", inputs=[ln.add("mul", "Mul", inputs=[n, ln.constant()]), ln.constant()])
    ln.set_output_tensors([y])
    return {"gelu": gelu, "layernorm": ln}


# --- variants: each gets the model's path, returns {"seconds": ..., "counts": {...}} ------------------------


def floor(src: str, dst: str) -> dict:
    import onnx

    start = time.perf_counter()
    onnx.save(onnx.load(src), dst)
    return {"seconds": time.perf_counter() - start, "counts": {}}


def graphdsl_fusions(src: str, dst: str) -> dict:
    from graphdsl.match import apply_rules
    from graphdsl.onnxio import read_model

    rules, graph = std_rules("fusions"), read_model(src).graph
    start = time.perf_counter()
    outcome = apply_rules(graph, rules)
    seconds = time.perf_counter() - start
    counts = outcome.counts
    return {"seconds": seconds, "counts": {"gelu": sum(n for r, n in counts.items() if "gelu" in r),
                                           "layernorm": sum(n for r, n in counts.items() if "layernorm" in r),
                                           **{f"rule {r}": n for r, n in counts.items()}}}


def graphdsl_gelu_ln(src: str, dst: str) -> dict:
    """The rules of std/fusions.gds that do what onnxscript's two do (its GELU and LayerNorm rules): the
    like-for-like comparison. `graphdsl fusions` runs the whole file (Gemm, Conv+BN, RMSNorm... too)."""
    from graphdsl.match import apply_rules
    from graphdsl.onnxio import read_model

    rules = [r for r in std_rules("fusions") if "gelu" in r.name or "layernorm" in r.name]
    graph = read_model(src).graph
    start = time.perf_counter()
    counts = apply_rules(graph, rules).counts
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "counts": {"gelu": sum(n for r, n in counts.items() if "gelu" in r),
                                           "layernorm": sum(n for r, n in counts.items() if "layernorm" in r)}}


def onnxscript_rewriter(src: str, dst: str) -> dict:
    import onnx
    import onnx_ir as ir

    rule_sets, model = onnxscript_rules(), ir.serde.deserialize_model(onnx.load(src))
    start = time.perf_counter()
    counts = {name: rule_set.apply_to_model(model) for name, rule_set in rule_sets.items()}
    return {"seconds": time.perf_counter() - start, "counts": counts}


def gs_graph_pattern(src: str, dst: str) -> dict:
    import onnx
    import onnx_graphsurgeon as gs

    patterns, graph = gs_patterns(), gs.import_onnx(onnx.load(src))
    start = time.perf_counter()
    counts = {name: len(p.match_all(graph)) for name, p in patterns.items()}
    return {"seconds": time.perf_counter() - start, "counts": counts}


def graphdsl_run(src: str, dst: str) -> dict:
    import graphdsl

    pipeline = graphdsl.compile('import "std/fusions.gds"\nimport "std/cleanup.gds"\n')
    start = time.perf_counter()
    result = pipeline.run(src, output=dst, no_verify=True)
    seconds = time.perf_counter() - start
    if not result.passed:
        raise RuntimeError(f"the run failed: {[d.message for d in result.checker]}")
    counts = {}
    for record in result.report.passes:
        for rule, n in record.counts.items():
            counts[f"rule {rule}"] = counts.get(f"rule {rule}", 0) + n
    return {"seconds": seconds, "counts": counts}


def ort_optimizer(src: str, dst: str) -> dict:
    from onnxruntime.transformers.optimizer import optimize_model

    start = time.perf_counter()
    optimized = optimize_model(src, model_type="bert", opt_level=0)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "counts": ms_ops(optimized.model.graph.node)}


def graphdsl_ort(src: str, dst: str) -> dict:
    import onnx_graphsurgeon as gs

    from graphdsl.match import apply_rules
    from graphdsl.onnxio import read_model

    rules, graph = std_rules("ort"), read_model(src).graph
    start = time.perf_counter()
    apply_rules(graph, rules)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "counts": ms_ops(gs.export_onnx(graph).graph.node)}


def ms_ops(nodes) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in nodes:
        if n.domain == "com.microsoft":
            counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts


def std_rules(name: str) -> list:
    from graphdsl.compile import std_library_dir
    from graphdsl.match import compile_rules

    path = std_library_dir() / f"{name}.gds"
    return compile_rules(path.read_text(), str(path))


VARIANTS = {
    "onnx.load+onnx.save": floor,
    "graphdsl fusions (rewrite step)": graphdsl_fusions,
    "graphdsl GELU+LN rules (rewrite step)": graphdsl_gelu_ln,
    "onnxscript rewriter (GELU+LN)": onnxscript_rewriter,
    "gs GraphPattern (match only)": gs_graph_pattern,
    "graphdsl run (load+rules+save)": graphdsl_run,
    "onnxruntime optimize_model(bert)": ort_optimizer,
    "graphdsl std/ort.gds (rewrite step)": graphdsl_ort,
}
FLOOR, FUSIONS, SAME_RULES, ONNXSCRIPT, GS, RUN, ORT, GDS_ORT = VARIANTS
ORT_PAIR = (ORT, GDS_ORT)


def prepare() -> None:
    """What every variant imports, loaded before the clock starts; graphsurgeon's logging silenced."""
    import onnx  # noqa: F401
    import onnx_graphsurgeon  # noqa: F401
    import onnx_ir  # noqa: F401
    import onnxruntime  # noqa: F401
    import onnxscript.rewriter.pattern  # noqa: F401
    from onnx_graphsurgeon.logger import G_LOGGER

    import graphdsl.match  # noqa: F401
    import graphdsl.onnxio  # noqa: F401
    import graphdsl.run  # noqa: F401

    G_LOGGER.severity = G_LOGGER.ERROR
    import logging

    logging.getLogger("onnxruntime").setLevel(logging.ERROR)  # "model producer not matched" warnings


def worker(variant: str, src: str, dst: str) -> None:
    prepare()
    print(json.dumps(VARIANTS[variant](src, dst)))


# --- driver -------------------------------------------------------------------------------------------------


@dataclass
class Model:
    label: str
    path: Path
    nodes: int


@dataclass
class Row:
    model: Model
    variant: str
    seconds: float
    counts: dict = field(default_factory=dict)


def generate(sizes: list[int], workdir: Path) -> None:
    """Write the models (in a child process, like the measurements) and print what they hold as JSON."""
    import onnx
    from models import make_bert_like_nodes

    out = []
    for n in sizes:
        # torch.onnx.export records the intermediate types (its ONNX shape inference pass): so do we
        proto = onnx.shape_inference.infer_shapes(make_bert_like_nodes(n, torchscript=True, opset=20))
        path = workdir / f"bert_{n}.onnx"
        onnx.save(proto, path)
        out.append({"label": f"bert-like {n // 1000}k", "path": str(path), "nodes": len(proto.graph.node)})
    print(json.dumps(out))


def measure(model: Model, variant: str, repeat: int, workdir: Path) -> Row:
    best, counts = math.inf, {}
    for _ in range(repeat):
        result = run_worker(__file__, variant, str(model.path), str(workdir / "out.onnx"))
        best, counts = min(best, result["seconds"]), result["counts"]
        for leftover in workdir.glob("out.onnx*"):
            leftover.unlink()
    return Row(model, variant, best, counts)


def count_checks(rows: list[Row]) -> list[str]:
    """Same match counts: graphdsl vs onnxscript (GELU, LayerNorm), std/ort.gds vs onnxruntime."""
    by = {(r.model.label, r.variant): r for r in rows}
    lines = []
    for label in dict.fromkeys(r.model.label for r in rows):
        ours, theirs, gs_row = by.get((label, FUSIONS)), by.get((label, ONNXSCRIPT)), by.get((label, GS))
        subset = by.get((label, SAME_RULES))
        if ours and theirs:
            for kind in ("gelu", "layernorm"):
                same = ours.counts.get(kind) == theirs.counts.get(kind)
                same = same and (subset is None or subset.counts.get(kind) == theirs.counts.get(kind))
                found_by_gs = gs_row.counts.get(kind) if gs_row else "-"
                lines.append(f"{label}: {kind:<9} graphdsl {ours.counts.get(kind)} (GELU+LN rules alone "
                             f"{subset.counts.get(kind) if subset else '-'}), onnxscript "
                             f"{theirs.counts.get(kind)}, graphsurgeon finds {found_by_gs}  "
                             f"{'same' if same else 'MISMATCH'}")
        ort, mine = by.get((label, ORT)), by.get((label, GDS_ORT))
        if ort and mine:
            same = ort.counts == mine.counts
            lines.append(f"{label}: com.microsoft ops, onnxruntime {ort.counts} / std/ort.gds {mine.counts}  "
                         f"{'same' if same else 'MISMATCH'}")
    return lines


def _growth(by: dict, variant: str, small: Model, big: Model) -> float:
    return math.log(by[big.label, variant] / by[small.label, variant]) / math.log(big.nodes / small.nodes)


def ratio_lines(rows: list[Row], models: list[Model]) -> list[str]:
    by = {(r.model.label, r.variant): r.seconds for r in rows}
    lines = []
    for m in models:
        speedup, run = by[m.label, ONNXSCRIPT] / by[m.label, FUSIONS], by[m.label, RUN] / by[m.label, FLOOR]
        same = by[m.label, ONNXSCRIPT] / by[m.label, SAME_RULES]
        lines.append(f"{m.label}: graphdsl rewrite step {same:.1f}x faster than onnxscript's with the same "
                     f"rules ({speedup:.1f}x with all of std/fusions.gds); run {run:.1f}x the load+save floor")
        if (m.label, ORT) in by:
            versus_ort = by[m.label, ORT] / by[m.label, GDS_ORT]
            lines.append(f"{m.label}: std/ort.gds rewrite step {versus_ort:.1f}x faster than onnxruntime's "
                         "optimize_model")
    if len(models) < 2:
        return lines
    small, big = models[-2], models[-1]
    for variant in (FUSIONS, SAME_RULES, ONNXSCRIPT, GS, RUN, FLOOR):
        k = _growth(by, variant, small, big)
        lines.append(f"growth {small.nodes} -> {big.nodes} nodes, {variant}: t ~ N^{k:.2f}")
    k = _growth(by, FUSIONS, small, big)
    speedup = by[big.label, ONNXSCRIPT] / by[big.label, FUSIONS]
    same = by[big.label, ONNXSCRIPT] / by[big.label, SAME_RULES]
    run_ratio = by[big.label, RUN] / by[big.label, FLOOR]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    return lines + ["", f"targets at {big.label}:",
                    f"  rewrite step >= 5x faster than onnxscript's, same rules: {same:.1f}x  {verdict(same >= 5)}",
                    f"  rewrite step >= 5x faster than onnxscript's, all of std/fusions.gds against its two "
                    f"rules: {speedup:.1f}x  {verdict(speedup >= 5)}",
                    f"  growth no worse than linear: N^{k:.2f}  {verdict(k <= 1.05)}",
                    f"  run <= 10x the load+save floor: {run_ratio:.1f}x  {verdict(run_ratio <= 10)}"]


def report(rows: list[Row], models: list[Model]) -> tuple[str, bool]:
    lines = [f"{'model':<14} {'nodes':>7} {'variant':<38} {'time s':>8}"]
    for r in rows:
        lines.append(f"{r.model.label:<14} {r.model.nodes:>7} {r.variant:<38} {r.seconds:>8.3f}")
    checks = count_checks(rows)
    lines += ["", "match counts:"] + [f"  {c}" for c in checks] + [""] + ratio_lines(rows, models)
    return "\n".join(lines), not any("MISMATCH" in c for c in checks)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="~1k and ~10k nodes, one repetition, ORT at 1k only")
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs per measurement, best kept (default 3; "
                        "1 with --quick; onnxruntime's optimizer always once: it is quadratic)")
    parser.add_argument("--worker", nargs=3, metavar=("VARIANT", "SRC", "DST"), help=argparse.SUPPRESS)
    parser.add_argument("--generate", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return 0
    if args.generate:
        generate([int(n) for n in args.generate[1:]], Path(args.generate[0]))
        return 0
    if args.quick:
        sizes, ort_sizes = [1_000, 10_000], [1_000]
    else:
        sizes, ort_sizes = [1_000, 10_000, 100_000], [1_000, 10_000]
    repeat = args.repeat or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory(prefix="gds-rewrite-") as tmp:
        workdir, started = Path(tmp), time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--generate", tmp, *map(str, sizes)],
                              capture_output=True,
                              text=True, check=True)
        models = [Model(m["label"], Path(m["path"]),
                        m["nodes"]) for m in json.loads(proc.stdout.splitlines()[-1])]
        print(f"models generated in {time.perf_counter() - started:.0f} s: "
              + ", ".join(f"{m.label} ({m.nodes} nodes)" for m in models), flush=True)
        rows = []
        for m, size in zip(models, sizes):
            for variant in VARIANTS:
                if variant in ORT_PAIR and size not in ort_sizes:
                    continue
                rows.append(measure(m, variant, 1 if variant == ORT else repeat, workdir))
                print(f"  {m.label:<14} {variant:<38} {rows[-1].seconds:8.3f} s", flush=True)
        text, same = report(rows, models)
        print("\n" + text)
        print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
