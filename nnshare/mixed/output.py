"""Post-training output-distortion sensitivity on unlabelled calibration data.

Per tensor and bit width: quantize that tensor alone, run the calibration batches, and take
``D_t(b) = mean (y_q - y)^2`` over the model's output elements (squared output units).

Per channel: the measured ``D_t(b)`` is split over channels in proportion to the distortion each
channel causes at the layer's own output, ``L_c(b) = dW_c Sigma dW_c^T`` with
``Sigma = E[x x^T]`` of the layer input (Linear; Conv2d on unfolded patches) or the token
frequency (Embedding rows); other tensors split by ``||dW_c||^2``. So the channel rows of a
tensor sum to its measured ``D_t(b)``.
"""

from __future__ import annotations

import numpy as np

from ..format.spec import QuantSpec
from .sensitivity import run_model, split_batch
from .tensors import (
    TensorInfo,
    channel_errors,
    channel_view,
    fake_quantize_rows,
    from_channel_view,
    state_dict_of,
)

# Unseen Embedding rows get this fraction of the mean row frequency, so tokens missing from the
# calibration text are not treated as free to destroy.
EMBEDDING_PRIOR = 0.5


class _Moments:
    """Forward hooks that accumulate each layer's input second moments."""

    def __init__(self, model, tensors: list[TensorInfo], base: QuantSpec):
        import torch.nn as nn

        self.sigma: dict[str, np.ndarray] = {}  # sum of x x^T
        self.rows: dict[str, list[np.ndarray]] = {}  # the inputs themselves, while few
        self.freq: dict[str, np.ndarray] = {}  # Embedding row counts
        self.count: dict[str, float] = {}
        self.handles = []
        modules = dict(model.named_modules())
        for t in tensors:
            mname, _, pname = t.name.rpartition(".")
            mod = modules.get(mname)
            if pname != "weight" or mod is None or base.axis != 0 or base.granularity != "channel":
                continue
            ok = isinstance(mod, nn.Linear | nn.Embedding) or (
                isinstance(mod, nn.Conv2d) and mod.groups == 1 and mod.padding_mode == "zeros"
            )
            if ok:
                self.handles.append(mod.register_forward_hook(self._hook(t.name)))

    def _hook(self, name):
        import torch
        import torch.nn as nn
        import torch.nn.functional as F

        def hook(mod, inputs, _out):
            x = inputs[0].detach()
            if isinstance(mod, nn.Embedding):
                c = torch.bincount(x.reshape(-1), minlength=mod.num_embeddings).double().numpy()
                self.freq[name] = self.freq.get(name, 0) + c
                self.count[name] = self.count.get(name, 0) + float(x.numel())
                return
            if isinstance(mod, nn.Conv2d):
                p = F.unfold(x, mod.kernel_size, mod.dilation, mod.padding, mod.stride)
                x = p.transpose(1, 2)
            x = x.reshape(-1, x.shape[-1]).float()
            self.count[name] = self.count.get(name, 0) + float(x.shape[0])
            if name in self.sigma:
                self.sigma[name] += (x.T @ x).double().numpy()
                return
            rows = self.rows.setdefault(name, [])
            rows.append(x.numpy().copy())
            if sum(r.shape[0] for r in rows) > 2 * x.shape[1]:
                # More rows than twice the input width: the (in, in) moment matrix is cheaper.
                xs = np.concatenate(rows).astype(np.float64)
                self.sigma[name] = xs.T @ xs
                del self.rows[name]

        return hook

    def stats(self, name: str):
        """("rows", X / sqrt(n)) | ("sigma", E[x x^T]) | ("freq", row frequencies) | None."""
        n = self.count.get(name)
        if not n:
            return None
        if name in self.freq:
            return "freq", self.freq[name] / n
        if name in self.sigma:
            return "sigma", (self.sigma[name] / n).astype(np.float32)
        return "rows", np.concatenate(self.rows[name]) / np.float32(np.sqrt(n))

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def local_distortion(w: np.ndarray, base: QuantSpec, cands: tuple[int, ...], stats) -> np.ndarray:
    """(C, K) distortion at the layer output of each channel's quantization error:
    ``dW_c E[x x^T] dW_c^T`` (from the inputs themselves or their moment matrix), or the row
    frequency times ``||dW_c||^2`` for an Embedding, or ``||dW_c||^2`` without statistics."""
    if stats is None:
        return channel_errors(w, base, cands)
    kind, m = stats
    rows = channel_view(w, base)
    out = np.empty((rows.shape[0], len(cands)))
    if kind == "freq":
        m = m + EMBEDDING_PRIOR * m.mean()
    for k, b in enumerate(cands):
        d = fake_quantize_rows(rows, base, b) - rows  # float32
        if kind == "freq":
            out[:, k] = m * (d.astype(np.float64) ** 2).sum(axis=1)
        elif kind == "rows":
            out[:, k] = ((d @ m.T).astype(np.float64) ** 2).sum(axis=1)
        else:
            out[:, k] = np.einsum("ij,ij->i", d @ m, d, dtype=np.float64)
    return out


def output_sensitivity(
    model,
    batches: list,
    tensors: list[TensorInfo],
    base: QuantSpec,
    cands,
    forward,
    measure_max_bits: int | None = None,
) -> tuple[dict, dict, dict]:
    """Tensor and channel tables (see module docstring); info holds the float outputs' power.

    ``measure_max_bits``: run the model only for widths up to this (at least the smallest
    candidate); wider ones are extrapolated from the layer-local distortion. None: measure all.
    """
    measured = [measure_max_bits is None or b <= measure_max_bits for b in cands]
    measured[0] = True
    import torch

    inputs = [split_batch(b, labelled=False) for b in batches]
    sd_np = state_dict_of(model)
    live = model.state_dict(keep_vars=True)
    was_training = model.training
    model.eval()
    moments = _Moments(model, tensors, base)
    try:
        with torch.no_grad():
            ref = [run_model(model, x, forward).detach().double() for x in inputs]
        moments.remove()
        n_out = sum(r.numel() for r in ref)
        power = sum(r.pow(2).sum().item() for r in ref) / n_out
        tl, cl = {}, {}
        for t in tensors:
            w = sd_np[t.name]
            target = live[t.name]
            rows = channel_view(w, base)
            meas = np.zeros(len(cands))
            with torch.no_grad():
                for k, b in enumerate(cands):
                    if not measured[k]:
                        continue
                    q = from_channel_view(fake_quantize_rows(rows, base, b), w.shape, base)
                    target.data.copy_(torch.from_numpy(q).to(target.dtype))
                    d = [
                        (run_model(model, x, forward).double() - r).pow(2).sum().item()
                        for x, r in zip(inputs, ref, strict=True)
                    ]
                    meas[k] = float(np.sum(d)) / n_out  # pooled over all output elements
                target.data.copy_(torch.from_numpy(w).to(target.dtype))
            loc = local_distortion(w, base, cands, moments.stats(t.name))
            tot = loc.sum(axis=0)
            # Widths above measure_max_bits: the local distortion scaled by the ratio measured at
            # the widest measured width (quantization noise is small there, the model linear).
            ref_k = max(k for k in range(len(cands)) if measured[k])
            scale = meas[ref_k] / tot[ref_k] if tot[ref_k] > 0 else 0.0
            for k in range(len(cands)):
                if not measured[k]:
                    meas[k] = scale * tot[k]
            ratio = np.where(tot > 0, meas / np.where(tot > 0, tot, 1.0), 0.0)
            tl[t.name] = meas
            cl[t.name] = loc * ratio[None, :]
    finally:
        moments.remove()
        model.train(was_training)
    return tl, cl, {"output_power": power, "n_batches": len(inputs)}
