"""The command line facing hostile inputs (issue 11): stream paths must be regular files within
a size cap, names from streams are printed as text, reserved names are refused, multi-file
outputs are all-or-nothing and no temporary file survives a failure or a SIGTERM."""

import os
import subprocess
import sys

import numpy as np
import pytest

from nnshare.format import FloatTensor, write_stream

CLI = [sys.executable, "-m", "nnshare.cli"]


def in_process(args, capsys):
    from nnshare.cli import main

    try:
        main([str(a) for a in args])
        rc = 0
    except SystemExit as e:
        rc = int(e.code or 0)
    out = capsys.readouterr()
    return rc, out.out, out.err


def one_error_line(rc, err, *msgs):
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and all(m in lines[0] for m in msgs), err


def stream_file(path, names):
    data, _ = write_stream({n: FloatTensor(np.arange(3, dtype=np.float32) + i, "fp32")
                            for i, n in enumerate(names)})
    path.write_bytes(data)
    return path


def test_device_and_fifo_streams_are_refused_without_reading(tmp_path, capsys):
    rc, _, err = in_process(["decode", "/dev/zero", "-o", tmp_path / "x.safetensors"], capsys)
    one_error_line(rc, err, "/dev/zero is not a regular file")
    fifo = tmp_path / "f.nnsh"
    os.mkfifo(fifo)
    r = subprocess.run([*CLI, "inspect", str(fifo)], capture_output=True, text=True, timeout=120)
    one_error_line(r.returncode, r.stderr, "not a regular file")
    assert not (tmp_path / "x.safetensors").exists()


def test_stream_file_over_the_size_cap_is_refused(tmp_path, capsys):
    from nnshare.cli_util import MAX_STREAM_FILE_BYTES, read_bytes
    from nnshare.errors import ModelFileError

    big = tmp_path / "big.nnsh"
    with open(big, "wb") as f:  # sparse: no disk space used
        f.truncate(MAX_STREAM_FILE_BYTES + 1)
    rc, _, err = in_process(["decode", big, "-o", tmp_path / "x.safetensors"], capsys)
    one_error_line(rc, err, "more than the 1,073,741,824 a stream file may have")
    small = tmp_path / "s.nnsh"
    small.write_bytes(b"NNSH" + bytes(20))
    with pytest.raises(ModelFileError, match="24 bytes, more than the 23"):
        read_bytes(small, limit=23)
    assert read_bytes(small, limit=24) == b"NNSH" + bytes(20)


def test_inspect_prints_names_as_text_never_markup(tmp_path, capsys):
    names = ["[/]", "[link=http://evil.example]fc.weight[/link]", "esc\x1b[31mred\x07", "bidi\u202eevil"]
    s = stream_file(tmp_path / "n.nnsh", names)
    rc, out, err = in_process(["inspect", s], capsys)
    assert rc == 0, err
    assert "[/]" in out and "[link=http://evil.example]fc.weight[/link]" in out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "esc\\x1b[31mred\\x07" in out and "bidi\\u202eevil" in out


def test_error_lines_escape_control_characters(tmp_path, capsys):
    from nnshare.cli import _one_line

    assert _one_line("tensor 'a\x1b[2J'\nfailed") == "tensor 'a\\x1b[2J' failed"


def test_reserved_safetensors_name_is_refused_and_nothing_written(tmp_path, capsys):
    s = stream_file(tmp_path / "m.nnsh", ["__metadata__", "w"])
    out = tmp_path / "d.safetensors"
    rc, _, err = in_process(["decode", s, "-o", out], capsys)
    one_error_line(rc, err, "'__metadata__' is reserved")
    assert not out.exists() and os.listdir(tmp_path) == ["m.nnsh"]


@pytest.fixture(scope="module")
def update_files(tmp_path_factory):
    from safetensors.numpy import save_file

    d = tmp_path_factory.mktemp("u")
    rng = np.random.default_rng(0)
    base = {"w": rng.standard_normal((16, 32)).astype(np.float32)}
    new = {"w": base["w"] + 0.01 * rng.standard_normal((16, 32)).astype(np.float32)}
    save_file(base, str(d / "base.safetensors"))
    save_file(new, str(d / "new.safetensors"))
    return d


def test_unwritable_state_out_fails_before_any_output(update_files, tmp_path, capsys):
    u = tmp_path / "u.nnsh"
    missing = tmp_path / "no" / "such" / "s.nnsh"
    rc, _, err = in_process(["encode", update_files / "new.safetensors", "--base",
                             update_files / "base.safetensors", "-o", u, "--target-sqnr", "20",
                             "--state-out", missing], capsys)
    one_error_line(rc, err, "cannot write", "s.nnsh")
    assert not u.exists() and os.listdir(tmp_path) == []
    rc, _, err = in_process(["encode", update_files / "new.safetensors", "--base",
                             update_files / "base.safetensors", "-o", u, "--target-sqnr", "20"],
                            capsys)
    assert rc == 0, err
    dec = tmp_path / "d.safetensors"
    for target in (dec, tmp_path / "folder"):
        rc, _, err = in_process(["decode", u, "--base", update_files / "base.safetensors", "-o",
                                 target, "--state-out", missing], capsys)
        one_error_line(rc, err, "cannot write", "s.nnsh")
        assert not target.exists()
    assert sorted(os.listdir(tmp_path)) == ["u.nnsh"]  # no temporary file left either
    state = tmp_path / "s.nnsh"
    rc, _, err = in_process(["decode", u, "--base", update_files / "base.safetensors", "-o", dec,
                             "--state-out", state], capsys)
    assert rc == 0 and dec.exists() and state.exists(), err


_SIGTERM_CHILD = r"""
import os, signal, sys
import nnshare.outputs as o
real = os.fsync
def fsync(fd):  # the kill arrives while the output file is being written
    os.kill(os.getpid(), signal.SIGTERM)
    real(fd)
o.os.fsync = fsync
from nnshare.cli import main
main(sys.argv[1:])
"""


def test_sigterm_while_writing_leaves_no_temporary_file(tmp_path):
    s = stream_file(tmp_path / "m.nnsh", ["w"])
    out = tmp_path / "d.safetensors"
    r = subprocess.run([sys.executable, "-c", _SIGTERM_CHILD, "decode", str(s), "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 143 and r.stderr.strip() == "terminated", r.stderr
    assert os.listdir(tmp_path) == ["m.nnsh"]


def test_encode_refuses_weights_whose_scale_overflows_and_leaves_no_file(tmp_path, capsys):
    from safetensors.numpy import save_file

    w = np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)
    w[0, 0] = 3e38  # scale = 3e38 / 127; scale * 2**8 overflows float32
    save_file({"w": w}, str(tmp_path / "big.safetensors"))
    out = tmp_path / "e.nnsh"
    rc, _, err = in_process(["encode", tmp_path / "big.safetensors", "-o", out, "--bits", "8"],
                            capsys)
    one_error_line(rc, err, "overflows float32")
    assert not out.exists() and os.listdir(tmp_path) == ["big.safetensors"]
