"""Entropy coder: bit-exact round trips for every model, model choice, corruption detection."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnshare.format.entropy import (
    MODELS,
    cost_bits,
    decode_codes,
    describe,
    encode_codes,
    model_costs,
    rans,
)
from nnshare.format.entropy import contexts as cx
from nnshare.format.errors import FormatError, SpecError


def trellis_codes(levels: np.ndarray, states: int = 4) -> np.ndarray:
    """Reconstruction indices r of a level sequence k along the stripe-wise trellis."""
    trans, quant = cx.TRELLISES[states]
    n = levels.size
    n_s, t = cx.stripes(n)
    k = np.zeros(n_s * t, np.int64)
    k[:n] = levels
    k = k.reshape(n_s, t)
    r = np.empty_like(k)
    state = np.zeros(n_s, np.int8)
    for step in range(t):
        r[:, step] = cx.k_to_r(k[:, step], quant[state])
        state = trans[state, k[:, step] & 1]
    return r.reshape(-1)[:n]


@st.composite
def code_arrays(draw):
    bits = draw(st.integers(1, 12))
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    n = draw(st.integers(0, 700))
    kind = draw(st.sampled_from(["gauss", "uniform", "sparse", "const"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "gauss":
        x = np.rint(rng.standard_normal(n) * draw(st.floats(0.1, 2.0 ** bits)))
    elif kind == "uniform":
        x = rng.integers(qmin, qmax + 1, n)
    elif kind == "sparse":
        x = rng.integers(qmin, qmax + 1, n) * (rng.random(n) < 0.05)
    else:
        x = np.full(n, draw(st.integers(qmin, qmax)))
    return np.clip(x, qmin, qmax).astype(np.int32), qmin, qmax


PLAIN = [m for m in MODELS if "tcq" not in m and "temporal" not in m]


@pytest.mark.parametrize("model", PLAIN)
@settings(max_examples=25, deadline=None)
@given(data=code_arrays(), row_len=st.sampled_from([None, 2, 7, 35]))
def test_round_trip_every_model(model, data, row_len):
    x, qmin, qmax = data
    try:
        p = encode_codes(x, qmin, qmax, models=model, row_len=row_len)
    except SpecError:
        assert "rowcol" in model  # row/column contexts need row_len dividing n into >= 2 rows
        return
    y = decode_codes(p, x.size, qmin, qmax)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("model", [m for m in MODELS if "tcq" in m and "temporal" not in m])
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 600), sigma=st.floats(0.2, 30))
def test_tcq_models_round_trip(model, seed, n, sigma):
    rng = np.random.default_rng(seed)
    k = np.clip(np.rint(rng.standard_normal(n) * sigma), -60, 60).astype(np.int64)
    r = trellis_codes(k, 8 if "tcq8" in model else 4).astype(np.int32)
    row_len = 5 if n % 5 == 0 and n >= 10 else None
    try:
        p = encode_codes(r, -128, 127, models=model, row_len=row_len)
    except SpecError:
        assert "rowcol" in model and row_len is None
        return
    np.testing.assert_array_equal(decode_codes(p, n, -128, 127), r)
    # the container passes unsigned offsets (code - qmin): TCQ still applies, with zero = 128
    p = encode_codes(r + 128, 0, 255, models=model, row_len=row_len)
    np.testing.assert_array_equal(decode_codes(p, n, 0, 255), r + 128)


@pytest.mark.parametrize("model", [m for m in MODELS if "temporal" in m])
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 400))
def test_temporal_models_round_trip(model, seed, n):
    rng = np.random.default_rng(seed)
    prev = np.rint(rng.standard_normal(n) * 3).astype(np.int32)
    k = np.rint(prev * 0.5 + rng.standard_normal(n)).astype(np.int64)  # correlated update
    x = (trellis_codes(k, 8 if "tcq8" in model else 4) if "tcq" in model else k).astype(np.int32)
    row_len = 4 if n % 4 == 0 and n >= 8 else None
    try:
        p = encode_codes(x, -64, 63, models=model, row_len=row_len, context=prev)
    except SpecError:
        assert "rowcol" in model and row_len is None
        return
    np.testing.assert_array_equal(decode_codes(p, n, -64, 63, context=prev), x)
    with pytest.raises(FormatError, match="temporal"):
        decode_codes(p, n, -64, 63)


def test_temporal_context_pays_off_on_correlated_updates():
    rng = np.random.default_rng(7)
    prev = np.rint(rng.standard_normal(20000) * 4).astype(np.int32)
    x = np.rint(prev * 0.8 + rng.standard_normal(20000)).astype(np.int32)
    costs = model_costs(x, -64, 63, context=prev)
    assert costs["temporal"] < 0.8 * costs["iid"]
    p = encode_codes(x, -64, 63, context=prev)
    assert "temporal" in describe(p, x.size, -64, 63)["model"]
    with pytest.raises(FormatError, match="temporal context must be"):
        decode_codes(p, x.size, -64, 63, context=prev[:-1])


def test_tcq_levels_coded_even_for_wide_code_ranges():
    rng = np.random.default_rng(8)
    k = np.rint(rng.standard_normal(6000) * 900).astype(np.int64)  # r spans ~ +-7000
    r = trellis_codes(k).astype(np.int32)
    costs = model_costs(r, -(2**14), 2**14 - 1)
    assert costs["tcq"] < costs["iid"] - 0.8 * r.size  # coding r itself wastes ~1 bit
    p = encode_codes(r, -(2**14), 2**14 - 1)
    assert describe(p, r.size, -(2**14), 2**14 - 1)["model"].startswith("tcq")
    np.testing.assert_array_equal(decode_codes(p, r.size, -(2**14), 2**14 - 1), r)


@settings(max_examples=40, deadline=None)
@given(data=code_arrays())
def test_payload_never_much_larger_than_raw_packing(data):
    x, qmin, qmax = data
    raw_bytes = (x.size * (qmax - qmin).bit_length() + 7) // 8
    assert len(encode_codes(x, qmin, qmax)) <= raw_bytes + 24


def test_tcq_model_refused_for_non_trellis_codes():
    x = np.array([1, 1, 1, 1], np.int32)  # r=1 in state 0 (quantizer Q0 needs even r)
    assert cx.tcq_levels(x) is None
    with pytest.raises(SpecError, match="applies"):
        encode_codes(x, -8, 7, models="tcq")


def test_auto_never_worse_than_each_model_and_close_to_estimate():
    rng = np.random.default_rng(1)
    x = np.rint(rng.laplace(size=20000) * 6).astype(np.int32).clip(-128, 127)
    costs = model_costs(x, -128, 127, row_len=200)
    p = encode_codes(x, -128, 127, row_len=200)
    assert describe(p, x.size, -128, 127)["model"] == min(costs, key=costs.get)
    assert abs(8 * len(p) - cost_bits(x, -128, 127, row_len=200)) < 96
    for m in costs:
        assert 8 * len(p) <= 8 * len(encode_codes(x, -128, 127, models=m, row_len=200)) + 96


def test_gaussian_codes_near_entropy_and_below_raw():
    rng = np.random.default_rng(2)
    x = np.rint(rng.standard_normal(600_000) * 10).astype(np.int32)
    _, c = np.unique(x, return_counts=True)
    h = -(c * np.log2(c / x.size)).sum()
    p = encode_codes(x, -128, 127)
    lanes = rans.lanes(x.size)  # 585 interleaved rANS states of 64 bits each
    assert lanes == 585 and describe(p, x.size, -128, 127)["lanes"] == lanes
    assert rans.lanes(2**19 - 1) == 1 and rans.lanes(2**19) == 512 and rans.lanes(10**8) == 1024
    assert 8 * len(p) < h * 1.005 + 200 + 64 * (lanes - 1)
    assert 8 * len(p) < 8 * x.size  # raw 8-bit packing
    single = encode_codes(x, -128, 127, lanes=False)  # the single-state layout (format v1)
    assert describe(single, x.size, -128, 127)["lanes"] == 1
    assert 0 < len(p) - len(single) <= 8 * (lanes - 1)  # at most the extra states
    np.testing.assert_array_equal(decode_codes(single, x.size, -128, 127), x)


def test_rowcol_context_wins_on_structured_columns():
    rng = np.random.default_rng(3)
    col_scale = np.where(rng.random(64) < 0.3, 0.05, 8.0)  # dead input columns, as in digits MLP
    x = np.rint(rng.standard_normal((256, 64)) * col_scale).astype(np.int32).ravel()
    costs = model_costs(x, -128, 127, row_len=64)
    live = x.reshape(256, 64)[:, col_scale > 1]
    _, c = np.unique(live, return_counts=True)
    oracle = -(c * np.log2(c / c.sum())).sum()  # dead columns free, live ones at their entropy
    assert costs["rowcol"] < 1.04 * oracle < 0.9 * costs["iid"]
    p = encode_codes(x, -128, 127, row_len=64)
    assert describe(p, x.size, -128, 127)["model"].startswith("rowcol")


def test_neighbour_context_wins_on_runs():
    rng = np.random.default_rng(4)
    runs = np.repeat(rng.random(400) < 0.5, 50)  # long runs of zeros / non-zeros
    x = (runs * np.rint(rng.standard_normal(runs.size) * 20)).astype(np.int32)
    costs = model_costs(x, -128, 127)
    assert costs["neighbour"] < 0.9 * costs["iid"]


def test_bad_input_is_spec_error():
    with pytest.raises(SpecError, match="outside"):
        encode_codes(np.array([5], np.int32), -4, 3)
    with pytest.raises(SpecError, match="1-D"):
        encode_codes(np.zeros((2, 2), np.int32), -4, 3)
    with pytest.raises(SpecError, match="integers"):
        encode_codes(np.zeros(3, np.float32), -4, 3)
    with pytest.raises(SpecError, match="unknown entropy model"):
        encode_codes(np.zeros(3, np.int32), -4, 3, models="zip")


@pytest.fixture(scope="module")
def sample():
    rng = np.random.default_rng(5)
    x = np.rint(rng.standard_normal(600) * 4).astype(np.int32)
    return x, {m: encode_codes(x, -32, 31, models=m, row_len=30) for m in PLAIN}


def test_every_byte_flip_and_truncation_is_format_error(sample):
    x, payloads = sample
    for p in payloads.values():
        for i in range(len(p)):
            for flip in (0x01, 0x80):
                bad = bytearray(p)
                bad[i] ^= flip
                with pytest.raises(FormatError):
                    decode_codes(bytes(bad), x.size, -32, 31)
        for cut in range(len(p)):
            with pytest.raises(FormatError):
                decode_codes(p[:cut], x.size, -32, 31)


def test_random_inputs_only_raise_format_error():
    rng = np.random.default_rng(6)
    for _ in range(2000):
        junk = rng.integers(0, 256, rng.integers(0, 64), dtype=np.uint8).tobytes()
        n = int(rng.integers(0, 10**6))
        try:
            y = decode_codes(junk, n, -8, 7)
        except FormatError:
            continue
        assert y.size == n  # a junk payload passing the CRC must still give n codes in range


def test_mutations_behind_a_valid_crc_only_raise_format_error(sample):
    """The CRC catches random damage; a forged payload with a matching CRC must still only give
    FormatError or n codes in range, without a hang or a large allocation."""
    import zlib

    x, payloads = sample
    rng = np.random.default_rng(9)
    for p in payloads.values():
        body = p[:-4]
        for _ in range(150):
            bad = bytearray(body)
            for _ in range(int(rng.integers(1, 4))):
                i = int(rng.integers(0, min(len(bad), 64)))  # header and distribution fields
                bad[i] = int(rng.integers(0, 256))
            forged = bytes(bad) + zlib.crc32(bad).to_bytes(4, "little")
            try:
                y = decode_codes(forged, x.size, -32, 31)
            except FormatError:
                continue
            assert y.shape == (x.size,) and y.min() >= -32 and y.max() <= 31


def test_forged_huge_alphabet_is_rejected_before_allocation():
    import zlib

    # tcq+neighbour (6 contexts), each a Gaussian over 2**19 + 1 symbols, for 10 codes
    dist = bytes([3, 0, 0x80, 0x80, 0x20]) + np.float32(0).tobytes() + np.float32(1e5).tobytes()
    body = bytes([3, 0, 0, 0, 0]) + 6 * dist
    forged = body + zlib.crc32(body).to_bytes(4, "little")
    with pytest.raises(FormatError, match="tables"):
        decode_codes(forged, 10, 0, 2**20)


def test_wrong_geometry_is_format_error(sample):
    x, payloads = sample
    with pytest.raises(FormatError):
        decode_codes(payloads["rowcol"], x.size - 1, -32, 31)  # row length no longer divides n
    with pytest.raises(FormatError):
        decode_codes(payloads["iid"], x.size, -2, 1)  # distribution range outside [qmin, qmax]
    with pytest.raises(FormatError):
        decode_codes(payloads["iid"], -1, -32, 31)


# Golden payloads (format v1 of the entropy record): these bytes must decode to the same codes
# in every later version. Inputs are closed-form so they do not depend on numpy's RNG.
GOLDEN = {
    "iid": (
        "00010f0e4800070861010430c5306580504430194a6c785ab509a492b51f2c3267c2c9f059a0645448d7"
        "5f18a0d43bc3d584c305d0085278056523d2147b483cc79ff5919a94b134598f6b861f12c7215f29560a"
        "af1e66de850eda8429703f790b7c90b4f565c7d506bdb08737e475b69442eefd25f547cc2c27880d"
    ),
    "neighbour": (
        "0100010301090b18230030f20108a19301090a34610110114b000240010f0a3c00002002810c63c0040c"
        "04353deae4f0adff0994207eb5a95fda7f643b6b136ff6ed6e9a3d31c0419e3dd3869b7af6c4819e7121"
        "7ab887f078055413838d8b3ab95245a52d20a01b4688ec51316caf76a3d1680c3a3e8daf17ab2d64b56b"
        "226eb1a12067"
    ),
    "rowcol": (
        "041804040ac5b01245e1ac7f4f0107070c524304924301090828010608a044180107071c70471c71c101"
        "0908286281184182280107072401432400490107090c31c10031c700300109081c70000010031c010908"
        "1c31c30430031c0107081400450c00c32401070918028604a086186001090918a28004a28000a001090a"
        "0850000471c02c01c00107080490000450002401090a2431402411400002400107091c00070010000010"
        "030f0e4992243fd389b94087f8321f050ffbd3e5d1a3f456e89082a7378bf71e752157951ed8f06b5dbe"
        "756bff7fcac7961e52f9bf1190963799b386fcb6655ef471f7411075aae94ef7ae57454afb97a0f60de3"
        "146607897c41b9be7dc26db169360e"
    ),
    "temporal": (
        "08020109093013080460c418c0030f0db5b4b4be0de04d4003090a8baff8bec15a5a40030f0d0f0f8fbe"
        "032e544001070a0cd1c5141145000340615af44a921c8c37755221898967d8c3ec5f275791b74f2ce0af"
        "30ec2f97001a05da674ab4ef30e7bad2a43ebc2a81e4ff28d2b3eb594f584d79363f51bd3dab629decd7"
        "e4975eb1f18804f54fd690ac3b65b9ca19af253589d05a85d4f5e46e62da5d44109acce301e53903"
    ),
    "tcq": (
        "0200030f0d121801bfda2a3740030f0e4d2150be1d8241408137272361ed8a2f8d79503c31641fa5ad36"
        "6763f4209e6b47a645b61f79a23097e682db4cf13253b383f0c09bcc36470298cd629c3bdf06d3134927"
        "740a7d0274c30b41e20ff20d266272ef1de8966aa209a41532491ba3280d1be7710d634854ae53ef3fe9"
        "971a27af71a1788b95c3"
    ),
    "tcq+neighbour": (
        "030000010301090a18120028e2810c818001090a38614310118a000280010f0a38000028020108538001"
        "090b1440003cf1c104b14f01090a3870c110210e000280010f0a3c00001c02c11063c0f070463a1e7417"
        "493b88e27eec17a73bfd6d4bef45929a2bee8c1eb0603d1ed8c86744d4066a2c8df7049c92e59b069b59"
        "1de12d363b0101adf0105b261ead19e294e4b7e4790484a0610f8eb9465292aaf753efbe950fce"
    ),
    "tcq8": (
        "1200030f0d1452f2beba433440030f0eccad4ebe57224640c5099c213cf7476e0fb4c2fc650de6a2bb0a"
        "ac7c1e620c3900a32a7127c998d4feb66c27223a5d65ace6bfbd71313c095857f760c4520e54caf7ce68"
        "8e4371df9d59b845eef6c195af9acd205511d318a5ad51d82e7bafdd958fcbf1e3a12b8ea6710490e761"
        "92cd818d0dd71cd63f7d"
    ),
}


def _golden_input(model: str):
    i = np.arange(240)
    base = ((i * 7919) % 23 - 11) // 3 + ((i // 40) % 3) * ((i * 31) % 5 - 2)
    prev = (i * 13) % 7 - 3
    x = trellis_codes(base, 8 if "tcq8" in model else 4) if "tcq" in model else base
    return x.astype(np.int32), (prev if "temporal" in model else None)


@pytest.mark.parametrize("model", list(GOLDEN))
def test_golden_payloads_decode(model):
    x, ctx = _golden_input(model)
    payload = bytes.fromhex(GOLDEN[model])
    assert describe(payload, x.size, -64, 63)["model"] == model
    np.testing.assert_array_equal(decode_codes(payload, x.size, -64, 63, context=ctx), x)


# ----------------------------------------------------------------------------- rANS coder
def _model_input(model: str, n: int = 3000, seed: int = 11):
    rng = np.random.default_rng(seed)
    prev = np.rint(rng.standard_normal(n) * 3).astype(np.int32)
    k = np.clip(np.rint(prev * 0.5 + rng.standard_normal(n) * 4), -40, 40).astype(np.int64)
    x = trellis_codes(k, 8 if "tcq8" in model else 4) if "tcq" in model else k
    return x.astype(np.int32), (prev if "temporal" in model else None)


@pytest.mark.parametrize("coder", ["range", "rans"])
@pytest.mark.parametrize("model", list(MODELS))
def test_both_coders_round_trip_every_model(model, coder):
    x, ctx = _model_input(model)
    p = encode_codes(x, -128, 127, models=model, row_len=50, context=ctx, coder=coder)
    d = describe(p, x.size, -128, 127)
    assert d["model"] == model and d["coder"].startswith(coder)
    np.testing.assert_array_equal(decode_codes(p, x.size, -128, 127, context=ctx), x)


def test_rans_costs_at_most_a_little_more_than_the_range_coder():
    rng = np.random.default_rng(12)
    x = np.rint(rng.standard_normal(40000) * 20).astype(np.int32)
    for model in ("iid", "rowcol+neighbour"):
        r = encode_codes(x, -512, 511, models=model, row_len=200, coder="range")
        a = encode_codes(x, -512, 511, models=model, row_len=200, coder="rans")
        assert len(a) <= len(r) * 1.002 + 16


def test_rans_frequencies_are_valid():
    from nnshare.format.entropy import rans, tables

    rng = np.random.default_rng(13)
    for width in (2, 7, 300, 2048, 300000):
        w = (rng.random(width) ** 8 * 2**36).astype(np.int64) + 2**16
        p = w / w.sum()
        for prec in (12, 14, 16, 20, 22, 24):
            if prec <= 22 and not rans.fits(1, width, prec):
                continue
            for f in (tables.quantize(w, prec), tables.quantize_float(p, prec)):
                assert f.sum() == 1 << prec and f.min() >= 1


def test_rans_payload_corruption_is_format_error():
    import zlib

    rng = np.random.default_rng(14)
    x = np.rint(rng.standard_normal(2000) * 6).astype(np.int32)
    p = encode_codes(x, -64, 63, models="neighbour", coder="rans")
    assert describe(p, x.size, -64, 63)["coder"].startswith("rans")
    for i in range(0, len(p), 7):  # damage anywhere: the CRC
        bad = bytearray(p)
        bad[i] ^= 0x10
        with pytest.raises(FormatError):
            decode_codes(bytes(bad), x.size, -64, 63)
    body = bytearray(p[:-4])

    def forged(b: bytearray) -> bytes:
        return bytes(b) + zlib.crc32(b).to_bytes(4, "little")

    for prec in (0, 9, 23, 255):  # precision byte (after the model byte) out of range
        b = bytearray(body)
        b[1] = prec
        with pytest.raises(FormatError, match="precision"):
            decode_codes(forged(b), x.size, -64, 63)
    for cut in (4, 8):  # coded words removed behind a valid CRC
        with pytest.raises(FormatError, match="rANS"):
            decode_codes(forged(body[:-cut]), x.size, -64, 63)
    b = bytearray(body) + bytes(4)  # a word left over
    with pytest.raises(FormatError, match="rANS"):
        decode_codes(forged(b), x.size, -64, 63)
    for _ in range(100):  # random word damage behind a valid CRC: error or n codes in range
        b = bytearray(body)
        i = int(rng.integers(len(b) - 40, len(b)))
        b[i] = int(rng.integers(0, 256))
        try:
            y = decode_codes(forged(b), x.size, -64, 63)
        except FormatError:
            continue
        assert y.shape == x.shape and y.min() >= -64 and y.max() <= 63


def test_unknown_coder_is_spec_error():
    with pytest.raises(SpecError, match="coder"):
        encode_codes(np.zeros(3, np.int32), -4, 3, coder="zip")
