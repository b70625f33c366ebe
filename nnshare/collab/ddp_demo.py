"""Data-parallel training of a digits MLP on CPU (gloo) with each communication hook, for tests
and ``bench/ddp.py``: ``run(world=2, hooks=(...), epochs=...) -> {hook: {accuracy, bytes}}``.

Every process trains on its own shard; all hooks run in the same process group one after the
other from the same initial weights. Loopback only (127.0.0.1).
"""

from __future__ import annotations

import gc
import json
import os
import socket
import tempfile

import numpy as np

HOOKS = ("allreduce", "fp16", "powersgd", "nnshare-allgather", "nnshare-summable")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str, hooks: tuple[str, ...], epochs: int) -> None:
    import torch
    import torch.distributed as dist
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook
    from torch.nn.parallel import DistributedDataParallel as DDP

    from .ddp import CommState, allgather_hook, summable_hook
    from .simulator import digits

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    x_tr, y_tr, x_te, y_te = digits()
    mine = np.arange(rank, len(y_tr), world)
    sx, sy = torch.from_numpy(x_tr[mine]), torch.from_numpy(y_tr[mine])
    results = {}
    for name in hooks:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
        model = DDP(net)
        n_params = sum(p.numel() for p in net.parameters())
        state = None
        if name == "fp16":
            model.register_comm_hook(None, default_hooks.fp16_compress_hook)
        elif name == "powersgd":
            state = powerSGD_hook.PowerSGDState(None, matrix_approximation_rank=2, start_powerSGD_iter=2)
            model.register_comm_hook(state, powerSGD_hook.powerSGD_hook)
        elif name == "nnshare-allgather":
            state = CommState()
            model.register_comm_hook(state, allgather_hook)
        elif name == "nnshare-summable":
            state = CommState(error_feedback=False)
            model.register_comm_hook(state, summable_hook)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        g = torch.Generator().manual_seed(rank)
        steps = 0
        for _ in range(epochs):
            for b in torch.randperm(len(sy), generator=g).split(32):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(sx[b]), sy[b]).backward()
                opt.step()
                steps += 1
        with torch.no_grad():
            acc = float((net(torch.from_numpy(x_te)).argmax(1) == torch.from_numpy(y_te)).float().mean())
        if name in ("nnshare-allgather", "nnshare-summable"):
            sent = state.bytes_sent / steps
        elif name == "fp16":
            sent = 2 * n_params
        elif name == "powersgd":
            # rank-2 factors of both weight matrices after the warm-up; biases all-reduced in fp32
            mats = [p for p in net.parameters() if p.ndim == 2]
            sent = sum(4 * 2 * (m.shape[0] + m.shape[1]) for m in mats) + 4 * sum(
                p.numel() for p in net.parameters() if p.ndim != 2)
        else:
            sent = 4 * n_params
        results[name] = {"accuracy": acc, "bytes_per_step": float(sent), "params": n_params, "steps": steps}
        # the DDP reducer and its hook state hold the process group: free them while it lives
        del model, opt, state
        gc.collect()
    if rank == 0:
        with open(out, "w") as f:
            json.dump(results, f)
    dist.barrier()
    dist.destroy_process_group()


def run(world: int = 2, hooks: tuple[str, ...] = HOOKS, epochs: int = 3) -> dict:
    """Train with every hook on ``world`` CPU processes; returns rank 0's results."""
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "ddp.json")
        mp.start_processes(_worker, args=(world, _free_port(), out, tuple(hooks), epochs), nprocs=world,
                           start_method="spawn")
        with open(out) as f:
            return json.load(f)


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
