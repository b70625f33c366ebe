"""What an encode cost the model: SQNR per tensor, the worst one, and tensors that lost their
signal. Every encode path reports it; :func:`warn_damage` turns it into one-line warnings."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import NNShareWarning

#: A tensor that loses more than this share of its energy (error energy / signal energy, i.e.
#: SQNR below 10 log10(1/0.25) = 6.0 dB) is warned about.
MAX_ENERGY_LOSS = 0.25


@dataclass(frozen=True)
class TensorQuality:
    """One tensor: role, SQNR in dB (inf when exact), and whether it decodes to all zeros
    although it was not all zeros."""

    name: str
    role: str
    sqnr_db: float
    zeroed: bool

    @property
    def energy_loss(self) -> float:
        """Error energy over signal energy (0 when exact)."""
        return 0.0 if math.isinf(self.sqnr_db) else 10 ** (-self.sqnr_db / 10)


@dataclass(frozen=True)
class Quality:
    """Per-tensor quality of an encode (lossy tensors only; exact ones have SQNR inf)."""

    tensors: tuple[TensorQuality, ...]
    max_energy_loss: float = MAX_ENERGY_LOSS

    @property
    def worst(self) -> TensorQuality | None:
        """The tensor with the lowest SQNR (None when nothing is lossy)."""
        lossy = [t for t in self.tensors if not math.isinf(t.sqnr_db)]
        return min(lossy, key=lambda t: t.sqnr_db) if lossy else None

    @property
    def zeroed(self) -> list[str]:
        return [t.name for t in self.tensors if t.zeroed]

    @property
    def damaged(self) -> list[str]:
        """Tensors (not zeroed) losing more than ``max_energy_loss`` of their energy."""
        return [t.name for t in self.tensors if not t.zeroed and t.energy_loss > self.max_energy_loss]

    def by_role(self) -> dict[str, float]:
        """Worst SQNR (dB) per role."""
        out: dict[str, float] = {}
        for t in self.tensors:
            out[t.role] = min(out.get(t.role, math.inf), t.sqnr_db)
        return out

    def summary(self) -> str:
        """One line, e.g. ``worst tensor SQNR 21.3 dB (fc.weight)``."""
        w = self.worst
        return "every tensor exact" if w is None else f"worst tensor SQNR {w.sqnr_db:.1f} dB ({w.name})"

    def to_dict(self) -> dict:
        w = self.worst
        return {
            "worst_sqnr_db": None if w is None else round(w.sqnr_db, 3),
            "worst_tensor": None if w is None else w.name,
            "zeroed": self.zeroed,
            "damaged": self.damaged,
            "sqnr_db_by_role": {
                k: (None if math.isinf(v) else round(v, 3)) for k, v in self.by_role().items()
            },
        }


_BLOCK = 1 << 20  # elements per block in sqnr_db (bounds the float64 temporaries)


def sqnr_db(x: np.ndarray, y: np.ndarray) -> float:
    """10 log10(sum x² / sum (x - y)²) in dB; inf when exact, -inf when x is all zeros but y not."""
    x = np.asarray(x)
    y = np.broadcast_to(np.asarray(y), x.shape).reshape(-1)
    x = x.reshape(-1)
    err = energy = 0.0
    for a in range(0, x.size, _BLOCK):
        xb = x[a:a + _BLOCK].astype(np.float64)
        energy += float(np.dot(xb, xb))
        xb -= y[a:a + _BLOCK]
        err += float(np.dot(xb, xb))
    if err == 0.0:
        return math.inf
    return 10 * math.log10(energy / err) if energy > 0 else -math.inf


class Dequantized(Mapping):
    """``{name: tensor.dequantize()}`` computed on access, never all at once (what
    :func:`assess` needs without holding a decoded copy of the whole model)."""

    def __init__(self, tensors: Mapping):
        self._t = tensors

    def __getitem__(self, name: str) -> np.ndarray:
        return self._t[name].dequantize()

    def __iter__(self):
        return iter(self._t)

    def __len__(self) -> int:
        return len(self._t)

    def __contains__(self, name) -> bool:
        return name in self._t


def _affine_error(x: np.ndarray, t) -> tuple[float, float, bool, bool] | None:
    """(signal energy, error energy, x has a nonzero, x_hat has a nonzero) of an affine tensor
    per tensor or per channel by one compiled pass over x and the codes (no dequantized copy),
    or None when that path does not apply."""
    from ..format import grain
    from ..format.spec import QuantizedTensor
    from ..quant import _affine_fast

    if not isinstance(t, QuantizedTensor) or getattr(t.spec, "scheme", "") != "affine":
        return None
    f = _affine_fast.fast(x.size)
    if f is None or x.dtype != np.float32 or tuple(x.shape) != tuple(t.shape):
        return None
    g = grain.grain_of(t.spec)
    if g.kind not in ("tensor", "channel"):  # per-channel widths: the same s * (code - z)
        return None
    codes = np.asarray(t.codes)
    if codes.dtype != np.int32:
        return None
    scale = np.ascontiguousarray(t.params["scale"], np.float32).reshape(-1)
    zp = t.params.get("zero_point")
    zero = np.zeros(scale.size, np.float32) if zp is None else np.asarray(zp, np.float32).reshape(-1)
    blocks = grain.to_blocks(x, t.spec)
    if blocks.shape[0] != scale.size:
        return None
    e, d, nz = f[1](blocks, grain.to_blocks(codes, t.spec), scale, zero)
    return float(e), float(d), e > 0, nz != 0  # x finite: some x != 0 iff sum x**2 > 0


def assess(originals: Mapping[str, np.ndarray], decoded: Mapping,
           roles: Mapping[str, str] | None = None, max_energy_loss: float = MAX_ENERGY_LOSS) -> Quality:
    """Compare what the receiver rebuilds with the original, tensor by tensor (names in both).

    ``decoded``: per name the rebuilt array, or the tensor the stream carries (anything with
    ``dequantize()``; affine tensors are then compared without building their float copy)."""
    rows = []
    for name, x in originals.items():
        if name not in decoded:
            continue
        y = decoded[name]
        x = np.asarray(x)
        if x.dtype.kind != "f":
            continue
        fast = _affine_error(x, y) if hasattr(y, "dequantize") else None
        if fast is not None:
            energy, err, nz_x, nz_y = fast
            s = math.inf if err == 0.0 else (10 * math.log10(energy / err) if energy > 0 else -math.inf)
            zeroed = bool(x.size and nz_x and not nz_y)
        else:
            y = y.dequantize() if hasattr(y, "dequantize") else y
            s = sqnr_db(x, y)
            zeroed = bool(x.size and np.any(x != 0) and not np.any(np.asarray(y) != 0))
        rows.append(TensorQuality(name, (roles or {}).get(name, ""), s, zeroed))
    return Quality(tuple(rows), max_energy_loss)


def warn_damage(q: Quality, stacklevel: int = 3) -> None:
    """One warning for tensors that decode to all zeros, one for tensors losing more than the
    stated share of their energy."""
    if q.zeroed:
        names = ", ".join(q.zeroed[:5]) + (" ..." if len(q.zeroed) > 5 else "")
        warnings.warn(f"{len(q.zeroed)} tensor(s) decode to all zeros: {names}", NNShareWarning,
                      stacklevel=stacklevel)
    bad = q.damaged
    if bad:
        worst = {t.name: t for t in q.tensors}
        names = ", ".join(f"{n} ({worst[n].sqnr_db:.1f} dB)" for n in bad[:5])
        names += " ..." if len(bad) > 5 else ""
        warnings.warn(
            f"{len(bad)} tensor(s) lose more than {q.max_energy_loss:.0%} of their energy: {names}",
            NNShareWarning, stacklevel=stacklevel,
        )
