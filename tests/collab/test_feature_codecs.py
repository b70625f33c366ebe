import numpy as np
import pytest

from nnshare.collab.codecs import codec
from nnshare.collab.feature_codecs import (
    SGQ,
    Lossless,
    Uniform,
    UpdateCodec,
    expected_bytes,
    rebuild_features,
)
from nnshare.format.container import header_bytes, read_stream, write_stream
from nnshare.format.errors import FormatError, SpecError
from nnshare.format.spec import FloatTensor
from nnshare.share.inspect import inspect


def feats(shape=(8, 8, 4, 4), seed=0):
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.1, 4, size=(1, shape[1]) + (1,) * (len(shape) - 2))
    return (np.maximum(rng.normal(size=shape), 0) * scale).astype(np.float32)


def test_lossless_exact_and_sized():
    x = feats()
    data = Lossless().encode(x)
    assert np.array_equal(Lossless().decode(data, x.shape), x)
    # header + float record (kind, dtype code, 32 bits per element, CRC)
    assert len(data) == header_bytes([("x", x.shape)], "self") + 2 + 4 * x.size + 4
    assert len(data) == expected_bytes(Lossless(), x.shape)


@pytest.mark.parametrize("bits,groups,stripe", [(4, 4, 2), (2, 8, 1), (3, 2, 4)])
def test_sgq_roundtrip_error_and_exact_size(bits, groups, stripe):
    x = feats()
    c = SGQ(bits, groups, stripe, entropy="none")
    data = c.encode(x)
    y = c.decode(data, x.shape)
    assert len(data) == expected_bytes(c, x.shape)
    ins = inspect(data)
    assert ins.kind == "features" and ins.total_bits == 8 * len(data)
    rows = {r.name: r for r in ins.rows}
    blocks = groups * (x.shape[2] // stripe)
    assert rows["x"].payload_bits == bits * x.size
    assert rows["x"].side_bits == blocks * (32 + bits)  # fp32 scale + b-bit zero point per block
    assert rows["x.order"].payload_bits == 8 * x.shape[1]
    # error per element within half a step of its (group, stripe) block
    order = c.order(x)
    b_in, b_out = c.blocks(x, order), c.blocks(y, order)
    step = (np.maximum(b_in.reshape(blocks, -1).max(1), 0) - np.minimum(b_in.reshape(blocks, -1).min(1), 0))
    step = step / (2**bits - 1)
    err = np.abs(b_in - b_out).reshape(blocks, -1).max(1)
    assert np.all(err <= step / 2 * (1 + 1e-5) + 1e-7)
    assert np.array_equal(rebuild_features(data), y)


def test_sgq_groups_similar_channels_and_beats_uniform_at_equal_bits():
    x = feats((16, 16, 4, 4), seed=3)
    sgq, uni = SGQ(3, 4, 2, entropy="none"), Uniform(3, entropy="none")
    e_sgq = np.linalg.norm(sgq.roundtrip(x)[0] - x)
    e_uni = np.linalg.norm(uni.roundtrip(x)[0] - x)
    assert e_sgq < 0.7 * e_uni
    n_sgq, n_uni = len(sgq.encode(x)), len(uni.encode(x))
    assert n_sgq - n_uni < 0.05 * n_uni  # side info: 8 (scale, zero point) pairs + the order


def test_sgq_lossless_on_grid_values():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 16, size=(4, 8, 4, 4)).astype(np.float32)
    x[0, :, :, 0], x[0, :, :, 1] = 0, 15  # every block spans exactly 0..15: step 1
    for c in (SGQ(4, 4, 2), Uniform(4)):
        assert np.array_equal(c.roundtrip(x)[0], x)


def test_gradient_deviation_bound_raises_bits():
    g = np.random.default_rng(2).standard_normal((8, 8, 4, 4)).astype(np.float32)
    c = SGQ(2, 4, 2, max_deviation=0.05, entropy="none")
    y, _ = c.roundtrip(g)
    assert np.linalg.norm(y - g) <= 0.05 * np.linalg.norm(g)
    assert inspect(c.encode(g)).rows[0].bits_per_element > 2
    tight = SGQ(2, 4, 2, max_deviation=1e-9, max_bits=6, entropy="none")
    assert inspect(tight.encode(g)).rows[0].bits_per_element == 6


@pytest.mark.parametrize("c", [Uniform(2, symmetric=True, entropy="none"),
                               SGQ(2, 4, 2, symmetric=True, entropy="none"),
                               SGQ(3, 2, 1, symmetric=True, entropy="none")])
def test_symmetric_grid_sizes_and_levels(c):
    g = np.random.default_rng(5).standard_normal((8, 8, 4, 4)).astype(np.float32)
    data = c.encode(g)
    y = c.decode(data, g.shape)
    assert len(data) == expected_bytes(c, g.shape)
    rows = {r.name: r for r in inspect(data).rows}
    blocks = 1 if isinstance(c, Uniform) else c.groups * (g.shape[2] // c.stripe)
    assert rows["x"].payload_bits == c.bits * g.size
    assert rows["x"].side_bits == 32 * blocks  # one fp32 scale per block, no zero point
    qmax = 2 ** (c.bits - 1) - 1
    if isinstance(c, Uniform):
        b_in, b_out = g.reshape(1, -1), y.reshape(1, -1)
    else:  # channels grouped by max |x|
        order = c.order(g)
        assert np.all(np.diff(np.abs(g).max(axis=(0, 2, 3))[order]) >= 0)
        b_in, b_out = (c.blocks(a, order).reshape(blocks, -1) for a in (g, y))
    step = np.abs(b_in).max(1, keepdims=True) / qmax
    k = b_out / step  # reconstruction on the zero-centred grid -qmax..qmax steps
    assert np.allclose(k, np.rint(k), atol=1e-4) and np.abs(np.rint(k)).max() == qmax
    assert np.all(np.abs(b_out - b_in) <= step / 2 * (1 + 1e-5) + 1e-7)
    assert np.array_equal(c.decode(c.encode(np.zeros_like(g)), g.shape), np.zeros_like(g))


@pytest.mark.parametrize("c", [Uniform(2, stochastic=True, entropy="none"),
                               SGQ(2, 4, 2, stochastic=True, entropy="none"),
                               SGQ(2, 4, 2, stochastic=True, symmetric=True, entropy="none")])
def test_stochastic_is_unbiased(c):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 4, 2)).astype(np.float32)
    m = 1500
    draws = np.stack([c.roundtrip(x, seed=s)[0] for s in range(m)]).astype(np.float64)
    sd = draws.std(0) / np.sqrt(m) + 1e-6
    assert np.all(np.abs(draws.mean(0) - x) < 5 * sd)
    # nearest rounding on the same grid is biased far beyond that noise
    det = type(c)(**{**c.__dict__, "stochastic": False}).roundtrip(x)[0]
    assert np.max(np.abs(det - x) / sd) > 20


def test_update_codecs_at_the_cut():
    x = feats((4, 8, 4, 4))
    for uc in (codec("qsgd", levels=7), codec("rotated", bits=2), codec("fp32")):
        c = UpdateCodec(codec=uc)
        data = c.encode(x, 3)
        y = c.decode(data, x.shape)
        assert y.shape == x.shape and inspect(data).kind == "features"
        if uc.name == "fp32":
            assert np.array_equal(y, x)
        with pytest.raises(FormatError):
            c.decode(data, (2, 8, 4, 4))  # another element count


def test_bad_input():
    x = feats()
    with pytest.raises(SpecError, match="groups=3 does not divide"):
        SGQ(4, 3).encode(x)
    with pytest.raises(SpecError, match="stripe=3"):
        SGQ(4, 4, 3).encode(x)
    with pytest.raises(SpecError, match="batch, channels, height"):
        SGQ(4, 2).encode(x[:, :, 0, 0])
    with pytest.raises(SpecError, match="NaN"):
        Uniform(4).encode(np.full((2, 2), np.nan, np.float32))
    with pytest.raises(SpecError):
        SGQ(0)
    with pytest.raises(SpecError, match="bits >= 2"):
        Uniform(1, stochastic=True).encode(x)
    model, _ = write_stream({"x": FloatTensor(x)}, "self")
    with pytest.raises(FormatError, match="not a features stream"):
        Lossless().decode(model)
    with pytest.raises(FormatError, match="expected"):
        Lossless().decode(Lossless().encode(x), (1, 2))
    # a forged channel order (not a permutation) is refused: rebuild the stream with order [0,0,...]
    from nnshare.collab.feature_codecs import ORDER
    from nnshare.format.container import read_stream
    from nnshare.format.spec import RawTensor

    st = read_stream(SGQ(4, 4, 2).encode(x))
    forged, _ = write_stream({"x": st.tensors["x"], ORDER: RawTensor(np.zeros(8, np.uint8))}, "self",
                             kind="features")
    with pytest.raises(FormatError, match="permutation"):
        rebuild_features(forged)
    data = SGQ(4, 4, 2).encode(x)
    with pytest.raises(FormatError):
        rebuild_features(data[:-3])


def test_weighted_sgq_steps_follow_sensitivity_and_exact_size():
    x = feats((8, 8, 4, 4), seed=4)
    w = np.ones((8, 4))
    w[:4] = 64.0  # channels 0-3 64x as sensitive: steps 8x finer than channels 4-7's (GM 8: s0 * 8^-+1/2)
    c = SGQ(3, 2, 2, weighted=True, entropy="none")
    data = c.encode(x, 0, w)
    y = c.decode(data, x.shape)
    assert np.array_equal(rebuild_features(data), y)
    ins = inspect(data)
    width = ins.rows[0].bits_per_element
    assert width >= 3 and width == int(width)
    # packed size: the same layout as a range-SGQ record at the width the steps needed
    assert len(data) == expected_bytes(SGQ(int(width), 2, 2, entropy="none"), x.shape)
    s0 = (x.max() - min(x.min(), 0)) / 7  # uniform's 3-bit step; geometric mean of the steps
    err = np.abs(y - x)
    r = 8**0.5
    assert err[:, :4].max() <= s0 / r / 2 * (1 + 1e-5) and err[:, 4:].max() <= s0 * r / 2 * (1 + 1e-5)
    assert err[:, 4:].max() > s0 / 2  # coarser than uniform's step where the task cares less
    # dead channels (weight 0): steps clipped to 8 s0, the others' geometric mean kept at s0
    w0 = np.ones((8, 4))
    w0[:2] = 0
    scale = read_stream(SGQ(3, 8, 2, weighted=True).encode(x, 0, w0)).tensors["x"].params["scale"]
    assert np.isclose(np.exp(np.log(scale).mean()), s0, rtol=1e-5)
    assert np.isclose(scale.max(), 8 * s0, rtol=1e-5)
    # equal weights on grid values: one step, exact (the lossless setting)
    g = np.random.default_rng(1).integers(0, 16, size=(4, 8, 4, 4)).astype(np.float32)
    g[0, 0, 0, 0] = 15
    assert np.array_equal(SGQ(4, 4, 2, weighted=True).roundtrip(g, 0, np.ones((8, 4)))[0], g)
    assert np.array_equal(SGQ(4, 4, 2, weighted=True).roundtrip(g)[0], g)  # None: equal weights


def test_weighted_sgq_lowers_the_weighted_error_and_refusals():
    x = feats((128, 16, 4, 4), seed=6)
    w = np.exp(np.random.default_rng(6).uniform(-3, 3, (16, 4)))  # AM / GM of w: ~3
    uni, sgw = Uniform(3), SGQ(3, 16, 2, weighted=True)
    (yu, nu), (yw, nw) = uni.roundtrip(x), sgw.roundtrip(x, 0, w)
    werr = lambda y: float((w[None, :, :, None] * (y - x) ** 2).sum())  # noqa: E731
    assert werr(yw) < 0.6 * werr(yu) and nw < 1.01 * nu  # entropy-coded bytes
    for bad in (np.ones((16, 3)), -np.ones((16, 4)), np.full((16, 4), np.nan)):
        with pytest.raises(SpecError, match="weight"):
            sgw.encode(x, 0, bad)
    with pytest.raises(SpecError, match="takes no weight"):
        uni.encode(x, 0, w)
    with pytest.raises(SpecError, match="weighted=True"):
        SGQ(3, 16, 2).encode(x, 0, w)
    with pytest.raises(SpecError, match="weighted"):
        SGQ(3, 4, 2, weighted=True, stochastic=True)
    with pytest.raises(SpecError, match="closed-form"):
        expected_bytes(SGQ(3, 4, 2, weighted=True, entropy="none"), x.shape)
