"""Pin math libraries to one thread for every test (2-core machines slow down badly otherwise)."""

import fcntl
import os
import subprocess
from pathlib import Path

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
    ("nnshare.quant._entropy_fast", "_counts_fast"),
    ("nnshare.quant._entropy_fast", "_ctx_fast"),
    ("nnshare.quant._entropy_fast", "_span_fast"),
    ("nnshare.quant._entropy_fast", "_kmeans_fast"),
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


_ROOT = Path(__file__).resolve().parents[1]
SETUP = _ROOT / "bench" / "nncodec" / "setup_venv.sh"
VENV = _ROOT / "bench" / ".nncodec-venv"


@pytest.fixture(scope="session")
def nncodec_python():
    """The NNCodec venv's python (bench/.nncodec-venv, built on first use; ``make test`` builds it
    first); skips only when it cannot be built, and says why."""
    given = os.environ.get("NNSHARE_NNCODEC_PYTHON")
    if given:
        return given
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / ".nncodec-venv.lock", "w") as lock:  # one build per tree at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True,
                           env=dict(os.environ, NNCODEC_VENV=str(VENV)))
    if r.returncode != 0:
        tail = " | ".join((r.stderr or r.stdout).strip().splitlines()[-3:])
        pytest.skip(f"the NNCodec venv could not be built ({SETUP.name} exit {r.returncode}): {tail}")
    return str(VENV / "bin" / "python")
