"""docs/guide.md runs as written: every python block and every `nnshare ...` line of its sh
blocks (``sh nncodec`` ones with NNCodec's venv, which ``make test`` builds), in order, in one
fresh folder."""

import re
import shlex
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide.md"


def blocks():
    text = GUIDE.read_text()
    return re.findall(r"```(python|sh|sh nncodec)\n(.*?)```", text, flags=re.S)


def test_guide_has_every_recipe():
    text = GUIDE.read_text()
    for heading in ("Recipe 1: share a small model over the air", "Recipe 2: compress a Hugging Face",
                    "Recipe 3: federated updates", "The Plan JSON schema", "Export to a runtime",
                    "### compressed-tensors", "### ONNX QDQ", "### MPEG NNR",
                    "### Quantized modules in place"):
        assert heading in text
    assert "Over the air: airtime, loss and a real transfer" in text  # the link recipe (docs/link.md)
    assert len(blocks()) >= 10


def nnshare_cli(args: list[str]) -> int:
    """Run the command line in this process (as the `nnshare` script would); its exit status."""
    from nnshare.cli import main

    try:
        main(args)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def test_guide_recipes_run(tmp_path, monkeypatch, capsys, request):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(GUIDE.parents[1]))
    ns: dict = {}
    for kind, code in blocks():
        if kind == "python":
            exec(compile(code, str(GUIDE), "exec"), ns)  # noqa: S102 - our own documentation
            continue
        for line in code.strip().splitlines():
            args = shlex.split(line)
            if kind == "sh nncodec":  # NNSHARE_NNCODEC_PYTHON=bench/... nnshare ...: the venv's python
                assert args[0].startswith("NNSHARE_NNCODEC_PYTHON="), line
                monkeypatch.setenv("NNSHARE_NNCODEC_PYTHON", request.getfixturevalue("nncodec_python"))
                args = args[1:]
            assert args[0] == "nnshare", line
            rc = nnshare_cli(args[1:])
            assert rc == 0, (line, capsys.readouterr().err)
