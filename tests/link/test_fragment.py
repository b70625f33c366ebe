"""Fragments: round trip in any order, and every kind of bad fragment rejected by name."""

import itertools
import struct

import numpy as np
import pytest

from nnshare.format.wire import crc32
from nnshare.link.fragment import (
    OVERHEAD_BYTES,
    FragmentError,
    Reassembler,
    bitmap_to_seqs,
    build,
    fragment,
    parse,
    reassemble,
)

DATA = np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("size", [1, 7, 100, 999, 1000, 1001, 65535])
def test_round_trip_sizes(size):
    frags = fragment(DATA, size)
    assert len(frags) == -(-len(DATA) // size)
    assert sum(len(f) for f in frags) == len(DATA) + OVERHEAD_BYTES * len(frags)
    assert reassemble(frags) == DATA
    assert reassemble(frags[::-1]) == DATA


def test_every_order_of_a_small_transfer():
    frags = fragment(DATA[:50], 10)
    for perm in itertools.permutations(frags):
        assert reassemble(perm) == DATA[:50]


def test_empty_stream():
    assert reassemble(fragment(b"", 10)) == b""


def test_corrupted_fragments_rejected():
    f = fragment(DATA, 100)[3]
    for i in range(len(f)):
        bad = bytearray(f)
        bad[i] ^= 0x01
        with pytest.raises(FragmentError):
            parse(bytes(bad))
    with pytest.raises(FragmentError, match="CRC"):
        parse(f[:30] + bytes([f[30] ^ 0xFF]) + f[31:])
    for n in range(len(f)):
        with pytest.raises(FragmentError):
            parse(f[:n])


def test_well_formed_but_wrong_fragments():
    frags = fragment(DATA, 100)
    with pytest.raises(FragmentError, match="duplicated"):
        reassemble(frags + [frags[4]])
    with pytest.raises(FragmentError, match="incomplete: 9 of 10"):
        reassemble(frags[:5] + frags[6:])
    other = fragment(DATA[:-1] + b"x", 100)
    with pytest.raises(FragmentError, match="foreign fragment: transfer"):
        reassemble(frags[:5] + other[5:])
    with pytest.raises(FragmentError, match="foreign fragment: stream of 1000 bytes in 50"):
        reassemble(frags[:5] + fragment(DATA, 50)[10:])
    tid = crc32(DATA)
    with pytest.raises(FragmentError, match="out of range"):
        parse(build(tid, 1000, 100, 10, b"x" * 100))
    with pytest.raises(FragmentError, match="expected 100"):
        parse(build(tid, 1000, 100, 2, b"x" * 99))
    with pytest.raises(FragmentError, match="not a data fragment"):
        parse(build(tid, 1000, 100, 2, b"x" * 100, kind=7))
    bad = b"XX" + frags[0][2:-4]
    with pytest.raises(FragmentError, match="magic"):
        parse(bad + struct.pack("<I", crc32(bad)))
    # the whole-stream CRC catches a payload swapped consistently (same transfer id, forged CRC)
    forged = build(tid, 1000, 100, 0, b"\0" * 100)
    with pytest.raises(FragmentError, match="transfer CRC"):
        reassemble([forged] + frags[1:])


def test_reassembler_counts_duplicates_and_bitmap():
    frags = fragment(DATA, 100)
    r = Reassembler()
    assert r.missing() == [] and r.bitmap() == b""
    for i in (9, 0, 3, 3, 0):
        r.add(frags[i])
    assert r.duplicates == 2
    assert r.missing() == [1, 2, 4, 5, 6, 7, 8]
    assert r.bitmap() == bytes([0b00001001, 0b00000010])
    assert bitmap_to_seqs(r.bitmap(), 10).tolist() == [0, 3, 9]
    with pytest.raises(FragmentError, match="does not match"):
        bitmap_to_seqs(b"\0", 10)
    with pytest.raises(FragmentError, match="beyond the end"):
        bitmap_to_seqs(b"\0\xff", 10)
    with pytest.raises(FragmentError, match="incomplete"):
        r.result()
    for f in frags:
        r.add(f)
    assert r.result() == DATA


def test_saved_state_round_trip_and_damage():
    from nnshare.format.errors import SpecError
    from nnshare.link.fragment import load_state, save_state

    frags = fragment(DATA, 100)
    r = Reassembler()
    for f in frags[1::3]:
        r.add(f)
    blob = save_state(r)
    back = load_state(blob)
    assert back.parts == r.parts and back.bitmap() == r.bitmap() and back.transfer == r.transfer
    for f in frags:
        back.add(f)
    assert back.result() == DATA
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x04
        with pytest.raises(FragmentError):
            load_state(bytes(bad))
    for n in range(len(blob)):
        with pytest.raises(FragmentError):
            load_state(blob[:n])
    with pytest.raises(SpecError, match="nothing received"):
        save_state(Reassembler())
