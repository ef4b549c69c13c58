"""One progress bar style for every long-running stage (rich, on stderr, gone when done)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

ProgressCallback = Callable[[int], None]


@contextlib.contextmanager
def progress_bar(total: int, *, enabled: bool, description: str) -> Iterator[ProgressCallback]:
    """A rich progress bar counting to ``total``; yields ``advance(k)``, a no-op when disabled."""
    if not enabled:
        yield lambda _n: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
