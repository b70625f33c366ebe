"""Share the MU-MIMO CSI encoder through nnshare: fixed schemes, and nnshare's smallest stream
whose measured MU link stays within a tolerance of the float encoder.

The smallest stream is found by :func:`nnshare.compress` (per-tensor steps, entropy-coded,
agreed-architecture mode) with the task metric "worst shift over MCS of the SNR at 10 % PER
against the float encoder" (dB, lower is better) measured on a validation set of drops that is
not the test set; the chosen stream is then measured again on the test set.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .. import compress
from ..format.errors import SpecError
from .mu_experiment import MCS_LIST, MuTestSet, ae_mu_scheme, per_curves
from .sharing import Shared, receive


def local_grid(snr10: dict, lo: float = -1.0, hi: float = 2.5, step: float = 0.25) -> np.ndarray:
    """SNR grid (dB) covering [s + lo, s + hi] around each reference SNR at 10 % PER."""
    pts = set()
    for s in snr10.values():
        if np.isfinite(s):
            pts.update(np.round(np.arange(s + lo, s + hi + 1e-9, step) / step) * step)
    return np.asarray(sorted(pts))


@dataclass(frozen=True)
class SmallestStream:
    """The smallest stream found: the shared encoder, the validation shift, the search's trace."""

    shared: Shared
    val_shift_db: float
    evaluations: int
    trace: tuple  # (bytes, worst shift dB, ok) of every measured stream


def smallest_stream(
    encoder: nn.Module,
    decoder: nn.Module,
    b_lat: int,
    val: MuTestSet,
    calibration: np.ndarray,
    *,
    tol_db: float = 0.1,
    method: str = "zf",
    mcs_list=MCS_LIST,
    max_evals: int = 24,
    snr_ng: int = 4,
) -> SmallestStream:
    """nnshare's smallest encoder stream whose worst SNR-at-10%-PER shift on ``val`` (vs the
    float encoder, ``method`` precoding) is at most ``tol_db``. ``calibration`` (N, 64): encoder
    inputs for the output sensitivity; ``snr_ng``: the AE's SNR-field grid. Raises SpecError
    when the float encoder itself reaches 10 % PER at no MCS on ``val`` (nothing to hold)."""
    ref_curves = per_curves(
        val, {"f": ae_mu_scheme(encoder, decoder, b_lat, snr_ng)}, np.arange(8.0, 50.01, 1.0), mcs_list,
        method=method,
    )
    grid = local_grid(ref_curves.snr_at_target()["f"])
    ref = per_curves(val, {"f": ae_mu_scheme(encoder, decoder, b_lat, snr_ng)}, grid, mcs_list, method=method)
    ref10 = ref.snr_at_target()["f"]
    if not any(np.isfinite(ref10[m]) for m in mcs_list):
        raise SpecError("the float encoder reaches 10 % PER at no MCS on the validation drops")

    def worst_shift(model: nn.Module) -> float:
        model.eval()
        c = per_curves(val, {"q": ae_mu_scheme(model, decoder, b_lat, snr_ng)}, grid, mcs_list, method=method)
        got = c.snr_at_target()["q"]
        shifts = [got[m] - ref10[m] for m in mcs_list if np.isfinite(ref10[m])]
        return float(max(shifts)) if all(np.isfinite(shifts)) else float("inf")

    calib = [torch.from_numpy(np.ascontiguousarray(calibration[:1024], dtype=np.float32))]
    res = compress(
        copy.deepcopy(encoder),
        worst_shift,
        tol_db,
        calib,
        relative=False,
        higher_is_better=False,
        mode="agreed",
        max_evals=max_evals,
    )
    trace = tuple((p.bytes, p.metric, p.ok) for p in res.trace)
    return SmallestStream(receive("smallest", res.data), res.metric, res.evaluations, trace)
