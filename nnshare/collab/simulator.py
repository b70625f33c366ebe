"""An in-process federated-averaging simulator for comparing update codecs (no engine needed).

Clients hold shards of a classification set (IID or Dirichlet label skew), train a small MLP for
``local_epochs`` of SGD from the broadcast, and send ``local - broadcast`` through a codec
(optionally with error feedback); the server averages what it decodes over the clients that
answered (partial participation, random dropouts) and adds it to the model. Every uplink byte
is the length of a real nnshare stream. A client whose reply fails to decode (truncated, coded
against another round's broadcast), or whose coding fails (its error-feedback state is another
client's), is left out of that round and reported in ``Run.rejections``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..format.errors import NNShareError, SpecError
from .codecs import Codec, fingerprint, layout_of
from .feedback import ErrorFeedback


def split(y: np.ndarray, clients: int, alpha: float | None, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices per client: IID (``alpha`` None) or Dirichlet(alpha) label proportions."""
    idx = rng.permutation(len(y))
    if alpha is None:
        return [np.sort(p) for p in np.array_split(idx, clients)]
    parts: list[list[int]] = [[] for _ in range(clients)]
    for c in np.unique(y):
        members = idx[y[idx] == c]
        share = rng.dirichlet(np.full(clients, alpha))
        cuts = (np.cumsum(share)[:-1] * len(members)).astype(int)
        for i, p in enumerate(np.split(members, cuts)):
            parts[i] += list(p)
    return [np.sort(np.array(p, np.int64)) for p in parts]


@dataclass
class Run:
    """Per-round centralised test accuracy and uplink bytes (summed over the clients heard)."""

    accuracy: list[float] = field(default_factory=list)
    uplink: list[int] = field(default_factory=list)
    rejections: list[tuple[int, int, str]] = field(default_factory=list)  # (round, client, why)

    @property
    def rejected(self) -> int:
        """Replies left out, over all rounds."""
        return len(self.rejections)

    def bytes_to(self, target: float) -> int | None:
        """Cumulative uplink bytes up to the first round whose accuracy reaches ``target``."""
        total = 0
        for acc, b in zip(self.accuracy, self.uplink, strict=True):
            total += b
            if acc >= target:
                return total
        return None


def _mlp(d_in: int, hidden: int, classes: int, seed: int):
    import torch

    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, classes))


def fedavg(
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    codec: Codec | ErrorFeedback | Sequence[Codec],
    *,
    clients: int = 10,
    rounds: int = 30,
    alpha: float | None = None,
    participation: float = 1.0,
    dropout: float = 0.0,
    local_epochs: int = 1,
    lr: float = 0.1,
    batch: int = 32,
    hidden: int = 128,
    seed: int = 0,
    tamper: Callable[[int, int, bytes], bytes] | None = None,
    state_of: Callable[[int, int], int] | None = None,
) -> Run:
    """Run FedAvg; ``data`` = (x_train, y_train, x_test, y_test) as float32 / int64 arrays.
    ``codec``: one codec for all clients, or a sequence of one codec per client.
    ``tamper(round, client, bytes) -> bytes`` lets a test corrupt replies on the wire;
    ``state_of(round, client) -> client`` which client's error-feedback state a client is
    handed (a mix-up to detect)."""
    import torch

    x_tr, y_tr, x_te, y_te = data
    rng = np.random.default_rng(seed)
    shards = split(y_tr, clients, alpha, rng)
    model = _mlp(x_tr.shape[1], hidden, int(y_tr.max()) + 1, seed)
    ef = codec if isinstance(codec, ErrorFeedback) else None
    per_client = isinstance(codec, list | tuple)
    if per_client and len(codec) != clients:
        raise SpecError(f"{len(codec)} codecs for {clients} clients")
    states = {c: ef.new_state(str(c)) for c in range(clients)} if ef else {}
    xt, yt = torch.from_numpy(x_te), torch.from_numpy(y_te)
    run = Run()
    for r in range(rounds):
        glob = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
        base = fingerprint(glob)
        picked = rng.choice(clients, max(1, int(round(participation * clients))), replace=False)
        heard = [c for c in picked if rng.random() >= dropout]
        deltas, up = [], 0
        for c in heard:
            local = _mlp(x_tr.shape[1], hidden, int(y_tr.max()) + 1, seed)
            local.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in glob.items()})
            opt = torch.optim.SGD(local.parameters(), lr=lr)
            sx, sy = torch.from_numpy(x_tr[shards[c]]), torch.from_numpy(y_tr[shards[c]])
            g = torch.Generator().manual_seed(seed * 100003 + r * 1009 + int(c))
            for _ in range(local_epochs):
                for b in torch.randperm(len(sy), generator=g).split(batch):
                    opt.zero_grad()
                    torch.nn.functional.cross_entropy(local(sx[b]), sy[b]).backward()
                    opt.step()
            delta = {k: v.detach().numpy() - glob[k] for k, v in local.state_dict().items()}
            cseed = (seed * 7919 + r * 104729 + int(c)) & 0xFFFFFFFF
            estimate = None
            if ef:
                held = states[state_of(r, int(c)) if state_of else c]
                try:
                    data_b, estimate = ef.step(delta, held, str(c), seed=cseed, base=base)
                except NNShareError as e:  # nothing sent
                    run.rejections.append((r, int(c), f"{type(e).__name__}: {e}"))
                    continue
                inner = ef.codec
            else:
                inner = codec[int(c)] if per_client else codec
                data_b = inner.encode(delta, cseed, base)
            if tamper is not None:
                data_b = tamper(r, int(c), data_b)
            up += len(data_b)
            try:
                decoded = inner.decode(data_b, layout_of(delta), base)
            except NNShareError as e:
                run.rejections.append((r, int(c), f"{type(e).__name__}: {e}"))
                continue
            # EF21: the server's estimate of a client's update is its running sum g_i, which the
            # client's copy (``estimate``) equals while every reply arrives
            deltas.append(estimate if ef and ef.kind == "ef21" else decoded)
        if deltas:
            new = {k: glob[k] + np.mean([d[k] for d in deltas], axis=0) for k in glob}
            model.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in new.items()})
        with torch.no_grad():
            run.accuracy.append(float((model(xt).argmax(1) == yt).float().mean()))
        run.uplink.append(up)
    return run


def digits(seed: int = 0, test: int = 360) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits, scaled to [0, 1], split into train and ``test``."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    p = np.random.default_rng(seed).permutation(len(y))
    te, tr = p[:test], p[test:]
    return x[tr], y[tr], x[te], y[te]
