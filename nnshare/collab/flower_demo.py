"""A small Flower app on digits for tests and examples: numpy softmax regression (650 float32
parameters: ``w`` 64 x 10, ``b`` 10), one shard per SuperNode, the nnshare mod on the client.

``client_app(faults=...)`` injects faults on the wire for a round and partition, to show that
the server's round goes on without that client: ``"truncate"`` (the reply stream cut short),
``"replay"`` (the reply of the previous round sent again: coded against another broadcast) and
``"foreign-state"`` (the node's error-feedback state relabelled as another client's).
"""

from __future__ import annotations

import numpy as np

from .flower_mod import nnshare_mod
from .flower_wire import ARRAY_KEY, STATE_META, STYPE_UPDATE, flwr, to_array
from .simulator import digits, split

CLASSES = 10
LAST = "fault-last-reply"  # Context.state: the node's previous reply stream (for "replay")


def initial() -> dict[str, np.ndarray]:
    """The starting model (zeros)."""
    return {"w": np.zeros((64, CLASSES), np.float32), "b": np.zeros(CLASSES, np.float32)}


def accuracy(arrays: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(x @ arrays["w"] + arrays["b"], 1) == y))


def shard(partition: int, partitions: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x, y, _, _ = digits()
    idx = split(y, partitions, None, np.random.default_rng(seed))[partition]
    return x[idx], y[idx]


def local_train(arrays: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, *, epochs: int = 2,
                lr: float = 0.5, batch: int = 32, seed: int = 0) -> dict[str, np.ndarray]:
    """Minibatch SGD on cross-entropy (float64 math, float32 result); deterministic in ``seed``."""
    w, b = arrays["w"].astype(np.float64), arrays["b"].astype(np.float64)
    rng = np.random.default_rng(seed)
    onehot = np.eye(CLASSES)[y]
    for _ in range(epochs):
        for i in np.array_split(rng.permutation(len(y)), max(1, len(y) // batch)):
            z = x[i] @ w + b
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            g = (p - onehot[i]) / len(i)
            w -= lr * x[i].T @ g
            b -= lr * g.sum(0)
    return {"w": w.astype(np.float32), "b": b.astype(np.float32)}


def _fault_mod(faults: dict[tuple[int, int], str]):
    """A mod outside :func:`nnshare_mod` that damages what goes on the wire."""
    def mod(msg, ctxt, call_next):
        cfg = next(iter(msg.content.config_records.values()))
        rnd, part = int(cfg.get("server-round", 0)), int(ctxt.node_config["partition-id"])
        fault = faults.get((rnd, part))
        if fault == "foreign-state" and STATE_META in ctxt.state:
            meta = ctxt.state[STATE_META]
            meta["client"] = f"{meta['client']}-other"
        out = call_next(msg, ctxt)
        if out.has_error() or not out.content.array_records:
            return out
        key, rec = next(iter(out.content.array_records.items()))
        data = bytes(rec[ARRAY_KEY].data)
        if fault == "truncate":
            out.content[key] = flwr().ArrayRecord({ARRAY_KEY: to_array(data[: len(data) // 2], STYPE_UPDATE)})
        elif fault == "replay" and LAST in ctxt.state:
            old = bytes(ctxt.state[LAST]["data"])
            out.content[key] = flwr().ArrayRecord({ARRAY_KEY: to_array(old, STYPE_UPDATE)})
        ctxt.state[LAST] = flwr().ConfigRecord({"data": data})
        return out

    return mod


def client_app(faults: dict[tuple[int, int], str] | None = None, *, epochs: int = 2):
    """A Flower ClientApp training :func:`local_train` on its partition, with ``nnshare_mod``."""
    from flwr.clientapp import ClientApp

    app = flwr()
    mods = ([_fault_mod(dict(faults))] if faults else []) + [nnshare_mod]
    client = ClientApp(mods=mods)

    @client.train()
    def train(msg, ctxt):
        arrays = {k: v.numpy() for k, v in msg.content["arrays"].items()}
        part, parts = int(ctxt.node_config["partition-id"]), int(ctxt.node_config["num-partitions"])
        x, y = shard(part, parts)
        rnd = int(msg.content["config"].get("server-round", 0))
        local = local_train(arrays, x, y, epochs=epochs, seed=1000 * rnd + part)
        content = app.RecordDict({
            "arrays": app.ArrayRecord({k: app.Array(v) for k, v in local.items()}),
            "metrics": app.MetricRecord({"num-examples": len(y)}),
        })
        return app.Message(content, reply_to=msg)

    return client
