"""``nnshare encode MODEL --eval pkg.module:function --max-drop 0.5% [--calib FILE]`` end to end,
and every bad --eval / --max-drop / --calib: one line, status 2, no output file."""

import json
import textwrap

import pytest
import torch

import nnshare
from nnshare.digits import accuracy, digits_data, digits_mlp, train_classifier

MODULE = textwrap.dedent('''
    import torch
    from nnshare.digits import accuracy, digits_data, digits_mlp

    _, _, XTE, YTE = digits_data()
    CALLS = []

    def model():
        return digits_mlp((32,))

    def evaluate(state):
        CALLS.append(1)
        m = model()
        m.load_state_dict(state)
        return accuracy(m.eval(), XTE, YTE)

    def loss(state):
        m = model()
        m.load_state_dict(state)
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(m(XTE), YTE))

    def broken(state):
        raise RuntimeError("no GPU here")

    NOT_A_FUNCTION = 3
''')


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("task")
    xtr, ytr, xte, yte = digits_data()
    m = train_classifier(digits_mlp((32,)), xtr, ytr, epochs=20).eval()
    torch.save(m.state_dict(), d / "m.pt")
    torch.save(xtr[:96], d / "calib.pt")
    torch.save((xtr[:96], ytr[:96]), d / "labelled.pt")
    torch.save({"weights": xtr[:4]}, d / "odd.pt")
    (d / "taskmod_cli.py").write_text(MODULE)
    (d / "nomodel_cli.py").write_text("def evaluate(state):\n    return 1.0\n")
    (d / "samples").mkdir()
    for i in range(3):
        torch.save(xtr[32 * i:32 * (i + 1)], d / "samples" / f"{i}.pt")
    (d / "folder_cli.py").write_text(MODULE + textwrap.dedent('''
        LOADED = []

        def load_calib(path):
            LOADED.append(str(path))
            return [torch.load(f, weights_only=True) for f in sorted(path.glob("*.pt"))]
    '''))
    return d, accuracy(m, xte, yte)


def in_process(args, capsys):
    from nnshare.cli import main

    try:
        main([str(a) for a in args])
        rc = 0
    except SystemExit as e:
        rc = int(e.code or 0)
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.filterwarnings("ignore:the stream does not carry")
@pytest.mark.parametrize("extra", [[], ["--calib", "calib.pt"], ["--calib", "labelled.pt",
                                                                  "--sensitivity", "fisher"]])
def test_encode_within_a_task_budget(folder, extra, capsys, monkeypatch):
    d, ref = folder
    monkeypatch.chdir(d)
    rc, out, err = in_process(["encode", "m.pt", "-o", "t.nnsh", "--eval", "taskmod_cli:evaluate",
                               "--max-drop", "0.5%", "--json", *extra], capsys)
    assert rc == 0, err
    s = json.loads(out)
    data = (d / "t.nnsh").read_bytes()
    assert s["bytes"] == len(data) and s["float_metric"] == pytest.approx(ref)
    _, _, xte, yte = digits_data()
    got = accuracy(nnshare.decode(data, into=digits_mlp((32,))), xte, yte)
    assert got == pytest.approx(s["metric"]) and got >= 0.995 * ref
    assert s["evaluations"] == len(s["trace"]) + 1
    assert s["bits_per_param"] < 6  # float32 is 32
    families = {p["family"] for p in s["trace"]}
    # with calibration: per-tensor steps, the uniform plan, and (when 1-D tensors are measured)
    # the uniform step for the matrices with measured 1-D steps
    assert families == {"uniform"} if not extra else {"task", "uniform"} <= families <= {
        "channel", "task", "hybrid", "uniform"}


@pytest.mark.filterwarnings("ignore:the stream does not carry")
def test_calibration_folder_read_by_the_modules_loader(folder, capsys, monkeypatch):
    d, ref = folder
    monkeypatch.chdir(d)
    rc, out, err = in_process(["encode", "m.pt", "-o", "f.nnsh", "--eval", "folder_cli:evaluate",
                               "--max-drop", "0.5%", "--calib", "samples", "--json"], capsys)
    assert rc == 0, err
    import folder_cli

    assert folder_cli.LOADED == ["samples"]
    s = json.loads(out)
    assert {"task", "hybrid", "uniform"} <= {p["family"] for p in s["trace"]} and s["metric"] >= 0.995 * ref


def test_lower_is_better_and_absolute_drop(folder, capsys, monkeypatch):
    d, _ = folder
    monkeypatch.chdir(d)
    rc, out, err = in_process(["encode", "m.pt", "-o", "l.nnsh", "--eval", "taskmod_cli:loss",
                               "--max-drop", "0.02", "--lower-is-better"], capsys)
    assert rc == 0, err
    assert "evaluations" in out and "lower is better" in out and (d / "l.nnsh").exists()


BAD = [
    (["--eval", "taskmod_cli", "--max-drop", "1%"], "--eval must be pkg.module:function"),
    (["--eval", ":evaluate", "--max-drop", "1%"], "--eval must be pkg.module:function"),
    (["--eval", "no_such_module_xyz:f", "--max-drop", "1%"], "cannot import module 'no_such_module_xyz'"),
    (["--eval", "taskmod_cli:nope", "--max-drop", "1%"], "has no attribute 'nope'"),
    (["--eval", "taskmod_cli:NOT_A_FUNCTION", "--max-drop", "1%"], "is not a function"),
    (["--eval", "taskmod_cli:broken", "--max-drop", "1%"], "raised RuntimeError: no GPU here"),
    (["--eval", "taskmod_cli:evaluate", "--max-drop", "abc%"], "--max-drop must be a percentage"),
    (["--eval", "taskmod_cli:evaluate", "--max-drop", "-1%"], "--max-drop must be >= 0"),
    (["--eval", "taskmod_cli:evaluate", "--max-drop", "150%"], "below 100%"),
    (["--eval", "taskmod_cli:evaluate", "--max-drop", "nan"], "--max-drop must be >= 0 and finite"),
    (["--eval", "taskmod_cli:evaluate", "--max-drop", ""], "--max-drop must be a percentage"),
    (["--eval", "taskmod_cli:evaluate"], "needs both --eval and --max-drop"),
    (["--max-drop", "1%"], "needs both --eval and --max-drop"),
    (["--calib", "calib.pt"], "--calib applies to a task budget"),
    (["--sensitivity", "hessian"], "--sensitivity applies to a task budget"),
    (["--eval", "taskmod_cli:evaluate", "--max-drop", "1%", "--sensitivity", "hessian"],
     "--sensitivity needs calibration data"),
    (["--eval", "taskmod_cli:evaluate", "--max-drop", "1%", "--sensitivity", "magic", "--calib", "calib.pt"],
     "--sensitivity must be one of output, hessian, fisher"),
    (["--eval", "taskmod_cli:evaluate", "--max-drop", "1%", "--calib", "calib.pt", "--sensitivity",
      "hessian"], "needs labelled calibration data"),
    (["--eval", "nomodel_cli:evaluate", "--max-drop", "1%", "--calib", "calib.pt"], "define model()"),
    (["--eval", "taskmod_cli:evaluate", "--max-drop", "1%", "--calib", "missing.pt"],
     "calibration file not found"),
    (["--eval", "taskmod_cli:evaluate", "--max-drop", "1%", "--calib", "odd.pt"], "--calib odd.pt must hold"),
    (["--eval", "taskmod_cli:evaluate", "--max-drop", "1%", "--calib", "."], "is a folder"),
    (["--eval", "taskmod_cli:evaluate", "--max-drop", "1%", "--bits", "4"],
     "--bits has no effect with a task budget"),
    (["--eval", "taskmod_cli:evaluate", "--max-drop", "1%", "--budget-bytes", "900"],
     "--budget-bytes has no effect with a task budget"),
]


@pytest.mark.parametrize("args, msg", BAD)
def test_bad_task_flags_one_line_status_2(folder, args, msg, capsys, monkeypatch):
    d, _ = folder
    monkeypatch.chdir(d)
    rc, out, err = in_process(["encode", "m.pt", "-o", "x.nnsh", *args], capsys)
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and msg in lines[0], err
    assert "Traceback" not in err and out == ""
    assert not (d / "x.nnsh").exists()
