"""Decode a stream's records in forked processes (receiver side: stdlib + numpy only).

:func:`decode_tensors` with ``processes`` > 1 reads the stream lazily (header, framing and every
record's CRC checked in the calling process, codes not decoded: :mod:`.lazy`), splits the
quantized records between the caller and ``processes - 1`` forked children by element count
(:func:`.forked.assign`) and lets every process decode its records with the fused dequantizing
path, each to the float32 values one process gives. A child writes its values into one anonymous
shared mapping (``mmap(-1, size)``, allocated before the fork; the arrays returned for its
records are views of it) and reports over a pipe, as JSON (no pickle), the probability-table
entries each of its records charged and its first failure (record, FormatError message).

Errors and caps as in one process: every process stops at its first failing record, and the
caller replays the records in stream order, charging each record's table entries to the stream's
own budget (:mod:`.budget`, so the allowance is for the whole stream, not per process) and
raising the first failure it meets: a child's FormatError is raised again as a FormatError with
its message. A child that fails otherwise (any other exception, or it died) leaves its records to
the caller, which decodes them itself, so the error surfaces with its own type. Children end with
``os._exit`` (no cleanup of the caller's state). Since every record's CRC is checked before any
record is decoded, a stream with several faults may report another one than a one-process decode
(a later record's CRC before an earlier record's payload); a good stream decodes to the same
arrays, bit for bit.

One process where fork is unavailable, for ``processes`` <= 1, or for streams of fewer than
:data:`MIN_VALUES` quantized values (forking costs more there).
"""

from __future__ import annotations

import copy
import json
import math
import mmap
import os
import signal

import numpy as np

from .container import read_stream
from .errors import FormatError
from .forked import assign, check_processes
from .lazy import LazyTensor
from .spec import DecodedTensor

#: Fewest quantized values (all records) for which a decode forks.
MIN_VALUES = 1 << 20
#: Fewest values a child's share must hold (else its records stay in the caller).
MIN_CHILD_VALUES = 1 << 16
_ALIGN = 64  # bytes: each record's values start on a cache line of the shared mapping
_TABLES = "entropy payload"  # what a table charge names (as nnshare.format.entropy.decode does)


def decode_tensors(data, layout=None, *, processes: int = 1, max_elements: int | None = None,
                   max_output_bytes: int | None = None) -> dict:
    """{name: tensor} of a stream, in stream order: quantized records as
    :class:`.spec.DecodedTensor` (float32 values), float and raw records as read. The same
    values as ``read_stream(data, layout, dequantized=True)`` for any ``processes``."""
    processes = check_processes(processes)
    caps = {"max_elements": max_elements, "max_output_bytes": max_output_bytes}
    if processes <= 1 or not hasattr(os, "fork"):
        return dict(read_stream(data, layout, dequantized=True, **caps).tensors)
    stream = read_stream(data, layout, lazy=True, dequantized=True, **caps)
    items = list(stream.tensors.items())
    jobs = [i for i, (_, t) in enumerate(items) if isinstance(t, LazyTensor)]
    sizes = [math.prod(items[i][1].shape) for i in jobs]
    children = []
    if sum(sizes) >= MIN_VALUES:  # the caller keeps the first share (the largest record)
        share = assign([s + 1 for s in sizes], processes)[1:]
        children = [[jobs[k] for k in g] for g in share
                    if sum(sizes[k] for k in g) >= MIN_CHILD_VALUES]
    forked = {i for g in children for i in g}
    mine = [i for i in jobs if i not in forked]
    budget = items[jobs[0]][1].budget if jobs else None
    values, deltas, fails = _decode_forked(items, mine, children, budget)
    for i in jobs:  # the stream's budget sees every record's tables, in stream order
        if deltas.get(i) and budget is not None:
            budget.charge_tables(deltas[i], _TABLES)
        if i in fails:
            raise fails[i]
    return {name: DecodedTensor(values[i]) if i in values else t
            for i, (name, t) in enumerate(items)}


def _decode_forked(items, mine, children, budget):
    """Values, table entries and first failures by record index, ``mine`` decoded here and each
    group of ``children`` in a forked child."""
    offsets, size = {}, 0
    for g in children:
        for i in g:
            offsets[i] = size
            size += -(-4 * math.prod(items[i][1].shape) // _ALIGN) * _ALIGN
    mm = mmap.mmap(-1, max(size, 1)) if children else None
    if children:
        _load_numba(budget)

    def view(i):
        shape = items[i][1].shape
        return np.frombuffer(mm, np.float32, math.prod(shape), offsets[i]).reshape(shape)

    running, here = [], [mine]  # (pid, read fd, group); groups decoded in this process
    try:
        for g in children:
            try:
                r, w = os.pipe()
            except OSError:  # no pipe (or no process) to spare: this process decodes them
                here.append(g)
                continue
            try:
                pid = os.fork()
            except OSError:
                os.close(r)
                os.close(w)
                here.append(g)
                continue
            if pid == 0:  # pragma: no cover - runs in the child
                os.close(r)
                _child(w, items, g, budget, view)
            os.close(w)
            running.append((pid, r, g))
        values, deltas, fails = {}, {}, {}
        for g in here:  # each group in stream order, up to its first failure
            _run(items, g, budget, values.__setitem__, deltas, fails)
        while running:
            pid, r, g = running[0]
            report = _collect(pid, r)
            running.pop(0)
            done, failed = _merge(report, g, deltas, fails)
            values.update((i, view(i)) for i in done)
            if not failed:  # a child that failed otherwise or died: decode the rest here
                _run(items, [i for i in g if i not in done], budget, values.__setitem__,
                     deltas, fails)
        return values, deltas, fails
    finally:
        for pid, r, _ in running:  # interrupted: end the children we started, by pid
            _end(pid, r)


def _load_numba(budget) -> None:
    """Import numba and make the compiled rANS loops here, before forking, when this stream's
    decode uses them (:func:`.entropy.rans.use_compiled`'s rule), so the children inherit them
    instead of each importing numba (~0.3 s CPU) on a process's first decode."""
    from .entropy import rans

    if budget is not None and rans.use_compiled(0, 0, budget.elements):
        rans.load_compiled()


def _end(pid: int, fd: int) -> None:
    """Close ``fd`` and kill and reap child ``pid`` (each step may have happened already)."""
    for step, args in ((os.close, (fd,)), (os.kill, (pid, signal.SIGKILL)),
                       (os.waitpid, (pid, 0))):
        try:
            step(*args)
        except OSError:
            pass


def _run(items, idx, budget, put, deltas, fails) -> None:
    """Decode records ``idx`` in order with a copy of ``budget`` until the first failure:
    ``put(i, values)``, ``deltas[i]`` (table entries charged), ``fails[i]`` (the exception)."""
    local = copy.copy(budget) if budget is not None else None
    if local is not None:
        local.table_entries = 0
    for i in idx:
        before = local.table_entries if local is not None else 0
        try:
            v = items[i][1].values(local)
        except Exception as e:
            deltas[i] = (local.table_entries if local is not None else 0) - before
            fails[i] = e
            return
        deltas[i] = (local.table_entries if local is not None else 0) - before
        put(i, v)


def _child(fd: int, items, idx, budget, view) -> None:  # pragma: no cover - runs in the child
    code = 1
    try:
        deltas, fails, done = {}, {}, []

        def put(i, v):
            out = view(i)
            if v.dtype != np.float32 or v.shape != out.shape:
                raise TypeError("values of another dtype or shape")  # the caller decodes it
            np.copyto(out, v)
            done.append(i)

        _run(items, idx, budget, put, deltas, fails)
        fail = None
        for i, e in fails.items():
            fail = [i, deltas.get(i, 0), "format" if isinstance(e, FormatError) else "other", str(e)]
        blob = json.dumps({"done": [[i, deltas[i]] for i in done], "fail": fail}).encode()
        view_ = memoryview(blob)
        while view_:
            view_ = view_[os.write(fd, view_):]
        code = 0
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _collect(pid: int, fd: int):
    """The child's report (a dict), or None when it failed to send one; the child is reaped
    (and ``fd`` closed) unless interrupted."""
    chunks = []
    while True:
        b = os.read(fd, 1 << 16)
        if not b:
            break
        chunks.append(b)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    if status != 0:
        return None
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return None


def _merge(report, group, deltas, fails) -> tuple[set, bool]:
    """Book a child's report: its decoded records and their table entries, its FormatError.
    Returns (records done, whether it ended in a FormatError); any other failure is left to
    the caller."""
    if not isinstance(report, dict):
        return set(), False
    ok = set(group)
    done = {int(i) for i, _ in report.get("done", ()) if int(i) in ok}
    deltas.update((int(i), int(d)) for i, d in report.get("done", ()) if int(i) in ok)
    fail = report.get("fail")
    if fail and fail[2] == "format" and int(fail[0]) in ok:
        deltas[int(fail[0])] = int(fail[1])
        fails[int(fail[0])] = FormatError(str(fail[3]))
        return done, True
    return done, False
