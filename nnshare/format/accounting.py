"""Bit accounting of a stream: every bit belongs to one Section (what ``inspect`` adds up)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    """``bits`` of the stream spent on ``kind`` for tensor ``name`` ("" for the stream header).

    kind: "header" (stream header and its CRC), "record" (a record's framing: kind, spec bytes,
    CRC), "side" (scales, zero points, per-channel widths, codebook levels, entropy model),
    "payload" (codes or float values), "pad" (zero bits up to a byte boundary). ``note`` names
    the entropy model of an entropy-coded payload ("ec:<model>").
    """

    name: str
    kind: str
    bits: int
    note: str = ""


class Tally:
    """Books the bytes of one record into Sections while it is written or read.

    ``pos()`` gives the current byte position (the writer's length or the reader's offset);
    :meth:`close` books everything since the previous close as one section of ``kind``, of which
    the last ``pad_bits`` bits are padding.
    """

    def __init__(self, name: str, pos: Callable[[], int]) -> None:
        self.name = name
        self.pos = pos
        self.mark = pos()
        self.sections: list[Section] = []

    def close(self, kind: str, pad_bits: int = 0) -> None:
        now = self.pos()
        self.sections.append(Section(self.name, kind, 8 * (now - self.mark) - pad_bits))
        if pad_bits:
            self.sections.append(Section(self.name, "pad", pad_bits))
        self.mark = now
