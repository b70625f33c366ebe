"""Per-tensor codebook quantization: k levels fitted by Lloyd's algorithm, codes index them.

The sender fits the levels (1-D k-means on the tensor's values, initialised at quantiles),
rounds them to the precision they are sent in, and assigns every value to its nearest rounded
level, so the receiver's ``levels[code]`` is exactly what the sender measured.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..format.errors import SpecError
from ..format.schemes import CodebookWire
from ..format.spec import FLOAT_DTYPES, QuantizedTensor, round_float
from .affine import as_float_array
from .lloyd import lloyd as lloyd_iterations

INITS = ("quantile", "uniform")
_FP16_MAX = 65504.0


@dataclass(frozen=True)
class CodebookConfig:
    """How one tensor is quantized with a codebook.

    On the wire: ``levels`` (k = 2..256; codes are packed at ceil(log2 k) bits or entropy-coded)
    and ``level_dtype`` (fp32 / fp16 / bf16). Sender only: ``iters`` (Lloyd iterations, >= 0)
    and ``init`` ("quantile": levels at the k quantile midpoints; "uniform": evenly spaced
    between min and max).
    """

    scheme: str = "codebook"
    levels: int = 16
    level_dtype: str = "fp32"
    iters: int = 25
    init: str = "quantile"

    def __post_init__(self) -> None:
        if self.scheme != "codebook":
            raise SpecError(f"CodebookConfig is the codebook scheme's config, got {self.scheme!r}")
        if isinstance(self.iters, bool) or not isinstance(self.iters, int | np.integer) or self.iters < 0:
            raise SpecError(f"iters must be an integer >= 0, got {self.iters!r}")
        if self.init not in INITS:
            raise SpecError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        object.__setattr__(self, "_wire", CodebookWire(self.levels, self.level_dtype))

    def wire(self, shape: tuple[int, ...] | None = None) -> CodebookWire:
        """What a record carries for this config."""
        return self._wire

    @property
    def bits(self) -> int:
        """Bits of a packed code."""
        return self._wire.bits

    def at_bits(self, bits: int) -> CodebookConfig:
        """This config with 2**bits levels."""
        return dataclasses.replace(self, levels=2 ** int(bits))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CodebookConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        bad = set(d) - names
        if bad:
            raise SpecError(f"unknown CodebookConfig field(s): {', '.join(sorted(bad))}")
        return cls(**d)

    @classmethod
    def config_space(cls) -> dict[str, tuple]:
        return {
            "levels": (2, 3, 4, 7, 16, 33, 256),
            "level_dtype": FLOAT_DTYPES,
            "iters": (0, 1, 10),
            "init": INITS,
        }


def lloyd(x: np.ndarray, k: int, iters: int = 25, init: str = "quantile") -> np.ndarray:
    """k sorted float64 levels minimising the squared error of 1-D values ``x`` (local optimum).

    Starts at the k quantile midpoints (``init="quantile"``) or k evenly spaced values from min
    to max, then runs :func:`nnshare.quant.lloyd.lloyd` (unweighted) to a fixed point or ``iters``.
    """
    x = np.asarray(x, np.float64).reshape(-1)
    if x.size == 0:
        return np.zeros(k)
    if init == "quantile":
        levels = np.quantile(x, (np.arange(k) + 0.5) / k)
    else:
        levels = np.linspace(x.min(), x.max(), k)
    return lloyd_iterations(x, levels, iters=iters, tol=0.0)


def nearest(x: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """int32 index of the nearest of the sorted ``levels`` for each value (ties: lower index)."""
    lv = np.asarray(levels, np.float64)
    mids = (lv[1:] + lv[:-1]) / 2
    return np.searchsorted(mids, np.asarray(x, np.float64), side="left").astype(np.int32)


def quantize(x, config: CodebookConfig, *, levels=None) -> QuantizedTensor:
    """Quantize ``x`` with a codebook fitted to it (or the given ``levels``, k values)."""
    arr = as_float_array(x)
    if not np.all(np.isfinite(arr)):
        raise SpecError("tensor contains NaN or Inf; it cannot be quantized")
    k = config.wire().levels
    if levels is None:
        lv = lloyd(arr, k, config.iters, config.init)
    else:
        lv = np.asarray(levels, np.float64).reshape(-1)
        if lv.size != k or not np.all(np.isfinite(lv)):
            raise SpecError(f"levels must be {k} finite numbers")
    if config.level_dtype == "fp16":
        lv = np.clip(lv, -_FP16_MAX, _FP16_MAX)
    lv = np.sort(round_float(lv.astype(np.float32), config.level_dtype))
    codes = nearest(arr, lv).reshape(arr.shape)
    return QuantizedTensor(codes=codes, params={"levels": lv}, spec=config, shape=tuple(arr.shape))
