"""Budget: how much a sender may spend, as a size (bits, bytes, airtime on an 802.11 link) plus
optional compute limits (BOPs, latency from a table), or as the task quality it may lose
(``max_drop``, searched by :func:`nnshare.compress` with the user's evaluation function)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..format.errors import SpecError


@runtime_checkable
class AirtimeModel(Protocol):
    """What an airtime budget needs from a link (``nnshare.link.Link`` is the one model)."""

    def max_stream_bytes(self, airtime_ms: float) -> int: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Budget:
    """A limit on what is sent (and optionally on what it costs to run).

    Give exactly one size limit:

    - ``bits``: total stream size in bits (header, side info and payload included);
    - ``bytes``: the same in bytes (8 bits each);
    - ``airtime_ms`` with ``link``: time on air of the whole transfer on an 802.11 link
      (``nnshare.link.Link``: fragments, A-MPDUs, preambles, channel access and Block Acks
      included); the size limit is the largest stream the link carries in that time;

    and optionally a compute limit:

    - ``bops``: bit operations, sum over layers of MACs * weight bits * activation bits;
    - ``latency_ms``: sum over tensors of a per-bit-width latency table (see ``CostTable``).

    A budget with no size limit (only ``bops`` / ``latency_ms``) is allowed.

    Or a task-quality limit (alone; :func:`nnshare.compress` finds the smallest stream meeting it):

    - ``max_drop``: how much of the task metric may be lost, a fraction of the float model's
      metric when ``relative`` (default; 0.005 = 0.5 %), else in the metric's own units;
    - ``higher_is_better``: True for accuracy / cosine, False for a loss or an MSE (the metric
      may then rise by at most the drop).
    """

    bits: int | None = None
    bytes: int | None = None
    airtime_ms: float | None = None
    link: Any = None
    bops: float | None = None
    latency_ms: float | None = None
    max_drop: float | None = None
    relative: bool = True
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        for name in ("relative", "higher_is_better"):
            if not isinstance(getattr(self, name), bool):
                raise SpecError(f"budget {name} must be True or False, got {getattr(self, name)!r}")
        if self.max_drop is not None:
            self._check_quality()
            return
        sizes = [x is not None for x in (self.bits, self.bytes, self.airtime_ms)]
        if sum(sizes) > 1:
            raise SpecError("give one size limit: bits, bytes or airtime_ms (+ link)")
        if (self.airtime_ms is None) != (self.link is None):
            raise SpecError("an airtime budget needs both airtime_ms and a link (nnshare.link.Link)")
        if self.link is not None and not isinstance(self.link, AirtimeModel):
            raise SpecError(f"budget link must be an airtime model such as nnshare.link.Link, "
                            f"got {type(self.link).__name__}")
        if sum(sizes) == 0 and self.bops is None and self.latency_ms is None:
            raise SpecError("the budget sets no limit (bits, bytes, airtime_ms, bops, latency_ms, max_drop)")
        for name in ("bits", "bytes", "airtime_ms", "bops", "latency_ms"):
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

    def _check_quality(self) -> None:
        others = [n for n in ("bits", "bytes", "airtime_ms", "link", "bops", "latency_ms")
                  if getattr(self, n) is not None]
        if others:
            raise SpecError(f"a task-quality budget (max_drop) stands alone: drop {', '.join(others)}")
        v = self.max_drop
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise SpecError(f"budget max_drop must be a number, got {v!r}")
        if not math.isfinite(v) or v < 0:
            raise SpecError(f"budget max_drop must be >= 0 and finite, got {v}")
        if self.relative and v >= 1:
            raise SpecError(f"a relative max_drop is a fraction of the float metric (0.005 = 0.5 %), "
                            f"got {v}: below 1 is needed")

    @property
    def is_quality(self) -> bool:
        """True for a task-quality budget (``max_drop``)."""
        return self.max_drop is not None

    def allowed(self, reference: float) -> float:
        """The metric the stream must reach: at least (higher is better) or at most (lower is
        better) this, given the float model's metric ``reference``."""
        if not self.is_quality:
            raise SpecError("only a task-quality budget (max_drop) has an allowed metric")
        d = abs(reference) * self.max_drop if self.relative else self.max_drop
        return reference - d if self.higher_is_better else reference + d

    def meets(self, metric: float, reference: float) -> bool:
        """Whether ``metric`` is within the budget of the float model's ``reference``."""
        if not math.isfinite(metric):
            return False
        a = self.allowed(reference)
        eps = 1e-12 * max(1.0, abs(reference))  # the limit itself is within (rounding of a - d)
        return metric >= a - eps if self.higher_is_better else metric <= a + eps

    @property
    def total_bits(self) -> int | None:
        """The size limit in bits (None when the budget limits only compute)."""
        if self.bits is not None:
            return int(self.bits)
        if self.bytes is not None:
            return 8 * int(self.bytes)
        if self.airtime_ms is not None:
            return 8 * int(self.link.max_stream_bytes(self.airtime_ms))
        return None

    def describe(self) -> str:
        """One line for reports, e.g. ``"27456 bits"`` or ``"2 ms on HE MCS0 ... (9896 bits)"``."""
        if self.is_quality:
            d = f"{100 * self.max_drop:g} %" if self.relative else f"{self.max_drop:g}"
            return f"metric drop <= {d} ({'higher' if self.higher_is_better else 'lower'} is better)"
        parts = []
        if self.airtime_ms is not None:
            parts.append(f"{self.airtime_ms:g} ms on {self.link.describe()} ({self.total_bits} bits)")
        elif self.bytes is not None:
            parts.append(f"{self.bytes} bytes ({self.total_bits} bits)")
        elif self.bits is not None:
            parts.append(f"{self.bits} bits")
        if self.bops is not None:
            parts.append(f"{self.bops:.4g} BOPs")
        if self.latency_ms is not None:
            parts.append(f"{self.latency_ms:g} ms latency")
        return ", ".join(parts)
