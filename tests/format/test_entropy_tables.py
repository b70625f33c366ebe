"""Integer probability tables: independent of the float environment, pinned by a checksum, close
to the float distributions they replace; legacy (float-table) payloads still decode exactly."""

import zlib
from decimal import Decimal, getcontext
from pathlib import Path

import numpy as np
import pytest

from nnshare.format.entropy import decode_codes, describe, encode_codes, rans, tables

LEGACY = Path(__file__).parent.parent / "data" / "legacy_entropy_payloads.npz"
DISTS = tables.checksum_dists()
#: CRC-32 of tables.checksum()'s tables; changing it breaks every payload written since INT.
TABLES_CRC = 0xDBE25EDD


def _all_tables():
    return [tables.quantize(d.weights(), p) for d in DISTS for p in (12, 16, 22, 24)
            if d.width * 2 <= 1 << p]


def test_constants_are_what_they_claim():
    getcontext().prec = 50
    assert tables.LOG2E_Q64 == int((1 / Decimal(2).ln()) * 2**64)
    hi, lo = tables.exp2_tables()
    j = np.arange(256)
    assert np.all(np.abs(hi - 2**31 * 2.0 ** (-j / 256)) <= 1)
    assert np.all(np.abs(lo - 2**31 * 2.0 ** (-j / 65536)) <= 1)
    assert hi[0] == lo[0] == 2**31


def test_tables_are_pinned_by_a_checksum():
    assert tables.checksum() == TABLES_CRC


def test_tables_do_not_depend_on_the_float_environment(monkeypatch):
    ref = _all_tables()
    legacy_ref = [d.probs() for d in DISTS]
    for mode in ("raise", "ignore"):
        with np.errstate(all=mode):
            assert all(np.array_equal(a, b) for a, b in zip(_all_tables(), ref, strict=True))
    # a libm whose exp, pow and log differ in the last bit: integer tables stay the same ...
    for name in ("exp", "exp2", "power", "log", "log2", "sqrt"):
        orig = getattr(np, name)

        def bumped(*a, _f=orig, **k):
            return np.nextafter(_f(*a, **k), np.inf)

        monkeypatch.setattr(np, name, bumped)
    assert all(np.array_equal(a, b) for a, b in zip(_all_tables(), ref, strict=True))
    # ... while the float probabilities behind legacy payloads' tables move (this test can fail)
    moved = [d.probs() for d in DISTS]
    assert any(not np.array_equal(a, b) for a, b in zip(moved, legacy_ref, strict=True))


@pytest.mark.parametrize("d", DISTS, ids=lambda d: f"{d.kind}-{d.width}")
def test_integer_weights_follow_the_float_distribution(d):
    p = d.probs()
    w = d.weights()
    q = w / w.sum()
    assert w.max() == 2**36 and w.min() >= 2**16
    assert float((p * np.log2(p / q)).sum()) < 1e-6  # bits per symbol lost to the integers


def test_frequencies_sum_and_floor():
    for f in _all_tables():
        prec = int(f.sum()).bit_length() - 1
        assert f.sum() == 1 << prec and f.min() >= 1


def test_new_payloads_use_integer_tables_for_both_coders():
    pytest.importorskip("constriction")
    rng = np.random.default_rng(3)
    x = np.rint(rng.standard_normal(5000) * 7).astype(np.int32)
    for coder in ("rans", "range"):
        p = encode_codes(x, -128, 127, coder=coder)
        assert describe(p, x.size, -128, 127)["tables"] == "integer"
        assert p[0] & 64
        np.testing.assert_array_equal(decode_codes(p, x.size, -128, 127), x)


def test_wide_alphabets_take_a_higher_rans_precision():
    rng = np.random.default_rng(4)
    x = np.rint(rng.standard_normal(20000) * 30000).astype(np.int32).clip(-(2**19), 2**19 - 1)
    p = encode_codes(x, -(2**19), 2**19 - 1, models="iid")
    prec = int(describe(p, x.size, -(2**19), 2**19 - 1)["coder"][4:])
    assert 17 <= prec <= rans.MAX_PREC  # > 16: impossible before integer tables
    np.testing.assert_array_equal(decode_codes(p, x.size, -(2**19), 2**19 - 1), x)


def _legacy_cases():
    data = np.load(LEGACY, allow_pickle=False)
    for key in data.files:
        if key.endswith(".payload"):
            name, coder, _ = key.split(".")
            ctx = data[f"{name}.context"] if f"{name}.context" in data.files else None
            yield (f"{name}.{coder}", data[key].tobytes(), data[f"{name}.codes"],
                   *map(int, data[f"{name}.range"]), ctx)


@pytest.mark.parametrize("case", list(_legacy_cases()), ids=lambda c: c[0])
def test_legacy_float_table_payloads_decode_exactly(case):
    name, payload, codes, qmin, qmax, ctx = case
    d = describe(payload, codes.size, qmin, qmax)
    assert d["tables"] == "float64" and d["coder"].startswith(name.split(".")[1])
    np.testing.assert_array_equal(decode_codes(payload, codes.size, qmin, qmax, context=ctx),
                                  codes)
    # and a change of one coded word behind a valid CRC is caught or stays in range
    body = bytearray(payload[:-4])
    body[-9] ^= 0x40
    forged = bytes(body) + zlib.crc32(body).to_bytes(4, "little")
    try:
        y = decode_codes(forged, codes.size, qmin, qmax, context=ctx)
    except Exception as e:  # noqa: BLE001 - only FormatError is allowed
        assert type(e).__name__ == "FormatError", e
    else:
        assert y.min() >= qmin and y.max() <= qmax and not np.array_equal(y, codes)


def test_batched_context_tables_equal_the_per_context_definition():
    """context_freqs builds geometric / Gauss tables for all contexts at once (issue 19); each
    must equal quantize(Dist.weights()) of that context alone, and rans.tables' flat cum / slot
    tables the per-context cumulative sums."""
    from nnshare.format.entropy.dists import CONST, GAUSS, GEOMETRIC, TABLE, UNIFORM, Dist

    rng = np.random.default_rng(7)
    for _trial in range(60):
        ds = []
        for _ in range(int(rng.integers(1, 30))):
            kind = int(rng.choice([GAUSS, GEOMETRIC, GAUSS, CONST, UNIFORM, TABLE]))
            lo, w = int(rng.integers(-200, 50)), int(rng.integers(1, 200))
            if kind == CONST:
                ds.append(Dist(CONST, lo, 1))
            elif kind == TABLE:
                ds.append(Dist(TABLE, lo, w, levels=rng.integers(0, 64, w).astype(np.uint8)))
            elif kind == UNIFORM:
                ds.append(Dist(UNIFORM, lo, w))
            else:
                a = float(np.float32(rng.uniform(lo - 60, lo + w + 60)))
                ds.append(Dist(kind, lo, w, a=a, b=float(np.float32(10 ** rng.uniform(-3, 7)))))
        prec = int(rng.choice([12, 16, 22]))
        got = tables.context_freqs(ds, prec, True)
        for d, f in zip(ds, got, strict=True):
            if d.kind == CONST:
                assert f is None
            else:
                np.testing.assert_array_equal(f, tables.quantize(d.weights(), prec))
        freq, cum, off, slot = rans.tables(got, prec, slot=True)
        for c, f in enumerate(got):
            f = np.array([1 << prec]) if f is None else f
            np.testing.assert_array_equal(cum[off[c]:off[c + 1]], np.cumsum(f) - f)
            np.testing.assert_array_equal(slot[c << prec:(c + 1) << prec],
                                          np.repeat(np.arange(off[c], off[c + 1]), f))
