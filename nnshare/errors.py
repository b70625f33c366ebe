"""The one exception hierarchy of nnshare (and its one warning category). Imports nothing.

``nnshare.format.errors`` re-exports the stream errors so the numpy-only receiver and old imports
keep working.
"""


class NNShareError(Exception):
    """Base class of every error nnshare raises on purpose."""


class FormatError(NNShareError, ValueError):
    """A bitstream is malformed, truncated, corrupted or of an unsupported version."""


class SpecError(NNShareError, ValueError):
    """A quantization spec, plan or budget is invalid (bit width out of range, unknown scheme...)."""


class ModelFileError(NNShareError, OSError):
    """A model file or folder is missing, unreadable or not a flat set of named tensors."""


class OutputError(NNShareError, OSError):
    """An output file or folder cannot be written."""


class UsageError(NNShareError):
    """A command line flag combination is refused (it would be ignored or is contradictory)."""


class ConvertError(NNShareError):
    """A QAT model cannot be converted to the tensors it was trained for."""


class NNShareWarning(UserWarning):
    """Something was sent or rebuilt with a loss the user should know about (a tensor decoded to
    zeros, side information larger than what it saves, a bookkeeping buffer filled in)."""
