"""A progress bar for long steps (verification samples, big folds), shown only where someone watches."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import (BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn)

ProgressCallback = Callable[[str, float], None]


def _ignore(description: str, fraction: float) -> None:
    return None


@contextlib.contextmanager
def progress(console: Console | None = None, quiet: bool = False) -> Iterator[ProgressCallback]:
    """A callback `(description, fraction done) -> None` backed by a transient rich progress bar.

    Args:
        console: where to draw; default a console on stderr, so stdout stays clean for results.
        quiet: draw nothing.

    Yields:
        The callback. It does nothing when `quiet` or when the console is not a terminal (CI logs,
        pipes, Jupyter's captured output), so callers never need to check.
    """
    console = console if console is not None else (None if quiet else Console(stderr=True))
    if quiet or console is None or not console.is_terminal:
        yield _ignore
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("", total=1.0)

        def update(description: str, fraction: float) -> None:
            bar.update(task, description=description, completed=min(max(fraction, 0.0), 1.0))

        yield update
