"""The receiver is numpy alone (design.md): every golden stream decodes in a process where torch,
constriction and numba cannot be imported."""

import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).parent.parent / "data"
GOLDEN = sorted(DATA.glob("*.nnsh"))

# Runs in a fresh interpreter: a meta-path finder refuses the optional packages before nnshare
# is imported, then every golden stream is decoded and compared with its stored values.
_CHILD = r"""
import sys
from pathlib import Path

BLOCKED = ("torch", "constriction", "numba", "llvmlite")


class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this test")
        return None


sys.meta_path.insert(0, Block())
import numpy as np
from nnshare.format import decode_arrays


def layout(path):
    out = []
    for line in path.read_text().splitlines():
        k, _, dims = line.partition(" ")
        out.append((k, tuple(int(d) for d in dims.split(",") if d)))
    return out


from nnshare.format import read_stream
from nnshare.format.chain import ChainState


def update(f):  # v2 updates and their chain state: base + record deltas, with numpy alone
    ref = np.load(f.with_name("golden_v2_update.npz"), allow_pickle=False)

    def part(p):
        return {k.split("/", 1)[1]: ref[k] for k in ref.files if k.startswith(p + "/")}

    state = ChainState.from_bytes(f.with_name("golden_v2_update_1_state.nnsh").read_bytes())
    if f.stem.endswith("_state"):
        for k, c in part("codes1").items():
            assert np.array_equal(state.codes[k], c), (f, k)
        return
    i = int(f.stem[-1])
    base = part(f"m{i - 1}")
    st = read_stream(f.read_bytes(), [(k, v.shape) for k, v in base.items()],
                     chain=state if i == 2 else None)
    for k, v in part(f"r{i}").items():
        assert np.array_equal(base[k] + st.tensors[k].dequantize(), v), (f, k)


done = 0
for f in map(Path, sys.argv[1:]):
    if f.name.startswith("golden_v2_update"):
        update(f)
        done += 1
        continue
    stem = f.stem.rsplit("_", 1)[0]  # golden_v1_entropy_agreed -> golden_v1_entropy
    lay = f.with_name(stem + ".layout")
    arrays = decode_arrays(f.read_bytes(), layout(lay) if f.stem.endswith("_agreed") else None)
    ref = f.with_name(stem + ".npz")
    if ref.exists():
        expected = np.load(ref, allow_pickle=False)
        assert sorted(arrays) == sorted(expected.files), f
        for k in expected.files:
            assert np.array_equal(arrays[k], expected[k]), (f, k)
    done += 1
loaded = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
assert not loaded, loaded
print(f"decoded {done} golden streams without torch, constriction, numba")
"""


def test_every_golden_stream_decodes_with_numpy_alone():
    assert any("entropy" in f.name for f in GOLDEN)  # the range-coded v1 streams are covered
    r = subprocess.run([sys.executable, "-c", _CHILD, *map(str, GOLDEN)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert f"decoded {len(GOLDEN)} golden streams" in r.stdout


def test_blocked_imports_really_fail():
    """The blocker itself works: importing a blocked package in the child raises ImportError."""
    code = _CHILD.split("import numpy as np")[0] + (
        "try:\n    import numba\nexcept ImportError:\n    print('blocked')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "blocked", r.stderr


_CHILD_PAYLOADS = _CHILD.split("import numpy as np")[0] + r"""
import numpy as np
from nnshare.format.entropy import decode_codes, encode_codes
from nnshare.format.errors import SpecError

data = np.load(sys.argv[1], allow_pickle=False)
x = data["x"]
for key in data.files:
    if key.startswith("payload"):
        assert np.array_equal(decode_codes(data[key].tobytes(), x.size, -128, 127), x), key
try:
    encode_codes(x, -128, 127, coder="range")
except SpecError as e:
    assert "constriction" in str(e), e
else:
    raise AssertionError("coder='range' encoded without constriction")
assert np.array_equal(decode_codes(encode_codes(x, -128, 127), x.size, -128, 127), x)
loaded = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
assert not loaded, loaded
print("ok")
"""


def test_new_payloads_of_every_coder_decode_with_numpy_alone(tmp_path):
    """Payloads written here (rANS by default, the opt-in range coder, sequential and plain
    models) decode in the blocked process; there the opt-in range coder is refused by name."""
    import numpy as np
    import pytest

    from nnshare.format.entropy import encode_codes

    pytest.importorskip("constriction")
    rng = np.random.default_rng(5)
    x = np.rint(rng.laplace(size=3000) * 5).clip(-128, 127).astype(np.int32)
    payloads = {f"payload_{m}_{c}": np.frombuffer(
        encode_codes(x, -128, 127, models=m, row_len=60, coder=c), np.uint8)
        for m in ("iid", "rowcol+neighbour") for c in ("auto", "range")}
    np.savez(tmp_path / "p.npz", x=x, **payloads)
    r = subprocess.run([sys.executable, "-c", _CHILD_PAYLOADS, str(tmp_path / "p.npz")],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
