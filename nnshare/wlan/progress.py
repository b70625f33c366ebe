"""Progress bars for the demo (rich, or nothing) and the one-thread limit of its math libraries."""

from __future__ import annotations

import os
from contextlib import contextmanager


class Bars:
    """Rich progress bars (or nothing)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._p = None

    @contextmanager
    def running(self):
        if not self.enabled:
            yield self
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(
            TextColumn("{task.description:<34}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        ) as p:
            self._p = p
            yield self
        self._p = None

    def task(self, name: str, total: int):
        if self._p is None:
            return lambda *a, **k: None
        tid = self._p.add_task(name, total=total)
        return lambda *a, **k: self._p.advance(tid)


def limit_threads():
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        return threadpool_limits(1)
    except ImportError:  # pragma: no cover
        return None
