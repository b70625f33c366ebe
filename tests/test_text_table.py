"""nnshare.text.table: the plain table `nnshare inspect` prints (aligned, escaped, untruncated)."""

from nnshare.text import table


def test_table_aligns_escapes_and_never_truncates():
    long = "encoder.layers.0.self_attention.query_key_value_projection.weight" * 3
    out = table(["tensor", "bits"], [["a\x1b[31m", "8.00"], [long, "12.50"], ["名前", "4"]],
                right={"bits"}, title="t\x07")
    lines = out.split("\n")
    assert lines[0] == "t\\x07"  # control characters escaped, in the title too
    assert "a\\x1b[31m" in out and "\x1b" not in out
    assert long in out  # whole, whatever the width
    body = lines[1:]
    widths = {len(ln) + ln.count("名") + ln.count("前") for ln in body}  # wide characters count twice
    assert len(widths) == 1
    assert body[3].endswith("│  8.00 │") and body[4].endswith("│ 12.50 │")  # right-aligned
    assert body[0].startswith("┌") and body[-1].startswith("└") and len(body) == 7
