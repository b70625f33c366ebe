"""Pin math libraries to one thread for every test (2-core machines slow down badly otherwise)."""

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

torch.set_num_threads(1)


import pytest  # noqa: E402

#: (module, attribute) of every numba-compiled loop; None there makes the numpy/Python path run.
COMPILED = [
    ("nnshare.format.entropy.rans", "_encode_fast"),
    ("nnshare.format.entropy.rans", "_decode_fast"),
    ("nnshare.quant._entropy_fast", "_hist_fast"),
    ("nnshare.quant._entropy_fast", "_sq_means_fast"),
    ("nnshare.quant._entropy_fast", "_levels_fast"),
    ("nnshare.quant.tcq", "_viterbi_fast"),
    ("nnshare.quant.tcq", "_levels_fast"),
]


@pytest.fixture
def compiled_loops():
    """(module, attribute) of every numba-compiled loop."""
    return COMPILED


@pytest.fixture
def numpy_path(monkeypatch):
    """Run the pure numpy/Python paths instead of the numba-compiled loops (for this test)."""
    import importlib

    for mod, attr in COMPILED:
        monkeypatch.setattr(importlib.import_module(mod), attr, None)
