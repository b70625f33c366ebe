"""`nnshare serve` / `nnshare fetch` as processes on the loopback interface (bounded in time)."""

import re
import subprocess
import sys

import numpy as np
import pytest

CLI = [sys.executable, "-m", "nnshare.cli"]


def test_serve_fetch_with_injected_loss(tmp_path):
    data = np.random.default_rng(9).integers(0, 256, 60_000, dtype=np.uint8).tobytes()
    src = tmp_path / "m.nnsh"
    src.write_bytes(data)
    srv = subprocess.Popen([*CLI, "serve", str(src), "--port", "0", "--loss", "0.1", "--reorder",
                            "--timeout", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = srv.stdout.readline()
        port = re.search(r"127\.0\.0\.1:(\d+)", line).group(1)
        out = tmp_path / "got.nnsh"
        r = subprocess.run([*CLI, "fetch", f"127.0.0.1:{port}", "-o", str(out), "--timeout", "60"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == data and "bit-exact" in r.stdout
        rest, err = srv.communicate(timeout=60)
        assert srv.returncode == 0, err
        dropped = int(re.search(r"(\d+) dropped", rest).group(1))
        assert dropped > 0  # 10 % of 43 fragments, at least one retransmission round
    finally:
        if srv.poll() is None:
            srv.kill()


def _main(args, capsys, monkeypatch):
    from nnshare.cli import main

    monkeypatch.setattr(sys, "argv", ["nnshare", *args])
    with pytest.raises(SystemExit) as e:
        main()
    return e.value.code, capsys.readouterr().err


def test_fetch_errors_are_one_line(tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    for args, msg in [(["10.1.2.3:9"], "loopback interface only"), (["localhost"], "HOST:PORT"),
                      (["127.0.0.1:1", "--resume"], "no partial transfer"),
                      (["127.0.0.1:9", "--timeout", "0.3"], "timed out")]:  # nobody serves port 9
        code, err = _main(["fetch", *args, "-o", str(out)], capsys, monkeypatch)
        assert code == 2 and err.count("\n") == 1 and msg in err, err
        assert not out.exists()
    code, err = _main(["serve", str(out), "--port", "70000"], capsys, monkeypatch)
    assert code == 2 and "--port must be 0..65535" in err
