"""Run a bytes-valued function over items in forked worker processes (sender side, stdlib only;
the decoder forks through :mod:`.forked_decode`).

Each child inherits the parent's memory (fork), computes its share of the items one after the
other and sends each result back over a pipe as ``u32 index, u64 length, bytes``: no pickle,
nothing but the bytes crosses. Items go to children by weight (largest first to the least
loaded), so the split depends on the items only. A child that fails sends nothing more; the
parent then computes the items it is missing itself, so an error surfaces with its own type and
message, as without workers. Where fork is unavailable (or ``processes`` <= 1) everything runs
in the calling process: the results are the same either way.
"""

from __future__ import annotations

import os
import select
import struct
from collections.abc import Callable, Sequence

from .errors import SpecError

_HEAD = struct.Struct("<IQ")


def check_processes(processes) -> int:
    """``processes`` as an int; SpecError unless it is a positive integer (not a bool)."""
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise SpecError(f"processes must be a positive integer, got {processes!r}")
    return int(processes)


def assign(weights: Sequence[float], processes: int) -> list[list[int]]:
    """Indices per worker: largest weight first to the least loaded worker (ties: lowest)."""
    loads = [0.0] * processes
    out: list[list[int]] = [[] for _ in range(processes)]
    for i in sorted(range(len(weights)), key=lambda i: (-weights[i], i)):
        w = min(range(processes), key=lambda p: (loads[p], p))
        out[w].append(i)
        loads[w] += float(weights[i])
    return [sorted(x) for x in out]


def _child(fd: int, fn: Callable[[int], bytes], idx: list[int]) -> None:
    code = 0
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            for i in idx:
                b = fn(i)
                f.write(_HEAD.pack(i, len(b)))
                f.write(b)
    except BaseException:  # the parent recomputes what is missing and raises there
        code = 1
    os._exit(code)


def forked_map(fn: Callable[[int], bytes], weights: Sequence[float], processes: int = 1) -> list[bytes]:
    """``[fn(i) for i in range(len(weights))]``, computed by up to ``processes`` forked children
    (the parent only collects). ``fn`` must be deterministic and return bytes."""
    n = len(weights)
    if processes <= 1 or n < 2 or not hasattr(os, "fork"):
        return [fn(i) for i in range(n)]
    groups = [g for g in assign(weights, min(processes, n)) if g]
    pids, bufs = [], {}
    for g in groups:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os.close(r)
            _child(w, fn, g)
        os.close(w)
        pids.append(pid)
        bufs[r] = bytearray()
    try:
        open_fds = set(bufs)
        while open_fds:
            ready, _, _ = select.select(list(open_fds), [], [])
            for fd in ready:
                chunk = os.read(fd, 1 << 20)
                if chunk:
                    bufs[fd] += chunk
                else:
                    open_fds.discard(fd)
    finally:
        for fd in bufs:
            os.close(fd)
        for pid in pids:
            os.waitpid(pid, 0)
    results: list[bytes | None] = [None] * n
    for buf in bufs.values():
        view, pos = memoryview(buf), 0
        while pos + _HEAD.size <= len(view):
            i, size = _HEAD.unpack_from(view, pos)
            pos += _HEAD.size
            if pos + size > len(view) or i >= n:
                break  # a child cut short: what is missing is computed below
            results[i] = bytes(view[pos : pos + size])
            pos += size
    return [fn(i) if r is None else r for i, r in enumerate(results)]
