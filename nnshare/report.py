"""Tables for people: the accounting of a stream (plain text; no rich import on this path, so
``nnshare inspect`` starts fast)."""

from __future__ import annotations

import sys
from typing import TextIO

from .share.inspect import Inspection
from .text import table

_COLUMNS = ("tensor", "shape", "elements", "scheme", "bits/el", "payload", "side", "framing")


def inspection_lines(rep: Inspection) -> str:
    """A stream's accounting as text: per tensor, then header, totals and the saving vs float32.
    Names from the stream are shown escaped (control characters as ``\\xNN``), never as markup."""
    title = f"nnshare {rep.kind} stream v{rep.version}, {rep.mode} mode"
    d = rep.to_dict()
    for what in ("base", "chain"):
        if d[f"{what}_fingerprint"] is not None:
            title += f", {what} {d[f'{what}_fingerprint']}"
    rows = [[r.name, "x".join(map(str, r.shape)) or "scalar", f"{r.elements:,}", r.scheme,
             f"{r.bits_per_element:.2f}", f"{r.payload_bits:,}", f"{r.side_bits:,}",
             f"{r.record_bits + r.pad_bits:,}"] for r in rep.rows]
    right = set(_COLUMNS) - {"tensor", "shape", "scheme"}
    return "\n".join([
        table(list(_COLUMNS), rows, right=right, title=title),
        f"payload {rep.payload_bits:,} + side info {rep.side_bits:,} = {rep.shared_bits:,} bits; "
        f"header {rep.header_bits:,} + framing {rep.overhead_bits - rep.header_bits:,} bits",
        f"total {rep.total_bits:,} bits ({rep.total_bits // 8:,} bytes) vs float32 "
        f"{rep.float32_bits:,} bits: {rep.reduction_percent:.1f}% smaller",
    ])


def inspection_table(rep: Inspection, out: TextIO | None = None) -> None:
    """Print :func:`inspection_lines` to ``out`` (standard output by default)."""
    print(inspection_lines(rep), file=out or sys.stdout)
