"""Budget: how much a sender may spend, as a size (bits, bytes, airtime at a link rate) plus
optional compute limits (BOPs, latency from a table)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..format.errors import SpecError


@dataclass(frozen=True)
class Budget:
    """A limit on what is sent (and optionally on what it costs to run).

    Give exactly one size limit:

    - ``bits``: total stream size in bits (header, side info and payload included);
    - ``bytes``: the same in bytes (8 bits each);
    - ``airtime_ms`` with ``rate_mbps``: time on air at a link rate, ``bits = ms * Mbit/s * 1000``
      (payload only: PHY preambles and MAC framing are the link model's business);

    and optionally a compute limit:

    - ``bops``: bit operations, sum over layers of MACs * weight bits * activation bits;
    - ``latency_ms``: sum over tensors of a per-bit-width latency table (see ``CostTable``).

    A budget with no size limit (only ``bops`` / ``latency_ms``) is allowed.
    """

    bits: int | None = None
    bytes: int | None = None
    airtime_ms: float | None = None
    rate_mbps: float | None = None
    bops: float | None = None
    latency_ms: float | None = None

    def __post_init__(self) -> None:
        sizes = [x is not None for x in (self.bits, self.bytes, self.airtime_ms)]
        if sum(sizes) > 1:
            raise SpecError("give one size limit: bits, bytes or airtime_ms (+ rate_mbps)")
        if (self.airtime_ms is None) != (self.rate_mbps is None):
            raise SpecError("an airtime budget needs both airtime_ms and rate_mbps")
        if sum(sizes) == 0 and self.bops is None and self.latency_ms is None:
            raise SpecError("the budget sets no limit (bits, bytes, airtime_ms, bops, latency_ms)")
        for name in ("bits", "bytes", "airtime_ms", "rate_mbps", "bops", "latency_ms"):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise SpecError(f"budget {name} must be a number, got {v!r}")
            if not math.isfinite(v) or v <= 0:
                raise SpecError(f"budget {name} must be positive and finite, got {v}")
        for name in ("bits", "bytes"):
            v = getattr(self, name)
            if v is not None and int(v) != v:
                raise SpecError(f"budget {name} must be a whole number, got {v}")

    @property
    def total_bits(self) -> int | None:
        """The size limit in bits (None when the budget limits only compute)."""
        if self.bits is not None:
            return int(self.bits)
        if self.bytes is not None:
            return 8 * int(self.bytes)
        if self.airtime_ms is not None:
            # 1 ms at 1 Mbit/s is 1000 bits; round down so the airtime is never exceeded.
            return int(math.floor(self.airtime_ms * self.rate_mbps * 1000.0 + 1e-9))
        return None

    def describe(self) -> str:
        """One line for reports, e.g. ``"27456 bits"`` or ``"2.0 ms at 54 Mbit/s (108000 bits)"``."""
        parts = []
        if self.airtime_ms is not None:
            parts.append(f"{self.airtime_ms:g} ms at {self.rate_mbps:g} Mbit/s ({self.total_bits} bits)")
        elif self.bytes is not None:
            parts.append(f"{self.bytes} bytes ({self.total_bits} bits)")
        elif self.bits is not None:
            parts.append(f"{self.bits} bits")
        if self.bops is not None:
            parts.append(f"{self.bops:.4g} BOPs")
        if self.latency_ms is not None:
            parts.append(f"{self.latency_ms:g} ms latency")
        return ", ".join(parts)
