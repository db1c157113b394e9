"""RFC 3676 ``format=flowed`` text re-joined into its paragraphs: part of the parse stage.

Thunderbird (and other clients) send plain text as format=flowed: a line that
ends in a space is a soft break, and the person's paragraph goes on on the
next line. The standard library and mail-parser hand such text over with the
soft breaks as hard ones, so a Description would keep the client's 72-column
wrapping. ``parsers.message`` re-joins every flowed text part here, before
anything reads the text. The one maintained-looking package for this on PyPI
(formatflowed) has had no release since 2016; the decoding is a dozen lines.
Pure functions on strings.
"""
from __future__ import annotations

__all__ = ["unflow"]

_SIGNATURE_SEPARATOR = "-- "


def unflow(text: str, *, delsp: bool = False) -> str:
    """``text`` with its soft line breaks removed (RFC 3676 section 4.2).

    Quote depth (the leading ``>`` characters) is kept; a flowed line joins
    only the next line of the same depth. Space-stuffing is undone, and with
    ``delsp`` (DelSp=yes) the space before a soft break is deleted too.
    """
    lines: list[str] = []
    pending: str | None = None
    pending_depth = 0
    for line in text.replace("\r\n", "\n").split("\n"):
        depth, content = _quote_depth(line)
        if pending is not None and depth != pending_depth:
            lines.append(_quoted(pending_depth, pending))
            pending = None
        soft = content.endswith(" ") and content != _SIGNATURE_SEPARATOR
        piece = content[:-1] if soft and delsp else content
        pending, pending_depth = (pending or "") + piece, depth
        if not soft:
            lines.append(_quoted(depth, pending))
            pending = None
    if pending is not None:
        lines.append(_quoted(pending_depth, pending))
    return "\n".join(lines)


def _quote_depth(line: str) -> tuple[int, str]:
    """The number of leading ``>`` and the line's content, space-stuffing removed."""
    depth = len(line) - len(line.lstrip(">"))
    content = line[depth:]
    return depth, content[1:] if content.startswith(" ") else content


def _quoted(depth: int, content: str) -> str:
    return f"{'>' * depth} {content}" if depth else content
