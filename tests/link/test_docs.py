"""The example in docs/link.md runs and prints what it says."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "link.md"


def test_link_doc_example(capsys):
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    exec(compile(code, str(DOC), "exec"), {})
    printed = capsys.readouterr().out.strip()
    claimed = re.search(r"# (\d+\.\d us), (\d+\.\d us)", code).groups()
    assert printed == f"{claimed[0]}, of which {claimed[1]} per-PPDU costs"
