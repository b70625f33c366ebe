"""Runtime formats for a stream: compressed-tensors folders, ONNX QDQ models and MPEG NNR
bitstreams (via NNCodec); quantized modules in place live in :mod:`nnshare.torch`.

Optional dependencies are imported inside the functions that need them.
"""

from .compressed_tensors import to_compressed_tensors
from .errors import ExportError
from .onnx_qdq import to_onnx

__all__ = ["ExportError", "to_compressed_tensors", "to_onnx"]
