"""Feature tensors (activations at a split point, embeddings) as ``NNSH`` v2 streams of kind
"features": quantized per tensor (or per channel) and entropy-coded when that is smaller."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..format.container import read_stream, write_stream
from ..format.errors import FormatError, SpecError
from ..quant.affine import as_float_array, quantize
from ..quant.spec import QuantSpec


def encode_features(
    features: np.ndarray | Mapping[str, object],
    bits: int = 8,
    *,
    symmetric: bool = False,
    granularity: str = "tensor",
    axis: int = 0,
    entropy: str = "auto",
    mode: str = "self",
) -> bytes:
    """Quantize feature tensors at ``bits`` bits (affine) and write a "features" stream.

    ``features``: one array (named ``"x"``) or a mapping of names to arrays; ``bits=0`` keeps
    them in float32. Asymmetric by default (post-ReLU activations are one-sided).
    """
    arrays = {"x": features} if not isinstance(features, Mapping) else dict(features)
    if not arrays:
        raise SpecError("no feature tensors to encode")
    tensors = {}
    for name, x in arrays.items():
        a = as_float_array(x)
        if bits == 0:
            from ..format.spec import FloatTensor

            tensors[str(name)] = FloatTensor(a)
            continue
        spec = QuantSpec(bits=bits, symmetric=symmetric, granularity=granularity,
                         axis=axis if granularity != "tensor" else 0)
        tensors[str(name)] = quantize(a, spec)
    data, _ = write_stream(tensors, mode, entropy=entropy, kind="features")
    return data


def decode_features(data: bytes | bytearray | memoryview, layout=None) -> dict[str, np.ndarray]:
    """{name: float32 array} of a "features" stream (FormatError for another kind)."""
    st = read_stream(data, layout)
    if st.kind != "features":
        raise FormatError(f"not a features stream: a {st.kind} stream")
    return {k: t.dequantize() for k, t in st.tensors.items()}
