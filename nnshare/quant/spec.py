"""QuantSpec: the affine scheme's sender config (what the user asks for).

It holds two kinds of fields. What goes on the wire, read back by the receiver, projected by
:meth:`QuantSpec.wire` onto :class:`~nnshare.format.schemes.AffineWire`: ``bits``,
``symmetric``, ``restricted``, the granularity (``granularity``/``axis``/``group_size``, or a
granularity object), ``scale_dtype`` and ``channel_bits``. And how the sender chose the codes,
never sent: ``range_method``, ``percentile``, ``rounding``, ``seed``. A decoded record's spec
equals ``spec.wire(shape)`` exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..format import grain
from ..format.errors import SpecError
from ..format.grain import Granularity, PerAxis, PerGroup, PerTensor
from ..format.schemes import AffineWire, get_scheme
from ..format.spec import FLOAT_DTYPES

_GRAIN_TYPES = (PerTensor, PerAxis, PerGroup)
RANGE_METHODS = ("minmax", "mse", "percentile")  # sender only: how the range was chosen
ROUNDINGS = ("nearest", "stochastic")  # sender only


@dataclass(frozen=True)
class QuantSpec:
    """How one tensor is quantized with the affine scheme.

    Uniform affine: ``x_int = clamp(round(x / s) + z)``, ``x_hat = s * (x_int - z)``.

    On the wire:

    - ``bits``: code width in bits, 1..16.
    - ``symmetric``: signed codes and z = 0 (no zero point sent); otherwise unsigned codes in
      ``[0, 2**bits - 1]`` with a b-bit zero point per scale.
    - ``restricted``: symmetric codes in ``[-(2**(b-1) - 1), 2**(b-1) - 1]`` (needs bits >= 2).
    - ``granularity``: one scale per ``"tensor"``, per ``"channel"`` (slices along ``axis``) or per
      ``"group"`` of ``group_size`` consecutive elements along ``axis`` (the last group of a row
      may be shorter). A granularity object (``PerTensor()``, ``PerAxis(axis)``,
      ``PerGroup(axis, size)``) may be given instead; :attr:`grain` returns it.
    - ``scale_dtype``: precision the scales are sent in; quantization uses the scale already
      rounded to it, so sender and receiver agree bit-exactly.
    - ``channel_bits``: a bit width per channel (granularity "channel"; bits = their maximum).

    Sender only:

    - ``range_method``: ``"minmax"``, ``"mse"`` (grid search of the clipping range minimising the
      squared error) or ``"percentile"`` (clip at ``percentile`` % of |x| or of each tail).
    - ``rounding``: ``"nearest"`` (half to even) or ``"stochastic"`` (unbiased, seeded by ``seed``).
    """

    scheme: str = "affine"
    bits: int = 8
    symmetric: bool = True
    restricted: bool = False
    granularity: str = "tensor"
    axis: int = 0
    group_size: int = 0
    range_method: str = "minmax"
    percentile: float = 99.99
    rounding: str = "nearest"
    seed: int = 0
    scale_dtype: str = "fp32"
    channel_bits: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.scheme != "affine":
            get_scheme(self.scheme)  # "unknown scheme ..." for a name no one registered
            raise SpecError(
                f"QuantSpec is the affine scheme's config, got scheme {self.scheme!r}; "
                "use that scheme's own config (nnshare.quant.registry)"
            )
        if isinstance(self.granularity, _GRAIN_TYPES):
            g = self.granularity
            object.__setattr__(self, "granularity", g.kind)
            object.__setattr__(self, "axis", g.axis)
            object.__setattr__(self, "group_size", g.size)
        for name in ("bits", "axis", "group_size", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise SpecError(f"{name} must be an integer, got {v!r}")
        for name in ("symmetric", "restricted"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise SpecError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if isinstance(self.percentile, bool) or not isinstance(self.percentile, int | float):
            raise SpecError(f"percentile must be a number, got {self.percentile!r}")
        if not 1 <= int(self.bits) <= 16:
            raise SpecError(f"bits must be in 1..16, got {self.bits}")
        if self.range_method not in RANGE_METHODS:
            raise SpecError(
                f"range_method must be one of {', '.join(RANGE_METHODS)}, got {self.range_method!r}"
            )
        if not 0.0 < self.percentile <= 100.0:
            raise SpecError(f"percentile must be in (0, 100], got {self.percentile}")
        if self.rounding not in ROUNDINGS:
            raise SpecError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {self.rounding!r}")
        if isinstance(self.channel_bits, list | tuple):
            object.__setattr__(self, "channel_bits", tuple(self.channel_bits))
        g = grain.make(self.granularity, self.axis, self.group_size)
        w = AffineWire(
            int(self.bits), bool(self.symmetric), bool(self.restricted), g, self.scale_dtype,
            self.channel_bits,
        )
        object.__setattr__(self, "channel_bits", w.channel_bits)
        object.__setattr__(self, "_wire", w)  # not a field: no effect on ==, repr or to_dict

    # ------------------------------------------------------------------ the wire projection
    @property
    def grain(self) -> Granularity:
        """The granularity object (PerTensor / PerAxis / PerGroup)."""
        return self._wire.grain

    def wire(self, shape: tuple[int, ...] | None = None) -> AffineWire:
        """What a record carries for this spec: :class:`AffineWire`, with the axis made
        non-negative when ``shape`` is given (SpecError if the axis does not fit)."""
        return self._wire if shape is None else self._wire.for_shape(tuple(shape))

    @property
    def qmin(self) -> int:
        """Smallest code."""
        return self._wire.qmin

    @property
    def qmax(self) -> int:
        """Largest code."""
        return self._wire.qmax

    def row_bits(self, rows: int) -> np.ndarray:
        """Bit width of each of ``rows`` scale rows (int64 array)."""
        return self._wire.row_bits(rows)

    def row_qrange(self, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Smallest and largest code of each scale row (int64 arrays)."""
        return self._wire.row_qrange(rows)

    def at_bits(self, bits: int) -> QuantSpec:
        """This spec at ``bits`` bits per code (without per-channel widths)."""
        return dataclasses.replace(self, bits=int(bits), channel_bits=())

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (every field)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["channel_bits"] = list(self.channel_bits)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantSpec:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        if not isinstance(d, dict):
            raise SpecError(f"a QuantSpec must be a JSON object, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        bad = set(d) - names
        if bad:
            raise SpecError(f"unknown QuantSpec field(s): {', '.join(sorted(bad))}")
        d = dict(d)
        if "channel_bits" in d:
            if not isinstance(d["channel_bits"], list | tuple):
                raise SpecError("channel_bits must be a list of integers")
            d["channel_bits"] = tuple(d["channel_bits"])
        return cls(**d)

    @classmethod
    def config_space(cls) -> dict[str, tuple]:
        """Values of each field worth trying (for the registry's property tests); some
        combinations are invalid and raise SpecError."""
        return {
            "bits": tuple(range(1, 17)),
            "symmetric": (True, False),
            "restricted": (False, True),
            "granularity": ("tensor", "channel", "group"),
            "axis": (0, 1, -1),
            "group_size": (1, 3, 8),
            "range_method": RANGE_METHODS,
            "rounding": ROUNDINGS,
            "scale_dtype": FLOAT_DTYPES,
        }


AffineConfig = QuantSpec
