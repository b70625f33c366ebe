"""The one exception type a receiver raises for a bad stream."""


class NNShareError(Exception):
    """Base class of every error nnshare raises on purpose."""


class FormatError(NNShareError, ValueError):
    """A bitstream is malformed, truncated, corrupted or of an unsupported version."""


class SpecError(NNShareError, ValueError):
    """A quantization spec, plan or budget is invalid (bit width out of range, unknown scheme...)."""
