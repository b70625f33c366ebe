"""MPEG NNR (ISO/IEC 15938-17) bitstreams via NNCodec 2.1.3, where nnshare's quantization maps.

NNR reconstructs every tensor as ``level * step`` with one step per tensor,
``step = (2**d + (qp mod 2**d)) * 2**((qp >> d) - d)`` (qp_density ``d``; here d = 7, so a step
is any number with an 8-bit mantissa: every bf16 value, every power of two).

Representable, and written so NNCodec's decoder returns nnshare's values bit for bit:

- affine, symmetric, per tensor, one width, with the scale on the step grid (every
  ``scale_dtype="bf16"`` scale; fp16/fp32 scales only when their mantissa fits 8 bits): the
  codes are the NNR levels and the scale is the step;
- float tensors whose values lie on a power-of-two lattice with levels below 2**31 (fp16 and bf16
  tensors of moderate dynamic range usually do; fp32 biases usually do not).

Not representable (ExportError naming the tensor): asymmetric codes (NNR has no zero point), per
channel and per group scales (one step per tensor), per-channel widths, scales off the grid, other
schemes (minifloat, codebook, ...), integer (raw) tensors, fp32 tensors off any lattice.

NNCodec needs numpy<2 and builds a C++ extension, so it runs in its own Python as a subprocess
(``python=`` or ``$NNSHARE_NNCODEC_PYTHON``; bench/nncodec/setup_venv.sh makes one).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..format.records import Tensor
from ..format.spec import FloatTensor, QuantizedTensor, QuantSpec
from .errors import ExportError
from .stream import describe, stream_tensors

QP_DENSITY = 7
TARGET = "NNR"
MAX_LEVEL = 2**31 - 1
DRIVER = Path(__file__).with_name("nnr_driver.py")


def nnr_step(qp: int, density: int = QP_DENSITY) -> float:
    """NNR's step size for ``qp`` at qp_density ``density`` (exact, as a Python float)."""
    k = 1 << density
    return float((k + (qp & (k - 1))) * 2.0 ** ((qp >> density) - density))


def qp_of_step(step: float, density: int = QP_DENSITY) -> int | None:
    """The qp whose step equals ``step`` exactly, or None when ``step`` is off the grid."""
    s = float(step)
    if not np.isfinite(s) or s <= 0:
        return None
    m, e = np.frexp(s)  # s = m * 2**e, m in [0.5, 1)
    shift = int(e) - 1
    mul = s / 2.0 ** (shift - density)
    if mul != int(mul) or not (1 << density) <= mul < (2 << density):
        return None
    qp = (shift << density) + int(mul) - (1 << density)
    return qp if nnr_step(qp, density) == s else None


def lattice_qp(values: np.ndarray) -> int | None:
    """The qp of the coarsest power-of-two step on which every value is an integer level below
    2**31 (all-zero tensors: step 1), or None."""
    v = np.asarray(values, np.float64).ravel()
    nz = v[v != 0]
    if nz.size == 0:
        return 0
    if not np.all(np.isfinite(nz)):
        return None
    m, e = np.frexp(nz)  # exact: nz = m * 2**e with m having <= 53 significant bits
    mant = (np.abs(m) * 2.0**53).astype(np.int64)
    tz = np.zeros(mant.shape, np.int64)
    rest = mant.copy()
    for b in (32, 16, 8, 4, 2, 1):  # count trailing zero bits
        low = (rest & ((1 << b) - 1)) == 0
        tz += np.where(low, b, 0)
        rest = np.where(low, rest >> b, rest)
    k = int(np.min(e.astype(np.int64) - 53 + tz))
    if np.max(np.abs(nz)) / 2.0**k > MAX_LEVEL:
        return None
    return k << QP_DENSITY


def nnr_qp(name: str, t: Tensor) -> int:
    """The qp that carries tensor ``t`` exactly in NNR, or ExportError saying why it cannot."""
    if isinstance(t, QuantizedTensor):
        spec = t.spec
        where = f"tensor {name!r} ({describe(spec)})"
        if spec.scheme != "affine":
            raise ExportError(f"{TARGET} codes uniform levels; {where} uses scheme {spec.scheme!r}")
        if not spec.symmetric:
            raise ExportError(f"{TARGET} has no zero point; {where} is asymmetric")
        if spec.granularity != "tensor":
            raise ExportError(f"{TARGET} has one step size per tensor; {where} has one scale per "
                              f"{spec.granularity}")
        scale = float(np.asarray(t.params["scale"], np.float32).reshape(()))
        qp = qp_of_step(scale)
        if qp is None:
            raise ExportError(f"{TARGET} steps have an 8-bit mantissa; {where} has scale {scale!r} "
                              "(quantize with scale_dtype='bf16')")
        return qp
    if isinstance(t, FloatTensor):
        qp = lattice_qp(t.dequantize())
        if qp is None:
            raise ExportError(f"{TARGET} codes integer levels of one step; float tensor {name!r} "
                              f"({t.dtype}) is on no power-of-two lattice below 2**31 levels "
                              "(its values span too wide a range; quantize it per tensor instead)")
        return qp
    raise ExportError(f"{TARGET} via NNCodec codes float tensors; tensor {name!r} is integer "
                      f"({t.values.dtype})")


def nnr_plan(tensors: Mapping[str, Tensor]) -> dict[str, int]:
    """qp per tensor for a whole stream; ExportError on the first tensor NNR cannot carry."""
    return {name: nnr_qp(name, t) for name, t in tensors.items()}


def _python(python: str | os.PathLike | None) -> str:
    p = python or os.environ.get("NNSHARE_NNCODEC_PYTHON")
    if not p:
        raise ExportError("NNR export runs NNCodec 2.1.3 in its own Python: pass python= / "
                          "--nncodec-python or set NNSHARE_NNCODEC_PYTHON "
                          "(bench/nncodec/setup_venv.sh makes one)")
    if not Path(p).exists():
        raise ExportError(f"NNCodec Python {p} does not exist")
    return str(p)


def _run(python: str, job: dict, folder: str) -> None:
    path = os.path.join(folder, "job.json")
    with open(path, "w") as f:
        json.dump(job, f)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([python, str(DRIVER), path], capture_output=True, text=True, env=env,
                       timeout=3600)
    if r.returncode != 0:
        lines = (r.stderr or r.stdout).strip().splitlines()
        raise ExportError(f"NNCodec failed: {lines[-1] if lines else 'exit ' + str(r.returncode)}")


def to_nnr(stream: bytes | Mapping[str, Tensor], *, layout=None, python=None,
           verify: bool = True) -> bytes:
    """NNR bitstream of a stream's tensors (names and shapes inside). With ``verify`` the
    bitstream is decoded again and must give nnshare's values bit for bit (ExportError if not)."""
    tensors = stream_tensors(stream, layout)
    qps = nnr_plan(tensors)
    py = _python(python)
    with tempfile.TemporaryDirectory() as d:
        np.savez(os.path.join(d, "in.npz"), **{n: np.ascontiguousarray(t.dequantize(), np.float32)
                                               for n, t in tensors.items()})
        _run(py, {"mode": "encode", "input": os.path.join(d, "in.npz"),
                  "output": os.path.join(d, "out.nnr"), "qp": qps, "qp_density": QP_DENSITY}, d)
        data = Path(d, "out.nnr").read_bytes()
    if verify:
        back = read_nnr(data, python=py)
        for name, t in tensors.items():
            want = np.asarray(t.dequantize(), np.float32)
            got = back[name][0] if name in back else None
            if got is None or got.shape != want.shape or not np.array_equal(got, want):
                raise ExportError(f"NNCodec did not reproduce tensor {name!r} exactly")
    return data


def read_nnr(data: bytes, *, python=None) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """Decode an NNR bitstream with NNCodec: {name: (float32 values, int32 levels, qp)}."""
    py = _python(python)
    with tempfile.TemporaryDirectory() as d:
        Path(d, "in.nnr").write_bytes(bytes(data))
        _run(py, {"mode": "decode", "input": os.path.join(d, "in.nnr"),
                  "output": os.path.join(d, "out.npz")}, d)
        with np.load(os.path.join(d, "out.npz"), allow_pickle=False) as z:
            density = int(z["__qp_density__"])
            names = [k for k in z.files if not k.endswith((".levels", ".qp")) and k != "__qp_density__"]
            out = {n: (z[n], z[f"{n}.levels"], int(z[f"{n}.qp"])) for n in names}
    if density != QP_DENSITY:
        raise ExportError(f"NNR bitstream has qp_density {density}; nnshare reads {QP_DENSITY}")
    return out


def from_nnr(data: bytes, *, python=None, mode: str = "self") -> bytes:
    """An nnshare stream from an NNR bitstream written by :func:`to_nnr` (or any NNR bitstream
    with qp_density 7): tensors whose levels fit 16 bits and whose step is a float32 become
    affine symmetric per-tensor codes (scale = step); the rest float32 values."""
    from ..format import write_stream

    tensors: dict[str, Tensor] = {}
    for name, (values, levels, qp) in read_nnr(data, python=python).items():
        step = nnr_step(qp)
        peak = int(np.max(np.abs(levels))) if levels.size else 0
        bits = max(2, int(peak).bit_length() + 1)
        on_grid = np.float32(step) == step and np.array_equal(
            np.multiply(levels, np.float32(step), dtype=np.float32), values)
        if bits <= 16 and on_grid and levels.ndim >= 1:
            spec = QuantSpec(bits=bits, symmetric=True, granularity="tensor")
            tensors[name] = QuantizedTensor(levels.astype(np.int32), {"scale": np.asarray(step, np.float32)},
                                            spec, tuple(values.shape))
        else:
            tensors[name] = FloatTensor(np.asarray(values, np.float32), "fp32")
    out, _ = write_stream(tensors, mode)
    return out
