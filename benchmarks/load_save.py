"""Load/save benchmark: graphdsl's ONNX IO against onnx and onnx-graphsurgeon, measured in one run.

    python benchmarks/load_save.py            # ~10k and ~100k-node BERT-like models + BERT-base for memory
    python benchmarks/load_save.py --quick    # smaller models, one repetition

Every measurement runs in a fresh Python process (so peak RSS, from getrusage, is that variant's
alone); the time is that of the work only, imports excluded, best of --repeat runs. Ratios are
against the floor, `onnx.load(path)` + `onnx.save(model, path)`, measured on the same model in the
same run. To add a row, add a function to VARIANTS: it gets the input and output paths.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from measure import baseline_rss, print_measurement, run_worker  # noqa: E402


# Variants: each reads `src` and writes `dst`. Imports happen in `prepare`, outside the timing.

def onnx_floor(src: str, dst: str) -> None:
    import onnx

    onnx.save(onnx.load(src), dst)


def gs_round_trip(src: str, dst: str) -> None:
    import onnx
    import onnx_graphsurgeon as gs

    onnx.save(gs.export_onnx(gs.import_onnx(onnx.load(src))), dst)


def gs_fold_round_trip(src: str, dst: str) -> None:
    import onnx
    import onnx_graphsurgeon as gs

    graph = gs.import_onnx(onnx.load(src))
    graph.fold_constants().cleanup()
    onnx.save(gs.export_onnx(graph), dst)


def graphdsl_round_trip(src: str, dst: str) -> None:
    from graphdsl.onnxio import read_model, write_model

    loaded = read_model(src)
    write_model(loaded.graph, dst, loaded.meta)


def graphdsl_fold_round_trip(src: str, dst: str) -> None:
    from graphdsl.onnxio import read_model, write_model
    from graphdsl.passes.cleanup import Cleanup
    from graphdsl.passes.fold_constants import FoldConstants
    from graphdsl.pipeline import PassContext

    loaded = read_model(src)
    ctx = PassContext()
    for step in (FoldConstants(), Cleanup()):  # what `fold constants` + `cleanup` in a script run
        step.apply(loaded.graph, ctx)
    write_model(loaded.graph, dst, loaded.meta)


def graphdsl_run(script: str):
    """`graphdsl run` of a script with --no-verify (onnx.checker still runs), in-process."""
    def run(src: str, dst: str) -> None:
        import graphdsl

        result = graphdsl.compile(script).run(src, output=dst, no_verify=True)
        assert result.passed, result.checker

    return run


VARIANTS = {
    "onnx.load+onnx.save": onnx_floor,
    "gs import_onnx+export_onnx": gs_round_trip,
    "gs import+fold+cleanup+export": gs_fold_round_trip,
    "graphdsl read_model+write_model": graphdsl_round_trip,
    "graphdsl read+fold+cleanup+write": graphdsl_fold_round_trip,
    "graphdsl run (empty script)": graphdsl_run(""),
    "graphdsl run: fold constants; cleanup": graphdsl_run("fold constants\ncleanup\n"),
}
FLOOR = "onnx.load+onnx.save"
FOLD_PAIR = ("gs import+fold+cleanup+export", "graphdsl run: fold constants; cleanup")
IO_PAIR = ("gs import_onnx+export_onnx", "graphdsl read_model+write_model")


def prepare(variant: str = "") -> None:
    """What the variant imports, loaded before the clock starts; gs's warnings silenced."""
    import onnx  # noqa: F401
    from onnx_graphsurgeon.logger import G_LOGGER

    import graphdsl.onnxio  # noqa: F401

    if "fold" in variant or "run" in variant:
        import onnxruntime  # noqa: F401 - fold_constants runs it; a cost of neither side's IO
    if variant.startswith("graphdsl run"):
        import graphdsl.passes.cleanup  # noqa: F401 - the pass modules, the checker, the report
        import graphdsl.passes.fold_constants  # noqa: F401
        import graphdsl.report  # noqa: F401
        import graphdsl.run  # noqa: F401
        import graphdsl.verify  # noqa: F401
    G_LOGGER.severity = G_LOGGER.ERROR


def worker(variant: str, src: str, dst: str) -> None:
    """One measurement, in this (fresh) process: prints {"seconds", "peak_rss"} as JSON."""
    prepare(variant)
    print_measurement(lambda: VARIANTS[variant](src, dst))


@dataclass
class Model:
    """A generated model file and what it holds."""

    label: str
    path: Path
    nodes: int
    weight_bytes: int
    measure_time: bool = True


@dataclass
class Row:
    model: Model
    variant: str
    seconds: float
    peak_rss: int


def measure(model: Model, variant: str, repeat: int, workdir: Path) -> Row:
    best, peak = math.inf, 0
    for _ in range(repeat):
        result = run_worker(__file__, variant, str(model.path), str(workdir / "out.onnx"))
        best, peak = min(best, result["seconds"]), max(peak, result["peak_rss"])
        for leftover in workdir.glob("out.onnx*"):
            leftover.unlink()
    return Row(model, variant, best, peak)


def generate(quick: bool, workdir: Path) -> None:
    """Write the timing models (two sizes, for the growth exponent) and the memory model (BERT-base
    sized); print what they hold as JSON. Runs in its own process: see make_models."""
    import onnx
    from models import make_bert_like, make_bert_like_nodes, weight_bytes

    sizes = (2_000, 20_000) if quick else (10_000, 100_000)
    specs = [(f"bert-like {n // 1000}k nodes", lambda n=n: make_bert_like_nodes(n, hidden=32), True)
             for n in sizes]
    memory = (lambda: make_bert_like(4, 256)) if quick else (lambda: make_bert_like(12, 768))
    specs.append(("bert-small (memory)" if quick else "bert-base (memory)", memory, False))
    out = []
    for label, build, timed in specs:
        proto = build()
        path = workdir / (label.split(" (")[0].replace(" ", "_") + ".onnx")
        onnx.save(proto, path)
        out.append({"label": label, "path": str(path), "nodes": len(proto.graph.node),
                    "weight_bytes": weight_bytes(proto), "measure_time": timed})
        del proto
    print(json.dumps(out))


def make_models(quick: bool, workdir: Path) -> list[Model]:
    # Generated in a child process: on Linux a child's ru_maxrss starts from its parent's peak, so
    # the driver must stay small for the workers' peaks to be their own.
    command = [sys.executable, __file__, "--generate", str(workdir)] + (["--quick"] if quick else [])
    proc = subprocess.run(command, capture_output=True, text=True, check=True)
    return [Model(m["label"], Path(m["path"]), m["nodes"], m["weight_bytes"], m["measure_time"])
            for m in json.loads(proc.stdout.strip().splitlines()[-1])]


def report(rows: list[Row], baseline: int) -> str:
    """The table, then the ratios the targets are stated in."""
    lines = [f"{'model':<24} {'variant':<38} {'time s':>8} {'x floor':>8} {'peak RSS MB':>12} "
             f"{'RSS/weights':>12}"]
    floors = {r.model.label: r.seconds for r in rows if r.variant == FLOOR}
    for r in rows:
        ratio = r.seconds / floors[r.model.label]
        lines.append(f"{r.model.label:<24} {r.variant:<38} {r.seconds:>8.3f} {ratio:>7.2f}x "
                     f"{r.peak_rss / 2**20:>12.0f} {r.peak_rss / r.model.weight_bytes:>11.2f}x")
    lines.append(f"(peak RSS includes the interpreter and imports: {baseline / 2**20:.0f} MB)")
    lines.append("")
    timed = {r.model.label: r.model for r in rows if r.model.measure_time}
    timed = sorted(timed.values(), key=lambda m: m.nodes)
    by = {(r.model.label, r.variant): r for r in rows}
    for m in timed:
        for slow, fast in (IO_PAIR, FOLD_PAIR):
            if (m.label, slow) not in by or (m.label, fast) not in by:  # a --variants subset
                continue
            lines.append(f"{m.label}: {fast} is {by[m.label, slow].seconds / by[m.label, fast].seconds:.2f}x "
                         f"faster than {slow}")
    if len(timed) >= 2:
        small, big = timed[0], timed[-1]
        for variant in (v for v in VARIANTS if (big.label, v) in by and (small.label, v) in by):
            k = math.log(by[big.label, variant].seconds / by[small.label, variant].seconds) / math.log(
                big.nodes / small.nodes)
            lines.append(f"growth {small.nodes} -> {big.nodes} nodes, {variant}: t ~ N^{k:.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller models, one repetition")
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs per measurement, best kept (default 3; 5 on the smaller model, whose "
                             "sub-second times decide the growth exponent; 1 with --quick)")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), help="subset of rows to run")
    parser.add_argument("--worker", nargs=3, metavar=("VARIANT", "SRC", "DST"), help=argparse.SUPPRESS)
    parser.add_argument("--generate", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return 0
    if args.generate:
        generate(args.quick, Path(args.generate))
        return 0
    repeat = args.repeat or (1 if args.quick else 3)
    variants = [v for v in VARIANTS if v in args.variants or v == FLOOR]
    with tempfile.TemporaryDirectory(prefix="gds-bench-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        models = make_models(args.quick, workdir)
        held = [f"{m.label} ({m.nodes} nodes, {m.weight_bytes / 2**20:.0f} MB weights)" for m in models]
        print(f"models generated in {time.perf_counter() - started:.0f} s: " + ", ".join(held), flush=True)
        rows = []
        smallest = min(m.nodes for m in models if m.measure_time)
        for m in models:
            runs = repeat if m.measure_time else 1
            if m.nodes == smallest and not args.quick and args.repeat is None:
                runs = 5
            for variant in variants:
                rows.append(measure(m, variant, runs, workdir))
                print(f"  {m.label:<24} {variant:<38} {rows[-1].seconds:8.3f} s", flush=True)
        print()
        print(report(rows, baseline_rss("load_save")))
        print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
