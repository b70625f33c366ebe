"""Fuzzing of format v2 in CI: every single-byte change and every truncation of a sample of every
stream kind, then random and CRC-recomputed mutations -> only FormatError, bounded memory.
The long run (10^6 mutations, speed, worst time and RSS against the budget) is bench/fuzz.py."""

import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from nnshare.format import FormatError
from nnshare.format.entropy import rans

sys.path.insert(0, str(Path(__file__).parent))
from fuzzing import corpus, mutate, output_bytes, single_byte_changes  # noqa: E402

SAMPLES = corpus()
IDS = [s.name for s in SAMPLES]
MUTATIONS = 20_000  # over every sample, the rANS-lanes one included
TRACED = 25  # every 25th input decodes under tracemalloc (the budget check; 25 and the 8 small
# samples are coprime, so each is traced 100 times), and every 10th input of the lanes sample


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
    """20,000 mutations: only FormatError; traced ones within the decoding budget, peak memory
    <= 3 x the returned arrays (codes, their float32 values) + 16 x stream bytes + 4 MiB."""
    rng = np.random.default_rng(2026)
    samples = corpus(lanes=True)
    lanes = samples[-1]
    assert lanes.name == "model-entropy-lanes" and rans.lanes(2**19) == 512
    lanes.decode(lanes.data)
    recomputed = accepted = 0
    for k in range(MUTATIONS):  # the 40 KB lanes sample every 50th input (its decode is slower)
        sample = lanes if k % 50 == 49 else samples[k % (len(samples) - 1)]
        data, crc = mutate(sample, rng)
        recomputed += crc
        traced = k % TRACED == 0 or k % 500 == 499
        if traced:
            tracemalloc.start()
        try:
            out = sample.decode(data)
            accepted += 1
        except FormatError:
            out = None
        finally:
            if traced:
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
        if traced:
            budget = 3 * output_bytes(out) + 16 * len(data) + (4 << 20)
            assert peak <= budget, (sample.name, peak, len(data))
    assert recomputed > MUTATIONS // 2  # most mutations reach the parser behind the CRC
    assert accepted < MUTATIONS // 10
