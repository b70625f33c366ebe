"""The plain-Python single-lane decoder reads its tables as Python lists (small payloads) or as
memoryviews (big ones): the same codes and the same failures either way, on every branch
(one context with a slot table, row contexts, binary search without a slot table)."""

import zlib

import numpy as np
import pytest

from nnshare.format.entropy import decode as dec_mod
from nnshare.format.entropy import decode_codes, encode_codes, rans, rans_py
from nnshare.format.errors import FormatError

N = 6000


def _payload(model: str) -> tuple[np.ndarray, bytes]:
    rng = np.random.default_rng(5)
    x = np.clip(np.rint(rng.laplace(size=N) * (1 + np.arange(N) % 60 / 20)), -31, 31).astype(np.int32)
    return x, encode_codes(x, -31, 31, models=model, row_len=60)


def _damaged(p: bytes) -> bytes:
    b = bytearray(p[:-4])
    b[len(b) // 2] ^= 0x10
    return bytes(b) + zlib.crc32(b).to_bytes(4, "little")


@pytest.mark.parametrize("model", ["iid", "rowcol"])
@pytest.mark.parametrize("slot", [True, False])
def test_lists_and_views_decode_alike(model, slot, monkeypatch):
    x, p = _payload(model)
    monkeypatch.setattr(rans, "_decode_fast", None)  # the plain-Python loops
    # with or without a slot table (without: the decoder searches the cumulative table)
    monkeypatch.setattr(dec_mod.bud, "slot_table_ok", lambda *a: slot)
    seen = []
    real_one = rans_py.decode_one_lane
    monkeypatch.setattr(rans_py, "decode_one_lane", lambda *a: (seen.append(a[7].size), real_one(*a))[1])

    def run(c):
        try:
            return decode_codes(c, N, -31, 31).tobytes()
        except FormatError as e:
            return str(e)

    as_lists = [run(p), run(_damaged(p)), run(p[:-12] + zlib.crc32(p[:-12]).to_bytes(4, "little"))]
    monkeypatch.setattr(rans_py, "LIST_MAX", 0)
    assert [run(p), run(_damaged(p)), run(p[:-12] + zlib.crc32(p[:-12]).to_bytes(4, "little"))] == as_lists
    assert as_lists[0] == x.tobytes()
    assert seen and all((s > 0) == slot for s in seen)  # the branch under test ran
