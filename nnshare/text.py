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
