"""Fuzzing of format v2 in CI: every single-byte change and every truncation of a sample of every
stream kind, then random and CRC-recomputed mutations -> only FormatError, bounded memory.
The long run (100,000 mutations, speed, worst time and RSS) is bench/fuzz.py."""

import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from nnshare.format import FormatError

sys.path.insert(0, str(Path(__file__).parent))
from fuzzing import corpus, mutate, single_byte_changes  # noqa: E402

SAMPLES = corpus()
IDS = [s.name for s in SAMPLES]
MUTATIONS = 3000


def test_corpus_covers_every_stream_kind_and_record_kind():
    from nnshare.format import read_stream
    from nnshare.format.chain import ChainState

    kinds = set()
    for s in SAMPLES:
        s.decode(s.data)  # the untouched sample decodes
        kinds.add(s.data[5])
        assert s.segments[-1][1] == len(s.data)
    assert kinds == {0, 1, 2, 3}  # model, update, features, chain state
    ent = read_stream(next(s for s in SAMPLES if s.name == "model-entropy").data)
    c = ent.tensors["c"]
    assert c.spec.channel_bits and any(sec.name == "c" and sec.note.startswith("ec:")
                                       for sec in ent.sections)  # per-channel widths, entropy-coded
    assert isinstance(ChainState.from_bytes(SAMPLES[-2].data), ChainState)


@pytest.mark.parametrize("sample", SAMPLES, ids=IDS)
def test_every_single_byte_change_is_detected(sample):
    for bad in single_byte_changes(sample.data):
        with pytest.raises(FormatError):
            sample.decode(bad)


@pytest.mark.parametrize("sample", SAMPLES, ids=IDS)
def test_every_truncation_is_detected(sample):
    for n in range(len(sample.data)):
        with pytest.raises(FormatError):
            sample.decode(sample.data[:n])


def test_random_and_crc_recomputed_mutations_raise_only_format_error():
    rng = np.random.default_rng(2026)
    recomputed = accepted = 0
    worst = 0.0
    tracemalloc.start()
    try:
        for k in range(MUTATIONS):
            sample = SAMPLES[k % len(SAMPLES)]
            data, crc = mutate(sample, rng)
            recomputed += crc
            tracemalloc.reset_peak()
            try:
                sample.decode(data)
                accepted += 1
            except FormatError:
                pass
            _, peak = tracemalloc.get_traced_memory()
            worst = max(worst, peak / max(len(data), 1))
            # bounded allocation: the output bound (4,096 elements per byte, float32 + codes)
            assert peak <= 32 * 4096 * len(data) + (4 << 20), (sample.name, peak, len(data))
    finally:
        tracemalloc.stop()
    assert recomputed > MUTATIONS // 2  # most mutations reach the parser behind the CRC
    assert accepted < MUTATIONS // 10
