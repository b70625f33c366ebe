"""A real transport for end-to-end tests: one stream served over UDP on the loopback interface,
with the same fragments and the same Block Ack window as the airtime model.

Messages (little-endian; magic ``b"NL"``, version 1, kind byte, then the fields, then a CRC-32
of everything before it; data fragments are ``fragment`` kind 0):

- kind 1 REQUEST (client -> server): nonce u32, bitmap length u32, bitmap (resume; may be empty);
- kind 2 BAR (server -> client, Block Ack request after a burst): nonce u32, window start u32;
- kind 3 BA (client -> server): nonce u32, window start u32, bitmap bytes of the window.

The server sends the unacknowledged fragments of the window [start, start + window) in one
burst (optionally dropping, reordering or corrupting some, for tests), then a BAR, and waits for
the BA; a lost BA or BAR just means the burst is sent again. Everything is bounded in time and
binds to 127.0.0.1 only.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import SpecError
from ..format.wire import crc32
from .blockack import DeliveryError
from .fragment import MAGIC, VERSION, FragmentError, Reassembler, bitmap_to_seqs, fragment

LOOPBACK = "127.0.0.1"
KIND_REQUEST, KIND_BAR, KIND_BA = 1, 2, 3
MAX_DATAGRAM = 65_507


def _msg(kind: int, body: bytes) -> bytes:
    b = MAGIC + bytes([VERSION, kind]) + body
    return b + struct.pack("<I", crc32(b))


def _open(pkt: bytes) -> tuple[int, bytes]:
    """(kind, body) of a checked control message or data fragment (body = whole fragment)."""
    if len(pkt) < 8 or pkt[:2] != MAGIC or pkt[2] != VERSION:
        raise FragmentError("datagram is not an nnshare link message")
    if pkt[3] == 0:
        return 0, pkt
    (crc,) = struct.unpack_from("<I", pkt, len(pkt) - 4)
    if crc32(pkt[:-4]) != crc:
        raise FragmentError("control message CRC mismatch")
    return pkt[3], pkt[4:-4]


def check_loopback(host: str) -> str:
    """The loopback address for ``host`` ("127.0.0.1" or "localhost"); SpecError otherwise."""
    h = host.strip().strip("[]")
    if h == "localhost":
        return LOOPBACK
    try:
        ok = ipaddress.ip_address(h).is_loopback and ipaddress.ip_address(h).version == 4
    except ValueError:
        ok = False
    if not ok:
        raise SpecError(f"serve and fetch use the loopback interface only (127.0.0.1), not {host!r}")
    return h


@dataclass
class Impairments:
    """Injected on the server's data fragments: loss and corruption probabilities, reordering."""

    loss: float = 0.0
    reorder: bool = False
    corrupt: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("loss", "corrupt"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and 0.0 <= v < 1.0):
                raise SpecError(f"injected {name} must be in [0, 1), got {v!r}")


@dataclass
class ServeReport:
    """What the server sent."""

    fragments: int = 0
    sent: int = 0
    dropped: int = 0
    corrupted: int = 0
    bursts: int = 0
    rejected: dict = field(default_factory=dict)

    @property
    def retransmissions(self) -> int:
        return self.sent + self.dropped - self.fragments


def serve(
    data: bytes,
    port: int = 0,
    *,
    fragment_bytes: int = 1400,
    window: int = 256,
    impair: Impairments | None = None,
    timeout_s: float = 30.0,
    ack_timeout_s: float = 0.05,
    retry_limit: int = 50,
    ready: Callable[[int], None] | None = None,
) -> ServeReport:
    """Serve ``data`` to one client on 127.0.0.1:``port`` (0 = any free port; ``ready(port)`` is
    called once bound). Returns when the client's Block Ack covers every fragment; raises
    DeliveryError when ``timeout_s`` passes first or a fragment is sent ``retry_limit`` times."""
    if not 1 <= window <= 1024:
        raise SpecError(f"window must be 1..1024 fragments, got {window}")
    if fragment_bytes > 60_000:
        raise SpecError("fragments must fit one UDP datagram (at most 60000 payload bytes)")
    imp = impair or Impairments()
    rng = np.random.default_rng(imp.seed)
    frags = fragment(data, fragment_bytes)
    n = len(frags)
    rep = ServeReport(fragments=n)
    acked = np.zeros(n, dtype=bool)
    sends = np.zeros(n, dtype=np.int64)
    deadline = time.monotonic() + timeout_s
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, port))
        if ready is not None:
            ready(sock.getsockname()[1])
        client, nonce = _wait_request(sock, deadline, rep, n, acked)
        while not acked.all():
            if time.monotonic() > deadline:
                raise DeliveryError(f"serve timed out after {timeout_s:g} s with {int(acked.sum())} of "
                                    f"{n} fragments acknowledged")
            start = int(np.argmin(acked))
            burst = [i for i in range(start, min(start + window, n)) if not acked[i]]
            if imp.reorder:
                burst = [burst[j] for j in rng.permutation(len(burst))]
            for i in burst:
                sends[i] += 1
                if sends[i] > retry_limit:
                    raise DeliveryError(f"fragment {i} sent {retry_limit} times without an acknowledgement")
                if rng.random() < imp.loss:
                    rep.dropped += 1
                    continue
                pkt = frags[i]
                if rng.random() < imp.corrupt:
                    b = bytearray(pkt)
                    b[int(rng.integers(len(b)))] ^= 1 << int(rng.integers(8))
                    pkt = bytes(b)
                    rep.corrupted += 1
                sock.sendto(pkt, client)
                rep.sent += 1
            rep.bursts += 1
            sock.sendto(_msg(KIND_BAR, struct.pack("<II", nonce, start)), client)
            _wait_ba(sock, client, nonce, acked, deadline, ack_timeout_s, rep)
    return rep


def _reject(rep, why: str) -> None:
    rep.rejected[why] = rep.rejected.get(why, 0) + 1


def _wait_request(sock, deadline, rep, n, acked):
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeliveryError("serve timed out waiting for a fetch request")
        sock.settimeout(left)
        try:
            pkt, addr = sock.recvfrom(MAX_DATAGRAM)
        except TimeoutError:
            continue
        try:
            kind, body = _open(pkt)
            if kind != KIND_REQUEST or len(body) < 8:
                raise FragmentError("expected a fetch request")
            nonce, nb = struct.unpack_from("<II", body)
            if nb:
                acked[bitmap_to_seqs(body[8 : 8 + nb], n)] = True
        except FragmentError as e:
            _reject(rep, str(e))
            continue
        return addr, nonce


def _wait_ba(sock, client, nonce, acked, deadline, ack_timeout_s, rep) -> None:
    end = min(deadline, time.monotonic() + ack_timeout_s)
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            pkt, addr = sock.recvfrom(MAX_DATAGRAM)
        except TimeoutError:
            return
        if addr != client:
            _reject(rep, "datagram from a foreign address")
            continue
        try:
            kind, body = _open(pkt)
            if kind == KIND_REQUEST:  # the client restarted: its bitmap comes with the next BA
                continue
            if kind != KIND_BA or len(body) < 8:
                raise FragmentError(f"unexpected message kind {kind} from the client")
            got, start = struct.unpack_from("<II", body)
            if got != nonce:
                raise FragmentError("Block Ack for another session")
            bits = np.unpackbits(np.frombuffer(body[8:], np.uint8), bitorder="little")
            seqs = start + np.flatnonzero(bits)
            if seqs.size and seqs.max() >= acked.size:
                raise FragmentError("Block Ack marks fragments beyond the end of the transfer")
        except FragmentError as e:
            _reject(rep, str(e))
            continue
        acked[seqs] = True
        return


@dataclass
class FetchReport:
    """What the client received."""

    fragments: int = 0
    received: int = 0
    duplicates: int = 0
    rejected: dict = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        bad = ", ".join(f"{v} {k}" for k, v in sorted(self.rejected.items())) or "none"
        return (f"{self.fragments} fragments, {self.received} datagrams, {self.duplicates} duplicates "
                f"dropped, rejected: {bad}")


def _classify(err: FragmentError) -> str:
    s = str(err)
    names = {"CRC": "corrupted", "foreign": "foreign", "not an nnshare": "not nnshare",
             "magic": "not nnshare", "out of range": "out of range", "version": "version",
             "twice": "conflicting duplicate"}
    return next((v for k, v in names.items() if k in s), "malformed")


def fetch(
    host: str,
    port: int,
    *,
    timeout_s: float = 30.0,
    receiver: Reassembler | None = None,
    nonce: int | None = None,
) -> tuple[bytes, FetchReport]:
    """Fetch the stream served on ``host``:``port`` (loopback only). ``receiver``: resume from a
    partly received transfer. Returns (verified stream, report); DeliveryError on timeout, with
    the partial receiver attached so the caller can save it and resume."""
    addr = (check_loopback(host), int(port))
    r = receiver if receiver is not None else Reassembler()
    rep = FetchReport()
    nonce = int(np.random.default_rng().integers(1 << 32)) if nonce is None else nonce
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    bitmap = r.bitmap() if r.count is not None else b""
    req = _msg(KIND_REQUEST, struct.pack("<II", nonce, len(bitmap)) + bitmap)
    if len(req) > MAX_DATAGRAM:
        raise SpecError("resume bitmap too large for one datagram")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.sendto(req, addr)
        last_start = 0
        while not r.complete:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeliveryError(f"fetch timed out after {timeout_s:g} s with {len(r.parts)} of "
                                    f"{r.count if r.count is not None else '?'} fragments", r)
            sock.settimeout(min(left, 0.25))
            try:
                pkt, src = sock.recvfrom(MAX_DATAGRAM)
            except TimeoutError:
                sock.sendto(req if r.count is None else _ba(nonce, last_start, r), addr)
                continue
            rep.received += 1
            if src != addr:
                _reject(rep, "foreign sender")
                continue
            try:
                kind, body = _open(pkt)
                if kind == 0:
                    if not r.add(body):
                        rep.duplicates += 1
                elif kind == KIND_BAR and len(body) == 8:
                    got, last_start = struct.unpack("<II", body)
                    if got != nonce:
                        raise FragmentError("foreign Block Ack request (another session)")
                    sock.sendto(_ba(nonce, last_start, r), addr)
                else:
                    raise FragmentError(f"unexpected message kind {kind}")
            except FragmentError as e:
                _reject(rep, _classify(e))
        data = r.result()
        for _ in range(3):  # the final Block Ack: the server stops when it sees every fragment
            sock.sendto(_ba(nonce, last_start, r), addr)
    rep.fragments = r.count
    rep.seconds = time.monotonic() - t0
    return data, rep


def _ba(nonce: int, start: int, r: Reassembler, window: int = 1024) -> bytes:
    n = r.count or 0
    start = min(start, n)
    bits = np.zeros(min(window, n - start), dtype=bool)
    for i in range(start, start + bits.size):
        bits[i - start] = i in r.parts
    return _msg(KIND_BA, struct.pack("<II", nonce, start) + np.packbits(bits, bitorder="little").tobytes())


__all__ = ["FetchReport", "Impairments", "ServeReport", "check_loopback", "fetch", "serve"]
