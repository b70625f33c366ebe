"""OCP minifloat element formats: casts bit-exact to torch and ml_dtypes, and to a brute-force
nearest-value reference; decoding tables; E8M0; block layouts."""

import ml_dtypes
import numpy as np
import pytest
import torch

from nnshare.format.errors import SpecError
from nnshare.format.floats import (
    FORMATS,
    cast,
    decode,
    e8m0_decode,
    e8m0_exponents,
    get_format,
    value_table,
)

TORCH = {"e4m3": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2}
MLD = {
    "e4m3": ml_dtypes.float8_e4m3fn,
    "e5m2": ml_dtypes.float8_e5m2,
    "e3m2": ml_dtypes.float6_e3m2fn,
    "e2m3": ml_dtypes.float6_e2m3fn,
    "e2m1": ml_dtypes.float4_e2m1fn,
}


def all_16bit(dtype) -> torch.Tensor:
    """Every fp16 or bf16 bit pattern, as a tensor of that dtype."""
    return torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(dtype)


@pytest.mark.parametrize("name", ["e4m3", "e5m2"])
def test_decode_equals_torch_on_all_codes(name):
    ref = torch.arange(256, dtype=torch.int32).to(torch.uint8).view(TORCH[name]).float().numpy()
    got = decode(np.arange(256), FORMATS[name])
    assert got.dtype == np.float32
    assert np.array_equal(got.view(np.uint32)[~np.isnan(ref)], ref.view(np.uint32)[~np.isnan(ref)])
    assert np.array_equal(np.isnan(got), np.isnan(ref))


@pytest.mark.parametrize("src", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ["e4m3", "e5m2"])
def test_cast_equals_torch_on_all_16bit_inputs(name, src):
    # torch's float8_e4m3fn cast saturates (no infinity); its float8_e5m2 cast overflows to inf
    x = all_16bit(src)
    ref = x.to(TORCH[name]).view(torch.uint8).numpy()
    got = cast(x.float().numpy(), FORMATS[name], saturate=name == "e4m3")
    assert got.dtype == np.uint8
    assert np.array_equal(got, ref)  # NaN bit patterns included


@pytest.mark.parametrize("saturate", [True, False])
@pytest.mark.parametrize("name", list(FORMATS))
def test_cast_equals_ml_dtypes(name, saturate):
    fmt = FORMATS[name]
    if fmt.specials == "none" and not saturate:
        with pytest.raises(SpecError, match="only saturating"):
            cast(np.zeros(2), fmt, saturate=False)
        return
    x = all_16bit(torch.float16).float().numpy()
    x = x[~np.isnan(x)]
    if saturate and fmt.specials != "none":  # ml_dtypes' casts of these overflow instead
        x = x[np.abs(x) <= fmt.max]
    assert np.array_equal(cast(x, fmt, saturate), x.astype(MLD[name]).view(np.uint8))


def brute_force(x: np.ndarray, fmt) -> np.ndarray:
    """Nearest finite value by exhaustive search; ties to the even code; sign from x."""
    table = value_table(fmt).astype(np.float64)
    pos = np.flatnonzero(np.isfinite(table) & ~np.signbit(table))
    d = np.abs(np.abs(x)[:, None] - table[pos][None, :])
    best = d.min(axis=1, keepdims=True)
    tie = d == best
    even = tie & (pos[None, :] % 2 == 0)
    pick = np.where(even.any(axis=1), even.argmax(axis=1), tie.argmax(axis=1))
    code = pos[pick] | (np.signbit(x).astype(np.int64) << (fmt.bits - 1))
    return code.astype(np.uint8)


@pytest.mark.parametrize("name", list(FORMATS))
def test_saturating_cast_equals_brute_force(name):
    fmt = FORMATS[name]
    rng = np.random.default_rng(1)
    table = value_table(fmt).astype(np.float64)
    fin = table[np.isfinite(table)]
    mids = (np.sort(fin)[1:] + np.sort(fin)[:-1]) / 2  # exact ties
    x = np.concatenate([fin, mids, rng.normal(0, fmt.max / 3, 20000), rng.uniform(-2, 2, 5000) * fmt.max,
                        [np.inf, -np.inf, 1e30, -1e30, 0.0, -0.0]])
    x = x.astype(np.float32).astype(np.float64)
    got = cast(x, fmt, saturate=True)
    ref = brute_force(np.clip(x, -4 * fmt.max, 4 * fmt.max), fmt)  # no absorption in |x - v|
    assert np.array_equal(got, ref)


def test_format_constants():
    assert [FORMATS[n].max for n in FORMATS] == [448.0, 57344.0, 28.0, 7.5, 6.0]
    assert [FORMATS[n].bits for n in FORMATS] == [8, 8, 6, 6, 4]
    assert sorted(set(np.abs(value_table(FORMATS["e2m1"])))) == [0, 0.5, 1, 1.5, 2, 3, 4, 6]
    assert np.isnan(decode(0x7F, FORMATS["e4m3"])) and decode(0x7E, FORMATS["e4m3"]) == 448
    assert decode(0x7C, FORMATS["e5m2"]) == np.inf
    assert decode(1, FORMATS["e4m3"]) == 2.0**-9 and decode(1, FORMATS["e5m2"]) == 2.0**-16
    assert np.all(np.isfinite(value_table(FORMATS["e3m2"])))
    with pytest.raises(SpecError, match="unknown float format"):
        get_format("e6m1")


def test_non_saturating_overflow_and_nan():
    e4, e5 = FORMATS["e4m3"], FORMATS["e5m2"]
    x = np.array([464.0, 464.01, 1e6, np.inf, -np.inf, np.nan])
    assert cast(x, e4, saturate=False).tolist() == [0x7E, 0x7F, 0x7F, 0x7F, 0xFF, 0x7F]
    assert cast(x, e4, saturate=True).tolist() == [0x7E, 0x7E, 0x7E, 0x7E, 0xFE, 0x7F]
    x = np.array([61439.0, 61440.0, np.inf, -1e9])
    assert cast(x, e5, saturate=False).tolist() == [0x7B, 0x7C, 0x7C, 0xFC]
    assert cast(x, e5, saturate=True).tolist() == [0x7B, 0x7B, 0x7B, 0xFB]
    with pytest.raises(SpecError, match="cannot represent NaN"):
        cast(np.array([1.0, np.nan]), FORMATS["e2m1"])


def test_e8m0_against_torch_and_spec():
    ref = torch.arange(255, dtype=torch.int32).to(torch.uint8).view(torch.float8_e8m0fnu).float().numpy()
    assert np.array_equal(e8m0_decode(np.arange(255)).astype(np.float32), ref)
    # shared exponent = floor(log2 amax) - emax_elem (E2M1: emax 2)
    amax = np.array([6.0, 8.0, 7.99, 1.0, 0.0, 2.0**-140, 2.0**200])
    assert e8m0_exponents(amax, 2).tolist() == [0, 1, 0, -2, -127, -127, 127]
    with pytest.raises(SpecError, match="NaN or Inf"):
        e8m0_exponents(np.array([np.nan]), 2)
