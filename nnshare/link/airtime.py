"""The one airtime model: a stream sent as fragments in A-MPDUs of HE/EHT PPDUs, each PPDU paid for
with channel access and answered by a Block Ack.

Per PPDU (us): AIFS (SIFS + AIFSN * slot) + mean backoff (CWmin / 2 * slot) + PPDU + SIFS + Block
Ack (compressed BA frame in a non-HT PPDU at a basic rate). One PPDU per channel access (TXOP
limit 0, the best-effort default); the Block Ack agreement set-up is a one-off and not counted.

Per MPDU (octets): MAC header (QoS Data, 26) + LLC/SNAP (8) + fragment framing (22, see
``fragment``) + payload + FCS (4), in an A-MPDU subframe with a 4-octet delimiter, padded to a
multiple of 4 octets except the last. A-MPDU limits: at most ``max_mpdus`` subframes (256 HE,
1024 EHT), at most ``max_psdu_octets`` (6,500,631 HE; 15,523,200 EHT), PPDU at most
``max_ppdu_us`` (aPPDUMaxTime 5,484 us); MPDU at most 11,454 octets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import SpecError
from .fragment import OVERHEAD_BYTES, payload_sizes
from .phy import Phy, legacy_ppdu_us

MAX_MPDU_OCTETS = 11_454


@dataclass(frozen=True)
class Mac:
    """MAC framing and channel-access parameters (defaults: EDCA best effort, no security)."""

    header_octets: int = 26
    llc_octets: int = 8
    fcs_octets: int = 4
    delimiter_octets: int = 4
    sifs_us: float = 16.0
    slot_us: float = 9.0
    aifsn: int = 3
    cw_min: int = 15
    ba_rate_mbps: int = 24

    @property
    def aifs_us(self) -> float:
        return self.sifs_us + self.aifsn * self.slot_us

    @property
    def backoff_us(self) -> float:
        """Mean backoff before a first attempt: CWmin / 2 slots."""
        return self.cw_min / 2 * self.slot_us


@dataclass(frozen=True)
class Airtime:
    """Airtime of one transfer (all in us, counts are whole numbers)."""

    stream_bytes: int
    fragments: int
    ppdus: int
    psdu_octets: int
    data_us: float  # PPDU data fields
    preamble_us: float  # PPDU preambles (+ packet extension)
    access_us: float  # AIFS + mean backoff
    ack_us: float  # SIFS + Block Ack
    rate_mbps: float

    @property
    def fixed_us(self) -> float:
        """Per-PPDU costs that do not carry data: access, preamble, SIFS, Block Ack."""
        return self.preamble_us + self.access_us + self.ack_us

    @property
    def total_us(self) -> float:
        return self.data_us + self.fixed_us

    @property
    def total_ms(self) -> float:
        return self.total_us / 1000.0

    @property
    def goodput_mbps(self) -> float:
        """Stream bits per microsecond of airtime."""
        return 8 * self.stream_bytes / self.total_us if self.total_us else 0.0

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("stream_bytes", "fragments", "ppdus", "psdu_octets",
                                           "data_us", "preamble_us", "access_us", "ack_us",
                                           "fixed_us", "total_us", "rate_mbps", "goodput_mbps")}
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in d.items()}


@dataclass(frozen=True)
class Link:
    """A PHY configuration, MAC parameters, the fragment payload size (bytes) and the Block Ack
    buffer size agreed at set-up (MPDUs; default the standard's 256 for HE, 1024 for EHT)."""

    phy: Phy = field(default_factory=Phy)
    mac: Mac = field(default_factory=Mac)
    fragment_bytes: int = 1500
    ba_buffer: int | None = None

    def __post_init__(self) -> None:
        fb = self.fragment_bytes
        if isinstance(fb, bool) or not isinstance(fb, int) or fb < 1:
            raise SpecError(f"fragment size must be a positive number of bytes, got {fb!r}")
        if self.mpdu_octets(fb) > MAX_MPDU_OCTETS:
            top = MAX_MPDU_OCTETS - self.mpdu_octets(0)
            raise SpecError(f"a {fb}-byte fragment makes an MPDU over {MAX_MPDU_OCTETS} octets "
                            f"(at most {top} payload bytes)")
        cap = 256 if self.phy.standard == "ax" else 1024
        b = self.ba_buffer
        if b is not None and (isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= cap):
            raise SpecError(f"Block Ack buffer must be 1..{cap} MPDUs for 802.11{self.phy.standard}, "
                            f"got {b!r}")

    @property
    def max_mpdus(self) -> int:
        """MPDUs per A-MPDU and Block Ack window."""
        cap = 256 if self.phy.standard == "ax" else 1024
        return cap if self.ba_buffer is None else self.ba_buffer

    @property
    def max_psdu_octets(self) -> int:
        return 6_500_631 if self.phy.standard == "ax" else 15_523_200

    max_ppdu_us = 5484.0

    def mpdu_octets(self, payload: int) -> int:
        """MPDU length of a fragment carrying ``payload`` stream bytes."""
        m = self.mac
        return m.header_octets + m.llc_octets + OVERHEAD_BYTES + payload + m.fcs_octets

    def subframe_octets(self, payload: int, last: bool = False) -> int:
        """A-MPDU subframe: delimiter + MPDU, padded to 4 octets unless last."""
        n = self.mac.delimiter_octets + self.mpdu_octets(payload)
        return n if last else -(-n // 4) * 4

    def psdu_octets(self, payloads) -> int:
        """A-MPDU length of fragments with these payload sizes (in order)."""
        p = list(payloads)
        return sum(self.subframe_octets(x) for x in p[:-1]) + self.subframe_octets(p[-1], last=True)

    def fits(self, payloads) -> bool:
        """Whether these fragments fit one A-MPDU / PPDU."""
        p = list(payloads)
        if not p or len(p) > self.max_mpdus:
            return False
        n = self.psdu_octets(p)
        return n <= self.max_psdu_octets and self.phy.ppdu_us(n) <= self.max_ppdu_us

    @property
    def ba_us(self) -> float:
        """Compressed Block Ack frame at the basic rate: frame control, duration, RA, TA, BA control,
        starting sequence control and FCS (24 octets) + a bitmap of 64, 256 or 1024 bits."""
        bitmap = 8 if self.max_mpdus <= 64 else 32 if self.max_mpdus <= 256 else 128
        return legacy_ppdu_us(24 + bitmap, self.mac.ba_rate_mbps)

    @property
    def per_ppdu_fixed_us(self) -> float:
        """Access + preamble + packet extension + SIFS + Block Ack, us."""
        m = self.mac
        return m.aifs_us + m.backoff_us + self.phy.preamble_us + self.phy.pe_us + m.sifs_us + self.ba_us

    def mpdus_per_ppdu(self) -> int:
        """Full-size fragments per A-MPDU under the count, length and duration limits."""
        f = self.fragment_bytes
        sub = self.subframe_octets(f)
        lo, hi = 1, self.max_mpdus
        if not self.fits([f]):
            raise SpecError(f"one {f}-byte fragment does not fit a PPDU of {self.max_ppdu_us} us "
                            f"at {self.phy.describe()}")
        while lo < hi:  # largest n whose n subframes fit
            mid = (lo + hi + 1) // 2
            n = sub * (mid - 1) + self.subframe_octets(f, last=True)
            if n <= self.max_psdu_octets and self.phy.ppdu_us(n) <= self.max_ppdu_us:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def ppdu_cost_us(self, psdu_octets: int) -> float:
        """Airtime of one exchange carrying a PSDU: fixed per-PPDU costs + data field."""
        return self.per_ppdu_fixed_us + self.phy.data_us(psdu_octets)

    def transfer(self, stream_bytes: int) -> Airtime:
        """Airtime of a loss-free transfer of ``stream_bytes`` (fragments packed greedily in order)."""
        if isinstance(stream_bytes, bool) or not isinstance(stream_bytes, int) or stream_bytes < 0:
            raise SpecError(f"stream size must be a non-negative number of bytes, got {stream_bytes!r}")
        sizes = payload_sizes(stream_bytes, self.fragment_bytes)
        n = self.mpdus_per_ppdu()
        full, rest = divmod(len(sizes), n)
        if rest == 0:
            full, rest = full - 1, n
        full_psdu = self.psdu_octets([self.fragment_bytes] * n)
        last_psdu = self.psdu_octets(sizes[-rest:].tolist())
        ppdus = full + 1
        data_us = full * self.phy.data_us(full_psdu) + self.phy.data_us(last_psdu)
        m = self.mac
        return Airtime(
            stream_bytes=stream_bytes,
            fragments=len(sizes),
            ppdus=ppdus,
            psdu_octets=full * full_psdu + last_psdu,
            data_us=data_us,
            preamble_us=ppdus * (self.phy.preamble_us + self.phy.pe_us),
            access_us=ppdus * (m.aifs_us + m.backoff_us),
            ack_us=ppdus * (m.sifs_us + self.ba_us),
            rate_mbps=self.phy.rate_mbps,
        )

    def airtime_us(self, stream_bytes: int) -> float:
        """Total airtime (us) of a loss-free transfer."""
        return self.transfer(stream_bytes).total_us

    def max_stream_bytes(self, airtime_ms: float) -> int:
        """Largest stream (bytes) whose loss-free transfer takes at most ``airtime_ms`` (0 if none)."""
        budget = airtime_ms * 1000.0 + 1e-9
        if self.airtime_us(1) > budget:
            return 0
        lo, hi = 1, 2
        while self.airtime_us(hi) <= budget:
            lo, hi = hi, hi * 2
        while hi - lo > 1:  # airtime is non-decreasing in the stream size
            mid = (lo + hi) // 2
            if self.airtime_us(mid) <= budget:
                lo = mid
            else:
                hi = mid
        return lo

    def describe(self) -> str:
        return f"{self.phy.describe()}, {self.fragment_bytes}-byte fragments"


def parse_link(text: str | None) -> Link:
    """A Link from ``"mcs=7,bw=80,nss=2,gi=0.8,std=ax,frag=1500"`` (any subset; empty = defaults)."""
    keys = {"mcs": "mcs", "bw": "bandwidth_mhz", "nss": "nss", "gi": "gi_us", "std": "standard",
            "ltf": "ltf", "frag": "fragment_bytes"}
    phy_args: dict = {}
    frag = 1500
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        k, sep, v = item.partition("=")
        k = k.strip().lower()
        if not sep or k not in keys:
            raise SpecError(f"link option {item!r} is not key=value with a key among {', '.join(keys)}")
        v = v.strip()
        try:
            if k == "std":
                phy_args["standard"] = v.lower().removeprefix("802.11")
            elif k == "gi":
                phy_args["gi_us"] = float(v)
            elif k == "frag":
                frag = int(v)
            else:
                phy_args[keys[k]] = int(v.lower().removesuffix("mhz"))
        except ValueError:
            raise SpecError(f"link option {k} needs a number, got {v!r}") from None
    return Link(Phy(**phy_args), fragment_bytes=frag)

