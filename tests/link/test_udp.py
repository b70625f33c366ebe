"""Loopback serve/fetch: bit-exact under injected loss, reordering and corruption; bad datagrams
rejected by name; loopback only; bounded in time (every call has a timeout)."""

import socket
import struct
import threading

import numpy as np
import pytest

from nnshare.format.errors import SpecError
from nnshare.link.blockack import DeliveryError
from nnshare.link.fragment import fragment, load_state, save_state
from nnshare.link.udp import KIND_BAR, Impairments, _msg, check_loopback, fetch, serve

DATA = np.random.default_rng(5).integers(0, 256, 120_000, dtype=np.uint8).tobytes()


def _serve_in_thread(data, **kw):
    box: dict = {}
    bound = threading.Event()

    def run():
        try:
            box["report"] = serve(data, 0, ready=lambda p: (box.update(port=p), bound.set()), **kw)
        except Exception as e:  # surfaced by the test
            box["error"] = e
            bound.set()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    assert bound.wait(10)
    return th, box


@pytest.mark.parametrize("imp", [Impairments(), Impairments(loss=0.1, reorder=True, seed=1),
                                 Impairments(loss=0.1, corrupt=0.05, reorder=True, seed=2)])
def test_loopback_bit_exact(imp):
    th, box = _serve_in_thread(DATA, impair=imp, timeout_s=20, window=32)
    data, rep = fetch("127.0.0.1", box["port"], timeout_s=20)
    th.join(20)
    assert data == DATA
    srv = box["report"]
    assert srv.fragments == rep.fragments == -(-len(DATA) // 1400)
    if imp.loss:
        assert srv.dropped > 0 and srv.retransmissions >= srv.dropped
    if imp.corrupt:
        assert srv.corrupted > 0 and rep.rejected.get("corrupted", 0) == srv.corrupted


def test_resume_from_saved_state():
    th, box = _serve_in_thread(DATA, timeout_s=20)
    # a receiver that already holds every other fragment, saved and reloaded as fetch --resume does
    from nnshare.link.fragment import Reassembler
    r = Reassembler()
    frags = fragment(DATA, 1400)
    for f in frags[::2]:
        r.add(f)
    r = load_state(save_state(r))
    data, rep = fetch("localhost", box["port"], receiver=r, timeout_s=20)
    th.join(20)
    assert data == DATA
    assert box["report"].sent == len(frags) // 2  # only what the bitmap lacked


def test_foreign_corrupted_and_duplicate_datagrams_are_rejected():
    frags = fragment(DATA[:5000], 1000)
    foreign = fragment(b"another stream" * 100, 1000)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv:
        srv.bind(("127.0.0.1", 0))
        srv.settimeout(10)
        port = srv.getsockname()[1]
        box: dict = {}
        th = threading.Thread(target=lambda: box.update(res=fetch("127.0.0.1", port, timeout_s=10)),
                              daemon=True)
        th.start()
        req, client = srv.recvfrom(65535)
        nonce = struct.unpack_from("<I", req, 4)[0]
        bad = bytearray(frags[1])
        bad[40] ^= 0x10
        for pkt in [frags[0], frags[0], bytes(bad), foreign[1], b"junk datagram", frags[1], frags[2],
                    _msg(KIND_BAR, struct.pack("<II", nonce ^ 1, 0)), frags[3], frags[4]]:
            srv.sendto(pkt, client)
        th.join(10)
    data, rep = box["res"]
    assert data == DATA[:5000]
    assert rep.duplicates == 1
    assert rep.rejected == {"corrupted": 1, "foreign": 2, "not nnshare": 1}


def test_loopback_only_and_bounded():
    for host in ("10.0.0.1", "example.com", "0.0.0.0", "::1"):
        with pytest.raises(SpecError, match="loopback"):
            check_loopback(host)
    assert check_loopback("localhost") == "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # nobody serves this port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(DeliveryError, match="timed out"):
            fetch("127.0.0.1", port, timeout_s=0.5)
    with pytest.raises(DeliveryError, match="waiting for a fetch request"):
        serve(DATA, 0, timeout_s=0.3)
    with pytest.raises(SpecError):
        Impairments(loss=1.0)
