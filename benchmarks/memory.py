"""Memory and time of the default pipeline, as ratios: peak RSS to the model's weight bytes, time to
`onnx.load` + `onnx.save` of the same model measured in the same run.

    python benchmarks/memory.py            # BERT-base (440 MB) external and embedded, a 2.2 GB external model
    python benchmarks/memory.py --quick    # a 110 MB model instead of BERT-base, no 2.2 GB model
    python benchmarks/memory.py --json     # the rows as JSON

Every measurement runs in a fresh Python process, so its peak RSS (getrusage ru_maxrss) is its own; the
time covers the work only (imports excluded). Rows, per model:

- `onnx.load+onnx.save`: the floor (for external data: loaded into memory, saved as external data);
- `graphdsl run default --no-verify`: `import "std/default.gds"` and a `save` like the input's (external
  data stays external), onnx.checker on the result, no ONNX Runtime comparison;
- `graphdsl run default (verified)`: the same with the comparison, whose ONNX Runtime sessions hold the
  weights of both models (so at least 1x by nature; reported, not a target);
- `graphdsl run tidy --no-verify`: std/tidy.gds only (fold constants, cleanup, toposort; no rules), to
  tell the cost of reading, folding and writing from that of the rule engine;
- `graphdsl run save-only --no-verify`: a script that only saves: reading, writing and onnx.checker.

Targets: external-data weights no pass changes are never read into memory (peak RSS <= 0.5x the weight
bytes) and are written by copying file ranges; embedded weights peak at <= 2x (onnx itself needs ~3x).
RSS counts the interpreter and its imports too; `above baseline` subtracts a worker that only imports.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from measure import baseline_rss, print_measurement  # noqa: E402

FLOOR = "onnx.load+onnx.save"
NO_VERIFY = "graphdsl run default --no-verify"
VERIFIED = "graphdsl run default (verified)"
TIDY = "graphdsl run tidy --no-verify"
SAVE_ONLY = "graphdsl run save-only --no-verify"
TARGETED = (NO_VERIFY, TIDY, SAVE_ONLY)


def onnx_floor(src: str, dst: str, external: bool) -> None:
    import onnx

    model = onnx.load(src)  # external data is read into the proto
    if external:
        onnx.save(model, dst, save_as_external_data=True, all_tensors_to_one_file=True,
                  location=Path(dst).name + ".data")
    else:
        onnx.save(model, dst)


def graphdsl_run(verify: bool, library: str | None = "default"):
    def run(src: str, dst: str, external: bool) -> None:
        import graphdsl

        save = f'save "{Path(dst).name}"' + (f' external "{Path(dst).name}.data"' if external else "")
        script = Path(dst).parent / "script.gds"
        script.write_text((f'import "std/{library}.gds"\n' if library else "") + f"{save}\n")
        result = graphdsl.compile(script).run(src, no_verify=not verify)
        assert result.passed, (result.checker, result.verification)

    return run


VARIANTS = {FLOOR: onnx_floor, NO_VERIFY: graphdsl_run(False), VERIFIED: graphdsl_run(True),
            TIDY: graphdsl_run(False, "tidy"), SAVE_ONLY: graphdsl_run(False, None)}


def prepare() -> None:
    """Everything the variants import, loaded before the clock starts."""
    import onnx
    import onnxruntime

    import graphdsl.onnxio
    import graphdsl.run
    import graphdsl.verify

    del onnx, onnxruntime, graphdsl


def worker(variant: str, src: str, dst: str, external: str) -> None:
    """One measurement in this fresh process: prints {"seconds", "peak_rss"}."""
    prepare()
    print_measurement(lambda: VARIANTS[variant](src, dst, external == "1"))


@dataclass
class Model:
    label: str
    path: str
    external: bool
    nodes: int
    weight_bytes: int


@dataclass
class Row:
    model: str
    variant: str
    seconds: float
    time_ratio: float
    peak_rss: int
    rss_ratio: float
    above_baseline_ratio: float
    target: str  # "<= 0.5x" or "<= 2x" of the weight bytes, for the rows that have one
    met: bool | None  # None: no target, or the variant failed
    error: str = ""  # why the variant failed (its last line of stderr)


def generate(quick: bool, big: bool, workdir: str) -> None:
    """Write the models (in this child process: a child's ru_maxrss starts from its parent's peak, so the
    driver stays small); print what they hold as JSON."""
    import onnx
    from models import make_bert_like, weight_bytes

    specs = [("bert-small" if quick else "bert-base", (4, 512) if quick else (12, 768))]
    if big:
        specs.append(("bert 2.2 GB", (26, 1280)))
    out = []
    for label, (layers, hidden) in specs:
        proto = make_bert_like(layers, hidden)
        info = {"nodes": len(proto.graph.node), "weight_bytes": weight_bytes(proto)}
        stem = label.replace(" ", "_").replace(".", "_")
        if info["weight_bytes"] < 2**31 - 2**24:  # embedded only where protobuf can hold it
            path = Path(workdir) / f"{stem}_embedded.onnx"
            onnx.save(proto, path)
            out.append({"label": f"{label} embedded", "path": str(path), "external": False, **info})
        path = Path(workdir) / f"{stem}_external.onnx"
        onnx.save(proto, path, save_as_external_data=True, all_tensors_to_one_file=True,
                  location=path.name + ".data", size_threshold=1024)
        out.append({"label": f"{label} external", "path": str(path), "external": True, **info})
        del proto
    print(json.dumps(out))


def measure(model: Model, variant: str, workdir: Path) -> tuple[float, int, str]:
    """(seconds, peak RSS, error): a failed variant (killed for memory, say) is a row, not the end."""
    out = workdir / "out"
    out.mkdir(exist_ok=True)
    command = [sys.executable, __file__, "--worker", variant, model.path, str(out / "result.onnx"),
               "1" if model.external else "0"]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    shutil.rmtree(out)
    if proc.returncode:
        lines = proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"]
        return math.nan, 0, lines[-1][:200]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["seconds"], result["peak_rss"], ""


def run(quick: bool, big: bool, variants: list[str], log=print) -> tuple[list[Row], int]:
    baseline = baseline_rss("memory")
    rows = []
    with tempfile.TemporaryDirectory(prefix="gds-memory-") as tmp:
        workdir = Path(tmp)
        command = [sys.executable, __file__, "--generate", tmp, "--quick" if quick else "--no-quick",
                   "--big" if big else "--no-big"]
        proc = subprocess.run(command, capture_output=True, text=True, check=True)
        models = [Model(**m) for m in json.loads(proc.stdout.strip().splitlines()[-1])]
        for model in models:
            floor = None
            for variant in [FLOOR] + [v for v in variants if v != FLOOR]:
                seconds, peak, error = measure(model, variant, workdir)
                floor = seconds if variant == FLOOR else floor
                limit = (0.5 if model.external else 2.0) if variant in TARGETED else None
                ratio = peak / model.weight_bytes
                met = None if limit is None or error else ratio <= limit
                rows.append(Row(model.label, variant, seconds, seconds / floor, peak, ratio,
                                max(0, peak - baseline) / model.weight_bytes,
                                f"<= {limit:g}x" if limit else "", met, error))
                log(f"  {model.label:<22} {variant:<34} {seconds:7.2f} s  {peak / 2**20:7.0f} MB  {error}",
                    flush=True)
    return rows, baseline


def table(rows: list[Row], baseline: int) -> str:
    lines = [(f"{'model':<22} {'variant':<34} {'time s':>7} {'x floor':>8} {'peak RSS MB':>12} "
              f"{'RSS/weights':>12} {'above baseline':>15} {'target':>8} {'met':>4}")]
    for r in rows:
        met = {True: "yes", False: "NO", None: ""}[r.met]
        lines.append(f"{r.model:<22} {r.variant:<34} {r.seconds:>7.2f} {r.time_ratio:>7.2f}x "
                     f"{r.peak_rss / 2**20:>12.0f} {r.rss_ratio:>11.2f}x {r.above_baseline_ratio:>14.2f}x "
                     f"{r.target:>8} {met:>4}" + (f"  failed: {r.error}" if r.error else ""))
    lines.append(f"(baseline: a worker that only imports peaks at {baseline / 2**20:.0f} MB)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action=argparse.BooleanOptionalAction, default=False,
                        help="a 110 MB model; no 2.2 GB model")
    parser.add_argument("--big", action=argparse.BooleanOptionalAction, default=None,
                        help="include the 2.2 GB external-data model (default: on unless --quick)")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), help="subset of rows")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--generate", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    big = (not args.quick) if args.big is None else args.big
    if args.worker:
        worker(*args.worker)
        return 0
    if args.generate:
        generate(args.quick, big, args.generate)
        return 0
    started = time.perf_counter()
    rows, baseline = run(args.quick, big, args.variants, log=(lambda *a, **k: None) if args.json else print)
    if args.json:
        print(json.dumps({"baseline_rss": baseline, "rows": [asdict(r) for r in rows]}))
    else:
        print()
        print(table(rows, baseline))
        print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
