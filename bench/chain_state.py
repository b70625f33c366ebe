"""Chain state size on a realistic update sequence: federated-style rounds of an MLP on
scikit-learn's digits, each round coded as a chained update against the receiver's model.

    .venv/bin/python bench/chain_state.py

Writes bench/results/chain_state.json and docs/benchmarks/chain_state.md: per round the update
bytes, the chain state bytes both sides keep (format v2: an entropy-coded NNSH stream of the
codes temporal contexts use) against the float32 model and against v1's int32-per-parameter state.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(v, "1")
ROOT = Path(__file__).resolve().parent.parent

import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from nnshare.share.delta import decode_update, encode_update  # noqa: E402

ROUNDS = 8


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    xtr, ytr, xte, yte = x[:1400], y[:1400], x[1400:], y[1400:]
    net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64),
                              torch.nn.ReLU(), torch.nn.Linear(64, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)

    def arrays():
        return {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}

    def acc(state):
        keep = {k: v.detach().clone() for k, v in net.state_dict().items()}
        net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        with torch.no_grad():
            a = float((net(xte).argmax(1) == yte).float().mean())
        net.load_state_dict(keep)
        return a

    out = {}
    for target in (20.0, 14.0):
        torch.manual_seed(0)
        for p in net.parameters():
            torch.nn.init.normal_(p, 0, 0.1)
        rx = arrays()  # the receiver's model, the base of every round
        tx_state = rx_state = None
        rows = []
        for r in range(ROUNDS):
            net.load_state_dict({k: torch.from_numpy(v) for k, v in rx.items()})
            for i in range(0, 1400, 50):  # one local epoch
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(net(xtr[i:i + 50]), ytr[i:i + 50])
                loss.backward()
                opt.step()
            new = arrays()
            enc = encode_update(new, rx, state=tx_state, sqnr_db=target)
            rx, rx_state = decode_update(enc.data, rx, state=rx_state)
            assert rx_state == enc.state
            tx_state = enc.state
            n = sum(a.size for a in new.values())
            rows.append({
                "round": r + 1, "params": n, "float32_bytes": 4 * n, "update_bytes": len(enc.data),
                "update_bits_per_param": 8 * len(enc.data) / n, "state_bytes": enc.state.nbytes,
                "state_fraction_of_float32": enc.state.nbytes / (4 * n),
                "v1_state_bytes": 4 * n, "models": sorted(set(enc.models.values())),
                "accuracy": acc(rx),
            })
        out[f"sqnr_{target:g}dB"] = rows
    res = {"rounds": ROUNDS, "runs": out,
           "worst_state_fraction": max(r["state_fraction_of_float32"] for rs in out.values() for r in rs)}
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "chain_state.json").write_text(json.dumps(res, indent=2) + "\n")
    lines = ["# Chain state of chained updates", "",
             "`bench/chain_state.py`: an MLP 64-128-64-10 (17,226 parameters) trained on scikit-learn's "
             "digits, one local epoch per round; each round is coded as a chained update (TCQ, an "
             "update SQNR target) against the receiver's model. The chain state both sides keep is "
             "an entropy-coded v2 stream of the weight codes the next round's temporal contexts use "
             "(format v1 kept int32 per parameter, as large as the float32 model).", "",
             f"Worst state size: **{res['worst_state_fraction']:.3f} x the float32 model** "
             "(target <= 0.125).", ""]
    for name, rs in out.items():
        lines += [f"## {name.replace('sqnr_', 'SQNR ').replace('dB', ' dB')}", "",
                  "| round | update bytes | bits/param | state bytes | state / float32 "
                  "| v1 state bytes | accuracy |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['round']} | {r['update_bytes']:,} | {r['update_bits_per_param']:.2f} | "
                  f"{r['state_bytes']:,} | {r['state_fraction_of_float32']:.3f} | {r['v1_state_bytes']:,} | "
                  f"{r['accuracy']:.3f} |" for r in rs]
        lines.append("")
    (ROOT / "docs" / "benchmarks" / "chain_state.md").write_text("\n".join(lines))
    print(json.dumps({k: v for k, v in res.items() if k != "runs"}, indent=2))
    for name, rs in out.items():
        for r in rs:
            print(name, r["round"], r["update_bytes"], r["state_bytes"],
                  f"{r['state_fraction_of_float32']:.3f}", f"{r['accuracy']:.3f}")


if __name__ == "__main__":
    main()
