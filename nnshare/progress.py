"""Progress for operations that can take more than a couple of seconds: a transient spinner (or
bar) on stderr when it is a terminal, nothing otherwise (pipes and tests stay clean)."""

from __future__ import annotations

import contextlib
import sys


@contextlib.contextmanager
def spinner(what: str):
    """Show ``what`` with a spinner and the elapsed time while the block runs."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as prog:
        prog.add_task(what, total=None)
        yield


def track(items, what: str, total: int | None = None):
    """Iterate ``items`` with a progress bar on a terminal (plain iteration otherwise)."""
    if not sys.stderr.isatty():
        yield from items
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as prog:
        task = prog.add_task(what, total=total if total is not None else len(items))
        for x in items:
            yield x
            prog.advance(task)
