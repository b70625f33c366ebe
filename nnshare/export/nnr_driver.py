"""Run NNCodec (MPEG NNR, ISO/IEC 15938-17) for nnshare's NNR export; a standalone script.

Executed by the Python that has ``nncodec==2.1.3`` installed (its own venv; it needs numpy<2),
never imported by nnshare. Usage: ``python nnr_driver.py JOB.json``.

- ``{"mode": "encode", "input": X.npz, "output": Y.nnr, "qp": {name: int}, "qp_density": 7}``:
  codes the float32 arrays of X.npz with uniform reconstruction (no dependent quantization, no RD
  rounding), the step size of each tensor fixed by its qp.
- ``{"mode": "decode", "input": Y.nnr, "output": Z.npz}``: writes ``<name>`` (float32 values),
  ``<name>.levels`` (int32 quantization levels) and ``<name>.qp`` plus ``__qp_density__``.

torchvision is stubbed during the import: NNCodec imports it at module level, the coding path
never uses it, and the registry's build does not load against CPU torch.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.abc
import importlib.machinery
import io
import json
import sys
from unittest import mock

import numpy as np


class _Stub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name == "torchvision" or name.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        m = mock.MagicMock(name=spec.name)
        m.__path__, m.__spec__, m.__name__ = [], spec, spec.name
        return m

    def exec_module(self, module):
        pass


def import_nncodec():
    """NNCodec's ``nnc`` and ``nnc_core.coder`` modules, imported with torchvision stubbed."""
    stub = _Stub()
    sys.meta_path.insert(0, stub)
    try:
        import nncodec.nnc as nnc
        from nncodec.nnc_core import coder
    finally:
        sys.meta_path.remove(stub)
        for k in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
            del sys.modules[k]
    return nnc, coder


def _model_info():
    flags = ("mps_sparsification_flag", "lps_sparsification_flag", "mps_pruning_flag",
             "lps_pruning_flag", "mps_unification_flag", "lps_unification_flag",
             "mps_decomposition_performance_map_flag", "lps_decomposition_performance_map_flag")
    return {"parameter_type": {}, "parameter_dimensions": {}, "parameter_index": {},
            "block_identifier": {}, "topology_storage_format": None,
            "topology_compression_format": None, "performance_maps": {"mps": {}, "lps": {}},
            "performance_map_flags": {f: {} for f in flags}}


def main() -> None:
    job = json.loads(open(sys.argv[1]).read())
    nnc, coder = import_nncodec()
    quiet = contextlib.redirect_stdout(io.StringIO())
    if job["mode"] == "encode":
        with np.load(job["input"], allow_pickle=False) as z:
            params = {k: np.ascontiguousarray(z[k], dtype=np.float32) for k in z.files}
        qp = {k: np.int32(v) for k, v in job["qp"].items()}
        with quiet:
            bs = nnc.compress(params, bitstream_path=None, return_bitstream=True, verbose=False,
                              qp=int(next(iter(qp.values()))), qp_density=int(job["qp_density"]),
                              qp_per_tensor=qp, use_dq=False, lambda_scale=0.0, opt_qp=False,
                              param_opt=True, codebook_mode=0)
        with open(job["output"], "wb") as f:
            f.write(bytes(bs))
        return
    data = bytearray(open(job["input"], "rb").read())
    with quiet:
        dec = coder.decode(copy.deepcopy(data), _model_info())
        values = nnc.decompress(bytearray(data))
    out = {"__qp_density__": np.asarray(dec["qp_density"], np.int32)}
    for name, v in values.items():
        out[name] = np.asarray(v, np.float32)
        out[f"{name}.levels"] = np.asarray(dec["parameters"][name], np.int32)
        out[f"{name}.qp"] = np.asarray(dec["qp"][name], np.int32)
    np.savez(job["output"], **out)


if __name__ == "__main__":
    main()
