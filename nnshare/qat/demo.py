"""A one-call QAT demonstration on sklearn's digits, for the command line.

``digits_qat(bits=2)`` trains a float MLP, quantizes it by PTQ and by QAT with the same plan,
encodes the QAT result, decodes it into a fresh model and reports accuracies and stream sizes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..plan import uniform
from .convert import encode
from .prepare import prepare
from .train import fit


def digits_qat(
    bits: int = 2,
    ranges: str = "beta_gamma",
    granularity: str = "channel",
    symmetric: bool = True,
    epochs: int = 5,
    lr: float = 1e-3,
    seed: int = 0,
) -> dict:
    """Float vs PTQ vs QAT on digits (MLP 64-32-10) with ``bits``-bit weights.

    Returns accuracies in [0, 1] (``float``, ``ptq``, ``qat``, ``decoded`` - the model rebuilt
    from the stream, equal to ``qat`` by construction), ``stream_bytes`` (self-describing mode),
    ``stream_bits_agreed`` and ``float32_bits`` (32 x number of parameters).
    """
    import nnshare
    from nnshare.digits import accuracy, digits_data, digits_mlp, train_classifier

    torch.manual_seed(seed)
    xtr, ytr, xte, yte = digits_data(seed)
    model = train_classifier(digits_mlp((32,), seed), xtr, ytr, epochs=25, seed=seed)
    plan = uniform(bits, granularity, symmetric=symmetric)
    ptq = prepare(model, plan, "minmax")  # a fresh min/max quantizer is exactly PTQ
    q = prepare(model, plan, ranges)
    res = fit(q, xtr, ytr, F.cross_entropy, epochs=epochs, lr=lr, seed=seed)
    data = encode(q, "self")
    receiver = nnshare.decode(data, into=digits_mlp((32,), seed + 1))
    n_params = sum(p.numel() for p in model.parameters())
    return {
        "bits": bits,
        "ranges": ranges,
        "granularity": granularity,
        "float": accuracy(model, xte, yte),
        "ptq": accuracy(ptq, xte, yte),
        "qat": accuracy(q, xte, yte),
        "decoded": accuracy(receiver, xte, yte),
        "diverged": res.diverged,
        "stream_bytes": len(data),
        "stream_bits_agreed": 8 * len(encode(q, "agreed")),
        "float32_bits": 32 * n_params,
    }
