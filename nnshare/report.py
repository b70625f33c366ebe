"""Tables for people: the accounting of a stream and bit-width sweeps."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .share.inspect import Inspection
from .text import printable


def inspection_table(rep: Inspection, console: Console | None = None) -> None:
    """Print a stream's accounting: per tensor, then header, totals and the saving vs float32.
    Names from the stream are plain text (never rich markup), control characters escaped."""
    console = console or Console()
    title = f"nnshare {rep.kind} stream v{rep.version}, {rep.mode} mode"
    d = rep.to_dict()
    for what in ("base", "chain"):
        if d[f"{what}_fingerprint"] is not None:
            title += f", {what} {d[f'{what}_fingerprint']}"
    t = Table(title=Text(printable(title)), show_footer=False)
    for col in ("tensor", "shape", "elements", "scheme", "bits/el", "payload", "side", "framing"):
        t.add_column(col, justify="left" if col in ("tensor", "scheme", "shape") else "right",
                     no_wrap=col in ("tensor", "scheme"))
    for r in rep.rows:
        t.add_row(
            Text(printable(r.name)),
            "x".join(map(str, r.shape)) or "scalar",
            f"{r.elements:,}",
            Text(printable(r.scheme)),
            f"{r.bits_per_element:.2f}",
            f"{r.payload_bits:,}",
            f"{r.side_bits:,}",
            f"{r.record_bits + r.pad_bits:,}",
        )
    console.print(t)
    console.print(
        f"payload {rep.payload_bits:,} + side info {rep.side_bits:,} = {rep.shared_bits:,} bits; "
        f"header {rep.header_bits:,} + framing {rep.overhead_bits - rep.header_bits:,} bits"
    )
    console.print(
        f"total {rep.total_bits:,} bits ({rep.total_bits // 8:,} bytes) vs float32 "
        f"{rep.float32_bits:,} bits: {rep.reduction_percent:.1f}% smaller"
    )
