"""Block Ack delivery of a stream over a lossy link, simulated PPDU by PPDU.

The sender cuts the stream into fragments (``fragment``), fills each A-MPDU with the lowest
unacknowledged fragments inside the Block Ack window [WinStart, WinStart + buffer) up to the
A-MPDU limits of the ``Link``, and learns from the Block Ack bitmap which MPDUs arrived;
missing ones go again in a later PPDU. Every PPDU costs ``Link.ppdu_cost_us`` (access, preamble,
data, SIFS, Block Ack). Losses are drawn per MPDU by a loss model (a fixed rate, or the PHY
abstraction of ``nnshare.wlan.fading``); the Block Ack itself is assumed to arrive (sent at a
robust basic rate). A fragment lost more than ``retry_limit`` times stops the transfer with a
``DeliveryError`` that keeps the receiver's state, so the transfer can be resumed from its bitmap.
The receiver is a real ``Reassembler``: the bytes delivered are parsed, CRC-checked and verified.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import NNShareError, SpecError
from ..format.wire import crc32
from .airtime import Link
from .fragment import FragmentError, Reassembler, bitmap_to_seqs, fragment, payload_sizes


class DeliveryError(NNShareError):
    """A transfer could not be completed (retry limit, time limit); ``receiver`` holds what arrived."""

    def __init__(self, msg: str, receiver: Reassembler | None = None) -> None:
        super().__init__(msg)
        self.receiver = receiver


@runtime_checkable
class LossModel(Protocol):
    """Draws which MPDUs of one PPDU are lost: ``lost(mpdu_octets (k,), rng) -> bool (k,)``."""

    def lost(self, mpdu_octets: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...


@dataclass(frozen=True)
class RateLoss:
    """Each MPDU lost independently with probability ``p``."""

    p: float

    def __post_init__(self) -> None:
        if not (isinstance(self.p, int | float) and 0.0 <= self.p < 1.0):
            raise SpecError(f"loss rate must be in [0, 1), got {self.p!r}")

    def lost(self, mpdu_octets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rng.random(len(mpdu_octets)) < self.p


class PatternLoss:
    """Losses from a fixed pattern, one entry per MPDU transmission in order, then none (tests).
    Stateful: use one instance per transfer."""

    def __init__(self, pattern) -> None:
        self.pattern, self.pos = tuple(bool(x) for x in pattern), 0

    def lost(self, mpdu_octets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        k = len(mpdu_octets)
        out = np.zeros(k, dtype=bool)
        seg = self.pattern[self.pos : self.pos + k]
        out[: len(seg)] = seg
        self.pos += k
        return out


@dataclass
class Delivery:
    """What one transfer cost and delivered (times in us since the transfer began)."""

    data: bytes | None  # the verified stream, None if the transfer stopped early
    fragments: int
    ppdus: int
    transmissions: int  # MPDUs sent, retransmissions included
    airtime_us: float
    data_us: float
    attempts: np.ndarray  # (fragments,) transmissions of each fragment in this call
    arrival_us: np.ndarray  # (fragments,) time its PPDU's Block Ack came back; nan if not yet
    receiver: Reassembler

    @property
    def complete(self) -> bool:
        return self.data is not None

    @property
    def retransmissions(self) -> int:
        return int(self.transmissions - np.count_nonzero(self.attempts))

    @property
    def fixed_us(self) -> float:
        return self.airtime_us - self.data_us

    def to_dict(self) -> dict:
        return {"complete": self.complete, "fragments": self.fragments, "ppdus": self.ppdus,
                "transmissions": self.transmissions, "retransmissions": self.retransmissions,
                "airtime_us": round(self.airtime_us, 3), "data_us": round(self.data_us, 3)}


def _as_loss(loss) -> LossModel:
    if isinstance(loss, int | float) and not isinstance(loss, bool):
        return RateLoss(float(loss))
    if isinstance(loss, LossModel):
        return loss
    raise SpecError(f"loss must be a rate in [0, 1) or a loss model, got {type(loss).__name__}")


def deliver(
    data: bytes,
    link: Link | None = None,
    loss=0.0,
    *,
    rng: np.random.Generator | int = 0,
    retry_limit: int = 10,
    receiver: Reassembler | None = None,
    stop_after_us: float | None = None,
) -> Delivery:
    """Send ``data`` over ``link`` with Block Ack retransmission until the receiver holds it all.

    ``receiver``: resume into this partly filled receiver; only the fragments its bitmap lacks
    are sent. ``stop_after_us``: start no PPDU after this much airtime (returns an incomplete
    ``Delivery``). Raises DeliveryError after a fragment is lost more than ``retry_limit`` times.
    """
    link = link or Link()
    if isinstance(retry_limit, bool) or not isinstance(retry_limit, int) or retry_limit < 0:
        raise SpecError(f"retry limit must be a non-negative integer, got {retry_limit!r}")
    model = _as_loss(loss)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    frags = fragment(data, link.fragment_bytes)
    sizes = payload_sizes(len(data), link.fragment_bytes)
    n = len(frags)
    recv = receiver if receiver is not None else Reassembler()
    acked = np.zeros(n, dtype=bool)
    if recv.count is not None:
        if recv.transfer != crc32(data) or recv.count != n:
            raise FragmentError("cannot resume: the receiver holds fragments of another transfer")
        acked[bitmap_to_seqs(recv.bitmap(), n)] = True
    attempts = np.zeros(n, dtype=np.int64)
    arrival = np.full(n, np.nan)
    sub = np.array([link.subframe_octets(int(s)) for s in sizes])
    last_sub = np.array([link.subframe_octets(int(s), last=True) for s in sizes])
    mpdu = np.array([link.mpdu_octets(int(s)) for s in sizes])
    t = data_us = 0.0
    ppdus = tx = 0
    start = 0
    while True:
        while start < n and acked[start]:
            start += 1
        if start == n:
            break
        if stop_after_us is not None and t >= stop_after_us:
            return Delivery(None, n, ppdus, tx, t, data_us, attempts, arrival, recv)
        batch: list[int] = []
        run = 0
        for i in range(start, min(start + link.max_mpdus, n)):
            if acked[i]:
                continue
            psdu = run + last_sub[i]
            if batch and (psdu > link.max_psdu_octets or link.phy.ppdu_us(psdu) > link.max_ppdu_us):
                break
            batch.append(i)
            run += sub[i]
        idx = np.asarray(batch)
        psdu = int(sub[idx[:-1]].sum() + last_sub[idx[-1]])
        t += link.ppdu_cost_us(psdu)
        data_us += link.phy.data_us(psdu)
        ppdus += 1
        tx += len(idx)
        attempts[idx] += 1
        lost = np.asarray(model.lost(mpdu[idx], rng), dtype=bool)
        for i in idx[~lost]:
            recv.add(frags[i])
            acked[i] = True
            arrival[i] = t
        over = idx[lost & (attempts[idx] > retry_limit)]
        if over.size:
            i = int(over[0])
            raise DeliveryError(
                f"fragment {i} of {n} was lost {attempts[i]} times (retry limit {retry_limit}) after "
                f"{t / 1000:.3f} ms; the receiver holds {len(recv.parts)} of {n} fragments and can "
                f"resume from its bitmap",
                recv,
            )
    return Delivery(recv.result(), n, ppdus, tx, t, data_us, attempts, arrival, recv)
