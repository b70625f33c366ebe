"""torch DDP communication hooks that send nnshare-coded gradients.

``model.register_comm_hook(CommState(...), allgather_hook)`` or ``summable_hook``:

- :func:`allgather_hook`: each rank codes its gradient bucket (plus its error-feedback residual)
  with any update codec of :mod:`.codecs` (default: 1-bit rotated TCQ), the ranks all-gather the
  streams (variable length, as uint8 tensors), and every rank decodes all of them and averages.
  Bytes sent per rank and step: the stream length (about d / 8 at 1 bit), against 4 d for the
  fp32 all-reduce and 2 d for ``fp16_compress_hook``.
- :func:`summable_hook`: a shared scale (one all-reduce of max |g|) and stochastic integer codes
  small enough that their sum over the ranks fits int8, all-reduced as int8: 1 byte per element.

Both keep an error-feedback residual per bucket in the state (contractive codecs only for the
all-gather path; the summable path's codes are unbiased and EF is off by default).

Backends: coding runs on the CPU (numpy); every tensor handed to a collective lives on the
bucket's device, so gloo gets CPU tensors and NCCL CUDA tensors; nothing here names a backend.
Tested on gloo only: this machine has no GPU, so the NCCL path has not been run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..format.errors import SpecError
from .codecs import Codec, codec


@dataclass
class CommState:
    """Hook state: the codec, error feedback on/off, residuals per bucket, bytes counted."""

    codec: Codec = field(default_factory=lambda: codec("rotated", bits=1, nu=6))
    error_feedback: bool = True
    bits: int = 7  # summable path: int8 sum headroom (codes use 7 - log2(world) bits)
    group: object = None
    residual: dict = field(default_factory=dict)
    bytes_sent: int = 0
    steps: int = 0

    def __post_init__(self) -> None:
        if self.error_feedback and not self.codec.contractive:
            raise SpecError(f"codec {self.codec.name!r} is not contractive: error feedback would diverge")


def _done(tensor):
    import torch

    fut = torch.futures.Future()
    fut.set_result(tensor)
    return fut


def _residual(state: CommState, bucket, x: np.ndarray) -> np.ndarray:
    key = bucket.index()
    r = state.residual.get(key)
    if r is None or r.shape != x.shape:  # buckets are rebuilt after the first iteration
        r = np.zeros_like(x)
        state.residual[key] = r
    return r


def allgather_hook(state: CommState, bucket):
    """All-gather nnshare streams of every rank's bucket; returns the averaged gradient."""
    import torch
    import torch.distributed as dist

    buf = bucket.buffer()
    world = dist.get_world_size(state.group)
    x = buf.detach().to("cpu", torch.float32).numpy().copy()
    if state.error_feedback:
        x += _residual(state, bucket, x)
    seed = (state.steps * 7919 + dist.get_rank(state.group) * 104729 + bucket.index()) & 0xFFFFFFFF
    data = state.codec.encode({"g": x}, seed)
    layout = [("g", x.shape)]
    mine = state.codec.decode(data, layout)["g"]
    if state.error_feedback:
        state.residual[bucket.index()] = x - mine
    dev = buf.device  # collectives on the bucket's device: CPU for gloo, CUDA for NCCL
    payload = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    size = torch.tensor([payload.numel()], dtype=torch.int64, device=dev)
    sizes = [torch.zeros(1, dtype=torch.int64, device=dev) for _ in range(world)]
    dist.all_gather(sizes, size, group=state.group)
    sizes = [int(s.item()) for s in sizes]
    padded = torch.zeros(max(sizes), dtype=torch.uint8)
    padded[: payload.numel()] = payload
    got = [torch.zeros(max(sizes), dtype=torch.uint8, device=dev) for _ in range(world)]
    dist.all_gather(got, padded.to(dev), group=state.group)
    me = dist.get_rank(state.group)
    total = np.zeros_like(x)
    for i, (g, s) in enumerate(zip(got, sizes, strict=True)):
        total += mine if i == me else state.codec.decode(bytes(g[:s].cpu().numpy()), layout)["g"]
    state.bytes_sent += len(data)
    if bucket.is_last():
        state.steps += 1
    buf.copy_(torch.from_numpy(total / world).to(buf.device, buf.dtype))
    return _done(buf)


def summable_hook(state: CommState, bucket):
    """Shared-scale stochastic int8 codes, summed by an int8 all-reduce; returns the mean."""
    import torch
    import torch.distributed as dist

    buf = bucket.buffer()
    world = dist.get_world_size(state.group)
    x = buf.detach().to("cpu", torch.float32)
    peak = x.abs().max().reshape(1).to(buf.device)  # collectives on the bucket's device
    dist.all_reduce(peak, op=dist.ReduceOp.MAX, group=state.group)
    q = (2 ** state.bits - 1) // world  # sum of world codes stays within int8
    if q < 1:
        raise SpecError(f"{world} ranks leave no int8 headroom for {state.bits}-bit summable codes")
    scale = float(peak.item()) / q if peak.item() > 0 else 1.0
    g = torch.Generator().manual_seed(state.steps * 31 + dist.get_rank(state.group))
    u = x / scale
    codes = torch.floor(u + torch.rand(u.shape, generator=g)).clamp_(-q, q).to(buf.device, torch.int8)
    dist.all_reduce(codes, op=dist.ReduceOp.SUM, group=state.group)
    state.bytes_sent += codes.numel() + 4
    if bucket.is_last():
        state.steps += 1
    buf.copy_((codes.to(torch.float32) * (scale / world)).to(buf.device, buf.dtype))
    return _done(buf)
