"""The decoding budget: what a stream may make the receiver allocate and compute.

A receiver decodes streams from other stations, so every cost a stream can cause is charged
against the stream's own length (and the caller's absolute caps) *before* anything is allocated:

- elements: at most :data:`~nnshare.format.container.MAX_ELEMENTS_PER_BYTE` per stream byte
  (the container), and at most ``max_elements`` (default :data:`MAX_ELEMENTS`, 2**28);
- output: every element decodes to at least 4 bytes (int32 codes / float32 values, raw records
  their own item size); at most ``max_output_bytes`` (default :data:`MAX_OUTPUT_BYTES`, 1 GiB);
- probability-table entries (the alphabet widths of all non-constant contexts of every
  entropy-coded record, summed over the stream): at most :data:`TABLE_FREE` +
  :data:`TABLE_PER_BYTE` x stream bytes; a single payload at most that for its own length;
- rANS slot tables (contexts x 2**prec int32): built only when no larger than
  max(:data:`SLOT_FREE`, payload bytes) entries, else the decoder looks symbols up by binary
  search on the cumulative table (same result, no table, slower per code);
- range-coded symbols of non-constant contexts (the pure-Python range decoder, ~1 us each): at
  most :data:`RANGE_SYMBOLS_FREE` + :data:`RANGE_SYMBOLS_PER_BYTE` x payload bytes.

read_stream opens a :func:`scope` with the stream's budget; a bare
:func:`nnshare.format.entropy.decode_codes` call gets a budget of its own payload. Every refusal
is a FormatError naming the cap. The constants are in docs/format.md ("Decoding budget").
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass

from .errors import FormatError, SpecError

MAX_ELEMENTS = 1 << 28  # 268 M parameters: far above any model shared over the air
MAX_OUTPUT_BYTES = 1 << 30  # 1 GiB of decoded arrays
TABLE_FREE = 1 << 17  # table entries any stream may declare (two full 16-bit alphabets)
TABLE_PER_BYTE = 8  # and per stream (payload) byte
SLOT_FREE = 1 << 12  # rANS slot-table entries built whatever the payload's length
RANGE_SYMBOLS_FREE = 1 << 16
RANGE_SYMBOLS_PER_BYTE = 256


def table_allowance(nbytes: int) -> int:
    """Probability-table entries a stream (or a payload) of ``nbytes`` bytes may declare."""
    return TABLE_FREE + TABLE_PER_BYTE * int(nbytes)


def slot_table_ok(n_ctx: int, prec: int, payload_bytes: int) -> bool:
    """Whether the rANS decoder builds the slot table (contexts x 2**prec entries) for a
    payload of ``payload_bytes``: at most one entry per payload byte (or SLOT_FREE)."""
    return (n_ctx << prec) <= max(SLOT_FREE, int(payload_bytes))


def range_symbol_allowance(payload_bytes: int) -> int:
    """Range-coded symbols of non-constant contexts a payload of this length may carry."""
    return RANGE_SYMBOLS_FREE + RANGE_SYMBOLS_PER_BYTE * int(payload_bytes)


def _cap(value, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


@dataclass
class Budget:
    """What one decode may still spend. ``stream_bytes``: the stream's length; ``version``:
    its format version (0 for a bare payload); caps from the caller (None = defaults)."""

    stream_bytes: int
    max_elements: int = MAX_ELEMENTS
    max_output_bytes: int = MAX_OUTPUT_BYTES
    version: int = 0
    elements: int = 0  # the stream's elements (its header), once checked
    table_entries: int = 0
    output_bytes: int = 0

    @classmethod
    def make(cls, stream_bytes: int, max_elements=None, max_output_bytes=None,
             version: int = 0) -> Budget:
        return cls(int(stream_bytes), _cap(max_elements, "max_elements", MAX_ELEMENTS),
                   _cap(max_output_bytes, "max_output_bytes", MAX_OUTPUT_BYTES), version)

    def check_elements(self, elements: int, min_bytes_each: int = 4) -> None:
        """Refuse a stream describing more elements (or output) than the caps allow."""
        if elements > self.max_elements:
            raise FormatError(f"stream describes {elements} elements, more than the receiver's "
                              f"max_elements={self.max_elements}")
        if elements * min_bytes_each > self.max_output_bytes:
            raise FormatError(f"stream would decode to at least {elements * min_bytes_each} "
                              f"bytes, more than max_output_bytes={self.max_output_bytes}")
        self.elements = int(elements)

    def charge_output(self, nbytes: int, what: str) -> None:
        """Book ``nbytes`` of decoded output (raw records' own item sizes)."""
        self.output_bytes += int(nbytes)
        if self.output_bytes > self.max_output_bytes:
            raise FormatError(f"{what}: decoded output exceeds max_output_bytes="
                              f"{self.max_output_bytes}")

    def charge_tables(self, entries: int, what: str) -> None:
        """Book probability-table entries against the stream's allowance (before building)."""
        self.table_entries += int(entries)
        allowed = table_allowance(self.stream_bytes)
        if self.table_entries > allowed:
            raise FormatError(f"{what}: probability tables of {self.table_entries} entries in "
                              f"all exceed the {allowed} a {self.stream_bytes}-byte stream may "
                              "declare")


_CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("nnshare_budget",
                                                                         default=None)


@contextlib.contextmanager
def scope(budget: Budget):
    """Make ``budget`` the one entropy decoders charge while decoding one stream."""
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)


def active() -> Budget | None:
    """The open scope's budget, if any."""
    return _CURRENT.get()


def current(payload_bytes: int) -> Budget:
    """The open stream's budget, or a fresh one for a payload decoded on its own."""
    b = _CURRENT.get()
    return b if b is not None else Budget.make(payload_bytes)
