"""Split federated fine-tuning with quantization, power and bandwidth management (SFLAM-style).

After Qiang et al., "Quantized split federated fine-tuning of large AI models" (rebuilt from the
abstract; the cost model and the search are ours). Each device holds a copy of the device part
(e.g. the embedding and first blocks of a transformer) and its own data; the server holds one
server part. In a round every device trains ``local_steps`` batches through a
:class:`~.split.SplitBoundary` (its activations up, the cut gradients down, both quantized at the
device's bit width), then sends its device-part update through an update codec; the server
averages the decoded updates (FedAvg of the device parts) and broadcasts the result.

Per device k (bits b_k, power p_k W, bandwidth B_k Hz): upload bits U_k(b_k) (exact stream
lengths), compute time ``C_k / f_k`` and energy ``kappa C_k f_k**2`` for C_k cycles, upload time
``U_k / R_k`` with the Shannon rate ``R_k = B_k log2(1 + p_k g_k / (N0 B_k))`` and energy
``p_k U_k / R_k``. Round latency = the slowest device; round energy = the sum over devices.
:func:`operating_point` minimises ``w T / T_ref + (1 - w) E / E_ref`` over per-device bits and
powers (coordinate descent; the bandwidth split for each candidate by :func:`.feel.allocate`);
:func:`front` sweeps w and keeps the Pareto-optimal (latency, energy) points.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..format.errors import SpecError
from .codecs import Codec, fingerprint, layout_of
from .feel import Device, System, allocate
from .split import SplitBoundary


@dataclass(frozen=True)
class EdgeDevice:
    """Compute and radio of one device: cycles per round, clock (Hz), energy coefficient kappa
    (J / cycle / Hz^2), channel power gain, allowed transmit powers (W)."""

    cycles: float
    clock_hz: float
    gain: float
    powers_w: tuple[float, ...] = (0.005, 0.01, 0.02, 0.05, 0.1)
    kappa: float = 1e-28

    @property
    def compute_s(self) -> float:
        return self.cycles / self.clock_hz

    @property
    def compute_j(self) -> float:
        return self.kappa * self.cycles * self.clock_hz**2


@dataclass(frozen=True)
class OperatingPoint:
    """Per-device bits, powers (W) and bandwidths (Hz), with the round latency (s) and energy (J)."""

    bits: tuple[int, ...]
    powers_w: tuple[float, ...]
    bandwidth_hz: tuple[float, ...]
    latency_s: float
    energy_j: float


def round_cost(devices: Sequence[EdgeDevice], upload_bits: Sequence[int], powers: Sequence[float],
               bandwidth_hz: float, noise_w_per_hz: float = 4e-21) -> OperatingPoint | None:
    """Latency-optimal bandwidth split for these uploads and powers; (latency, energy) of a round."""
    sys_ = System(tuple(Device(d.compute_s, p, d.gain) for d, p in zip(devices, powers, strict=True)),
                  bandwidth_hz, noise_w_per_hz)
    t, bw = allocate(sys_, list(upload_bits))
    energy = 0.0
    for d, dev, u, p, b in zip(sys_.devices, devices, upload_bits, powers, bw, strict=True):
        energy += dev.compute_j + p * u / d.rate(b, noise_w_per_hz)
    return OperatingPoint((), tuple(powers), tuple(bw), t, energy)


def operating_point(devices: Sequence[EdgeDevice], bits_options: Sequence[int],
                    upload_bits: Callable[[int], int], bandwidth_hz: float, weight: float,
                    min_bits: int = 1, sweeps: int = 4) -> OperatingPoint:
    """Bits and power per device (and the bandwidth split) minimising
    ``weight * T / T_ref + (1 - weight) * E / E_ref``; T_ref, E_ref: the all-finest, all-max-power
    round. Bits below ``min_bits`` (the accuracy floor) are not considered."""
    if not 0 <= weight <= 1:
        raise SpecError(f"weight must be in [0, 1], got {weight}")
    opts = sorted(b for b in bits_options if b >= min_bits)
    if not opts:
        raise SpecError(f"no bit width >= {min_bits} among {list(bits_options)}")
    k = len(devices)
    bits = [opts[-1]] * k
    powers = [max(d.powers_w) for d in devices]

    def cost(b, p):
        return round_cost(devices, [upload_bits(x) for x in b], p, bandwidth_hz)

    ref = cost(bits, powers)

    def score(op):
        return weight * op.latency_s / ref.latency_s + (1 - weight) * op.energy_j / ref.energy_j

    best = ref
    for _ in range(sweeps):
        improved = False
        for i in range(k):
            for b in opts:
                for p in devices[i].powers_w:
                    if b == bits[i] and p == powers[i]:
                        continue
                    tb, tp = bits[:i] + [b] + bits[i + 1 :], powers[:i] + [p] + powers[i + 1 :]
                    op = cost(tb, tp)
                    if score(op) < score(best) - 1e-12:
                        best, bits, powers, improved = op, tb, tp, True
        if not improved:
            break
    return OperatingPoint(tuple(bits), best.powers_w, best.bandwidth_hz, best.latency_s, best.energy_j)


def front(devices, bits_options, upload_bits, bandwidth_hz, weights=np.linspace(0, 1, 11), min_bits=1):
    """Pareto-optimal operating points (latency ascending) over a sweep of the weight."""
    pts = [operating_point(devices, bits_options, upload_bits, bandwidth_hz, float(w), min_bits)
           for w in weights]
    pts.sort(key=lambda p: (p.latency_s, p.energy_j))
    out = []
    for p in pts:
        if not out or p.energy_j < out[-1].energy_j - 1e-15:
            out.append(p)
    return out


@dataclass
class SFLRun:
    """Per-round test accuracy and bytes (activations up, gradients down, model updates up)."""

    accuracy: list[float] = field(default_factory=list)
    up_bytes: list[int] = field(default_factory=list)
    down_bytes: list[int] = field(default_factory=list)
    update_bytes: list[int] = field(default_factory=list)


def split_fedavg(device: torch.nn.Module, server: torch.nn.Module, shards: Sequence[tuple], test: tuple,
                 cut_codecs: Sequence[tuple], update_codecs: Sequence[Codec], *, rounds: int = 10,
                 local_steps: int = 5, batch: int = 32, lr: float = 3e-3, seed: int = 0) -> SFLRun:
    """Split federated training. ``shards``: per device (x, y) tensors; ``cut_codecs``: per device
    (forward, backward) codecs of its boundary; ``update_codecs``: per device the codec of its
    device-part update (FedAvg of the decoded updates). Returns accuracy and bytes per round."""
    k = len(shards)
    if not len(cut_codecs) == len(update_codecs) == k:
        raise SpecError(f"{k} devices need {k} cut codec pairs and {k} update codecs")
    gen = torch.Generator().manual_seed(seed)
    cuts = [SplitBoundary(f, b, seed=seed * 97 + i) for i, (f, b) in enumerate(cut_codecs)]
    server_opt = torch.optim.Adam(server.parameters(), lr=lr)
    local = [copy.deepcopy(device) for _ in range(k)]
    opts = [torch.optim.Adam(m.parameters(), lr=lr) for m in local]
    run = SFLRun()
    for r in range(rounds):
        glob = {n: v.detach().numpy().copy() for n, v in device.state_dict().items()}
        base = fingerprint(glob)
        deltas, upd = [], 0
        for i, (m, (x, y)) in enumerate(zip(local, shards, strict=True)):
            m.load_state_dict({n: torch.from_numpy(v.copy()) for n, v in glob.items()})
            for _ in range(local_steps):
                idx = torch.randint(0, len(y), (batch,), generator=gen)
                opts[i].zero_grad()
                server_opt.zero_grad()
                torch.nn.functional.cross_entropy(server(cuts[i](m(x[idx]))), y[idx]).backward()
                opts[i].step()
                server_opt.step()
            delta = {n: v.detach().numpy() - glob[n] for n, v in m.state_dict().items()}
            data = update_codecs[i].encode(delta, seed * 7919 + r * 131 + i, base)
            upd += len(data)
            deltas.append(update_codecs[i].decode(data, layout_of(delta), base))
        new = {n: glob[n] + np.mean([d[n] for d in deltas], axis=0) for n in glob}
        device.load_state_dict({n: torch.from_numpy(v.astype(np.float32)) for n, v in new.items()})
        with torch.no_grad():
            xt, yt = test
            run.accuracy.append(float((server(device(xt)).argmax(1) == yt).float().mean()))
        run.up_bytes.append(sum(sum(c.traffic.forward) for c in cuts) - sum(run.up_bytes))
        run.down_bytes.append(sum(sum(c.traffic.backward) for c in cuts) - sum(run.down_bytes))
        run.update_bytes.append(upd)
    return run
