"""Peak resident memory of a measurement process, and of one that only imports (the interpreter's share of
every figure). Each measurement runs in a fresh process: its ru_maxrss is then its own."""

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
            "prepare(); from rss import peak_rss; print(peak_rss())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(proc.stdout)


def print_measurement(work: Callable[[], object]) -> None:
    """Run `work` (everything it needs imported already) and print {"seconds", "peak_rss"} as JSON."""
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss": peak_rss()}))
