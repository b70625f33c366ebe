"""The bitstream: numpy only, never torch (this is the receiver).

``read_stream(data, layout=None)`` parses and verifies a stream; ``decode_arrays`` returns the
reconstructed float32 arrays (``processes=2``: decoded by two processes). Everything here raises
:class:`FormatError` on a bad stream.
"""

from . import schemes as _schemes  # noqa: F401  (registers the built-in schemes)
from .accounting import Section
from .container import Stream, fingerprint, read_stream, write_stream
from .errors import FormatError, NNShareError, SpecError
from .spec import FloatTensor, QuantizedTensor, RawTensor


def decode_arrays(data, layout=None, *, processes: int = 1) -> dict:
    """Stream bytes -> {name: numpy array} (float32 for quantized and float tensors).

    ``processes``: decode the quantized records in up to this many processes (the caller and
    ``processes - 1`` forked children, split by element count; :mod:`.forked_decode`): the same
    arrays, bit for bit, for any count. Streams of fewer than 2**20 quantized values, and systems
    without fork, decode in one process. SpecError unless a positive integer."""
    from .forked_decode import decode_tensors

    tensors = decode_tensors(data, layout, processes=processes)
    return {name: t.dequantize() for name, t in tensors.items()}


def __getattr__(name: str):
    # QuantSpec is the affine sender config (nnshare.quant); kept importable from here.
    if name == "QuantSpec":
        from ..quant.spec import QuantSpec

        return QuantSpec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FloatTensor",
    "FormatError",
    "NNShareError",
    "QuantSpec",
    "QuantizedTensor",
    "RawTensor",
    "Section",
    "SpecError",
    "Stream",
    "decode_arrays",
    "fingerprint",
    "read_stream",
    "write_stream",
]
