"""Plain-text renderings of link results (airtime breakdowns)."""

from __future__ import annotations

from .airtime import Airtime, Link


def airtime_lines(link: Link, a: Airtime) -> list[str]:
    """A few lines: the link, the total airtime and its split into data and per-PPDU costs."""
    per = link.per_ppdu_fixed_us
    return [
        f"airtime on {link.describe()}:",
        f"  {a.total_ms:.3f} ms total for {a.stream_bytes:,} bytes in {a.fragments} fragments, "
        f"{a.ppdus} PPDU{'s' if a.ppdus != 1 else ''} (goodput {a.goodput_mbps:.1f} Mbit/s)",
        f"  data fields {a.data_us / 1000:.3f} ms; fixed per-PPDU costs {a.fixed_us / 1000:.3f} ms "
        f"({per:.1f} us each: access {link.mac.aifs_us + link.mac.backoff_us:.1f}, preamble "
        f"{link.phy.preamble_us + link.phy.pe_us:.1f}, SIFS + Block Ack {link.mac.sifs_us + link.ba_us:.1f})",
    ]
