"""An inline reply's answers, each under the quoted line it answers: part of the parse stage.

People answer questions where they were asked: between the quoted lines of
the mail they reply to ("> Which calendar?" / "The 25-26 one."). quotequail
reports one quote block and the text around it, and the ``>`` lines left in
that text carry the questions the answers need; dropping them makes a
comment of bare answers ("The 25-26 one.", "Bayside High."). So when new text
follows a ``>`` block, the comment keeps each answer with the last quoted
paragraph before it, quoted once (nested ``> >`` levels flattened), the way
Request Tracker and Zammad show an interleaved reply. Pure functions on text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["answers_in_context", "is_inline_reply"]

_QUOTED = re.compile(r"^[ \t]*>")
_MARKERS = re.compile(r"^(?:[ \t]*>)+[ \t]?")
# The question a person answers is near the answer: at most this many quoted lines are kept as its context.
MAX_CONTEXT_LINES = 3


@dataclass(frozen=True)
class _Block:
    quoted: bool
    lines: tuple[str, ...]


def is_inline_reply(text: str) -> bool:
    """True when new (unquoted, non-blank) text follows a block of ``>`` lines."""
    seen_quote = False
    for line in text.split("\n"):
        if _QUOTED.match(line):
            seen_quote = True
        elif seen_quote and line.strip():
            return True
    return False


def answers_in_context(text: str, top: str | None = None) -> str:
    """The new text of an inline reply: the text above the first quote (``top`` when the caller
    has it without the attribution line), then each answer under the quoted paragraph it answers."""
    blocks = _blocks(text)
    first_quote = next(i for i, block in enumerate(blocks) if block.quoted)
    above = top if top is not None else "\n".join(line for b in blocks[:first_quote] for line in b.lines)
    parts = [above.strip("\n")] if above.strip() else []
    pairs = list(zip(blocks[first_quote:], blocks[first_quote + 1:], strict=False))
    for index, (previous, block) in enumerate(pairs):
        if block.quoted or not any(line.strip() for line in block.lines):
            continue
        signed_off = index == len(pairs) - 1 and _is_signature_line(block.lines)
        context = _last_paragraph(previous.lines) if previous.quoted and not signed_off else []
        answer = "\n".join(block.lines).strip("\n")
        parts.append("\n".join([*(f"> {line}" for line in context), *([""] if context else []), answer]))
    return "\n\n".join(parts)


def _is_signature_line(lines: tuple[str, ...]) -> bool:
    """A last block of one short line without a sentence's punctuation ("Zack", "Thanks, Zack") signs
    off rather than answers: the quote above it (often our own signature) is no question."""
    written = [line.strip() for line in lines if line.strip()]
    return len(written) == 1 and len(written[0].split()) <= 3 and not re.search(r"[.?!:]$", written[0])


def _blocks(text: str) -> list[_Block]:
    """Runs of quoted and unquoted lines; a blank line between quoted lines stays in the quote."""
    blocks: list[_Block] = []
    for line in text.split("\n"):
        quoted = bool(_QUOTED.match(line)) or (not line.strip() and bool(blocks) and blocks[-1].quoted)
        if blocks and blocks[-1].quoted == quoted:
            blocks[-1] = _Block(quoted, (*blocks[-1].lines, line))
        else:
            blocks.append(_Block(quoted, (line,)))
    return blocks


def _last_paragraph(quoted: tuple[str, ...]) -> list[str]:
    """The last non-empty paragraph of a quote, without its markers, at most MAX_CONTEXT_LINES lines."""
    lines = [_MARKERS.sub("", line).rstrip() for line in quoted]
    while lines and not lines[-1].strip():
        lines.pop()
    start = len(lines)
    while start > 0 and lines[start - 1].strip():
        start -= 1
    return lines[start:][-MAX_CONTEXT_LINES:]
