"""The receiver path never imports torch (design.md: nnshare.format is numpy only)."""

import subprocess
import sys
from pathlib import Path

GOLDEN = Path(__file__).parent.parent / "data" / "golden_v1_entropy_self.nnsh"


def test_decoding_a_stream_does_not_import_torch():
    code = (
        "import sys\n"
        "from nnshare.format import decode_arrays\n"
        f"arrays = decode_arrays(open({str(GOLDEN)!r}, 'rb').read())\n"
        "assert set(arrays) == {'w', 'u', 'b'}\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
