"""Text shown to people that may come from a stream (tensor names): never markup, never raw
terminal control sequences."""

from __future__ import annotations


def printable(s: str) -> str:
    """``s`` with every non-printable character (C0/C1 controls such as ESC, bidi overrides,
    other format characters) written as a ``\\xNN`` / ``\\uNNNN`` / ``\\UNNNNNNNN`` escape;
    printable text, including non-ASCII letters, is kept as it is."""
    if s.isprintable():
        return s
    out = []
    for ch in s:
        if ch.isprintable():
            out.append(ch)
        else:
            o = ord(ch)
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
    return "".join(out)


def _width(s: str) -> int:
    """Terminal columns of ``s``: East Asian wide and full-width characters take two."""
    if s.isascii():
        return len(s)
    from unicodedata import east_asian_width

    return sum(2 if east_asian_width(c) in "WF" else 1 for c in s)


def table(headers: list[str], rows: list[list[str]], right: set[str] = frozenset(),
          title: str | None = None) -> str:
    """A plain box-drawn table (no terminal width limit, nothing truncated or wrapped): columns
    named in ``right`` are right-aligned. Every cell goes through :func:`printable`."""
    cells = [[printable(str(c)) for c in row] for row in [headers, *rows]]
    widths = [max(_width(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = []
        for h, c, w in zip(headers, row, widths, strict=True):
            pad = " " * (w - _width(c))
            parts.append(pad + c if h in right else c + pad)
        return "│ " + " │ ".join(parts) + " │"

    def rule(left: str, mid: str, end: str) -> str:
        return left + mid.join("─" * (w + 2) for w in widths) + end

    out = [] if title is None else [printable(title)]
    out += [rule("┌", "┬", "┐"), line(cells[0]), rule("├", "┼", "┤")]
    out += [line(r) for r in cells[1:]]
    out.append(rule("└", "┴", "┘"))
    return "\n".join(out)
