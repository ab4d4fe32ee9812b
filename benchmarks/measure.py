"""One measurement per fresh process: running a benchmark's worker, its peak resident memory, and that of a
process that only imports (the interpreter's share of every figure). A fresh process's ru_maxrss is its own."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent


def peak_rss() -> int:
    """This process's peak RSS in bytes (getrusage reports kilobytes on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def baseline_rss(module: str) -> int:
    """Peak RSS of a fresh process that runs `module.prepare()` (the benchmark's imports) and nothing else."""
    code = (f"import sys; sys.path[:0] = {[str(HERE), str(HERE.parent)]!r}; from {module} import prepare; "
            "prepare(); from measure import peak_rss; print(peak_rss())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(proc.stdout)


def print_measurement(work: Callable[[], object]) -> None:
    """Run `work` (everything it needs imported already) and print {"seconds", "peak_rss"} as JSON."""
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss": peak_rss()}))


def run_worker(script: str, *args: str) -> dict:
    """Run `script --worker ARGS...` in a fresh interpreter; the JSON its last line prints."""
    proc = subprocess.run([sys.executable, script, "--worker", *args], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{args[0]} on {args[1]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
