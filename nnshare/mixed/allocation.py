"""What :func:`nnshare.mixed.search` returns: the :class:`Allocation` (plan, widths, predicted loss,
exact stream bits) and the :class:`FrontPoint` s of its Pareto front."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..format.spec import QuantSpec
from ..plan import Plan
from .budget import Budget
from .problem import Solution
from .sensitivity import Sensitivity
from .tensors import TensorInfo


@dataclass(frozen=True, eq=False)
class FrontPoint:
    """A point of the Pareto front: total stream bits (size model) and predicted loss."""

    bits: int
    predicted: float
    widths: dict[str, np.ndarray]


@dataclass(frozen=True, eq=False)
class Allocation:
    """The result of :func:`search`.

    - ``plan``: the Plan to encode with (per-channel widths in ``QuantSpec.channel_bits``).
    - ``widths[name]``: (C,) bit width per channel (C = 1 for per-tensor allocation).
    - ``predicted_loss``: sum of the sensitivity table at the chosen widths.
    - ``model_bits``: total stream bits by the size model (padding excluded when verified);
      ``exact_bits``: by the format's own accounting (None if not computed).
    - ``entropy``: "auto" when sizes are entropy-coded records (encode with the same option).
    - ``seconds``: {"sensitivity", "solve"} wall time.
    - ``uniform``: with calibration data, the check against the widest uniform width that fits:
      {"bits", "distortion", "allocated_distortion", "chosen": "allocated" | "uniform"}
      (measured output distortion of both plans); empty when not checked.
    """

    plan: Plan
    granularity: str
    budget: Budget
    candidates: tuple[int, ...]
    base: QuantSpec
    tensors: tuple[TensorInfo, ...]
    widths: dict[str, np.ndarray]
    predicted_loss: float
    model_bits: int
    exact_bits: int | None
    fixed_bits: int
    solution: Solution
    sensitivity: Sensitivity
    mode: str = "self"
    entropy: str = "none"
    seconds: dict = field(default_factory=dict)
    front: tuple[FrontPoint, ...] = ()
    uniform: dict = field(default_factory=dict)

    @property
    def total_bits(self) -> int:
        """Exact stream bits when known, else the size model's bound."""
        return self.exact_bits if self.exact_bits is not None else self.model_bits

    @property
    def weights(self) -> int:
        """Number of quantized weights."""
        return sum(t.numel for t in self.tensors)

    @property
    def mean_bits(self) -> float:
        """Average code width over the quantized weights (bits per weight, codes only)."""
        tot = 0.0
        for t in self.tensors:
            w = self.widths[t.name]
            tot += float(w.sum()) * (t.numel // w.size)
        return tot / self.weights

    def tensor_bits(self) -> dict[str, float]:
        """Mean width per tensor (the width itself for per-tensor allocation)."""
        return {n: float(w.mean()) for n, w in self.widths.items()}

