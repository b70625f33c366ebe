"""The numba-compiled and the pure numpy/Python paths of the entropy coder agree bit for bit.

``make test`` installs the ``fast`` extra, so these run (never skip) in CI; on a machine without
numba they fail, saying so."""

import importlib

import numpy as np
import pytest

from nnshare.format.entropy import MODELS, decode_codes, describe, encode_codes, rans
from nnshare.quant.tcq import tcq_codes


def _model_input(model: str, n: int = 1500, seed: int = 11):
    """Codes (int32 in [-128, 127]) suiting ``model``, and its temporal context if it has one."""
    rng = np.random.default_rng(seed)
    prev = np.rint(rng.standard_normal(n) * 3).astype(np.int32)
    u = prev * 0.5 + rng.standard_normal(n) * 4 * np.repeat(rng.random(n // 50 + 1), 50)[:n]
    x = tcq_codes(u, 0.0, 8 if "tcq8" in model else 4) if "tcq" in model else np.rint(u)
    return np.clip(x, -128, 127).astype(np.int32), (prev if "temporal" in model else None)


def test_numba_is_installed_and_compiles_every_loop(compiled_loops):
    assert rans.available(), "numba missing: install the 'fast' extra (make test does)"
    for mod, attr in compiled_loops:
        assert getattr(importlib.import_module(mod), attr) is not None, (mod, attr)


def test_numpy_path_fixture_really_switches(compiled_loops, numpy_path):
    for mod, attr in compiled_loops:
        assert getattr(importlib.import_module(mod), attr) is None


@pytest.fixture(scope="module")
def compiled_payloads():
    """Payloads of every model written by the compiled path (n = 1500 codes each)."""
    out = {}
    for m in MODELS:
        x, ctx = _model_input(m, n=1500)
        out[m] = (x, ctx, encode_codes(x, -128, 127, models=m, row_len=50, context=ctx))
    return out


@pytest.mark.parametrize("model", list(MODELS))
def test_compiled_and_numpy_rans_agree_bit_for_bit(model, compiled_payloads, numpy_path):
    x, ctx, fast = compiled_payloads[model]
    assert describe(fast, x.size, -128, 127)["coder"].startswith("rans")
    slow = encode_codes(x, -128, 127, models=model, row_len=50, context=ctx)
    assert slow == fast  # model choice, tables and coded words identical
    np.testing.assert_array_equal(decode_codes(fast, x.size, -128, 127, context=ctx), x)


def test_compiled_decoder_reads_numpy_written_payloads(compiled_payloads):
    for x, ctx, p in compiled_payloads.values():
        np.testing.assert_array_equal(decode_codes(p, x.size, -128, 127, context=ctx), x)


def _slot_payloads():
    """Payloads big enough for the decoder's slot table: a wide i.i.d. alphabet (uint16 slots)
    and TCQ8 levels (uint8 slots), each with its codes and qmin, qmax."""
    rng = np.random.default_rng(5)
    wide = rng.integers(-150, 151, size=30_000).astype(np.int32)  # 301 symbols, flat: prec 12
    t = tcq_codes(rng.laplace(size=40_000) * 6, 0.0, 8)
    t = np.clip(t, -128, 127).astype(np.int32)
    return {"iid": (wide, -200, 200, encode_codes(wide, -200, 200, models="iid")),
            "tcq8": (t, -128, 127, encode_codes(t, -128, 127, models="tcq8"))}


def test_compiled_slot_table_is_compact_and_decodes_as_numpy(monkeypatch):
    seen = []
    real = rans.local_slots

    def spy(slot, off, prec):
        out = real(slot, off, prec)
        seen.append(out.dtype)
        ctx = np.arange(slot.size) >> prec  # symbol within its context, every slot
        np.testing.assert_array_equal(out.astype(np.int64), slot - off[ctx])
        return out

    monkeypatch.setattr(rans, "local_slots", spy)
    pays = _slot_payloads()
    fast = {k: decode_codes(p, x.size, lo, hi) for k, (x, lo, hi, p) in pays.items()}
    assert seen == [np.uint16, np.uint8]  # both payloads built a slot table; widths > / <= 256
    monkeypatch.setattr(rans, "_decode_fast", None)
    for k, (x, lo, hi, p) in pays.items():
        np.testing.assert_array_equal(fast[k], x)
        np.testing.assert_array_equal(decode_codes(p, x.size, lo, hi), x)


@pytest.mark.parametrize("model", ["rowcol+neighbour", "tcq8+rowcol+neighbour", "tcq8-slots"])
def test_compiled_and_numpy_rans_agree_on_damaged_words(compiled_payloads, monkeypatch, model):
    """Behind a valid CRC, both decoders give the same codes or the same error."""
    import zlib

    from nnshare.format.errors import FormatError

    if model == "tcq8-slots":  # the compiled decoder through its slot table
        x, _lo, _hi, p = _slot_payloads()["tcq8"]
    else:
        x, ctx, p = compiled_payloads[model]
    rng = np.random.default_rng(0)
    cases = []
    for _ in range(40):
        b = bytearray(p[:-4])
        b[int(rng.integers(len(b) - 60, len(b)))] ^= 1 << int(rng.integers(0, 8))
        cases.append(bytes(b) + zlib.crc32(b).to_bytes(4, "little"))

    def run():
        out = []
        for c in cases:
            try:
                out.append(decode_codes(c, x.size, -128, 127).tobytes())
            except FormatError as e:
                out.append(str(e))
        return out

    fast = run()
    monkeypatch.setattr(rans, "_decode_fast", None)
    assert run() == fast


def test_compiled_encoder_grows_its_word_buffer_as_python_writes():
    """Uniform 8-bit symbols (7 bits under a parity context) take a word every ~4.6 codes, over
    3x the compiled loop's first buffer (n / 16 + 1024 words): it doubles twice; the same words
    as the Python loop."""
    from nnshare.format.entropy import rans_py, tables

    rng = np.random.default_rng(5)
    n, prec = 200_000, 12
    sym = rng.integers(0, 256, n).astype(np.int32)
    ctx = (sym % 2).astype(np.int16)
    freqs = [tables.quantize(np.bincount(sym[ctx == c], minlength=256).astype(float) + 1, prec)
             for c in range(2)]
    freq, cum, off, _ = rans.tables(freqs, prec)
    const, lo = np.zeros(2, np.bool_), np.zeros(2, np.int64)
    words = rans.encode(sym, ctx, const, lo, freq, cum, off, prec, t=16, n_lanes=64)
    assert words.dtype == np.uint32 and words.size > 2 * (n // 16 + 1024)
    ref = rans_py.encode_loop(sym.astype(np.int64), ctx, const, lo, freq, cum, off, prec, 16, 64)
    np.testing.assert_array_equal(words, ref.astype(np.uint32))
