"""Where a person's own words end: the sign-off and signature below a message's last value.

Part of the parse stage, used by ``parsers.template`` on the text under each
label. A value runs on until the next label, and the lines a mail client or
a person adds at the end ("Thanks,\\nKelly", "Regards, Zack", a name and title
block, "Sent from my iPhone") are not part of it. The reply-parsing libraries
in use (quotequail, mail-parser-reply) find quoted history; mail-parser-reply
also guesses signatures, but it cuts at any line starting with "Thanks," or
"- " and loses real text (see ``parsers.quotes``), so the sign-off is found
here, only after a blank line and only where what follows is short, with the
library's own lists of sign-offs in the languages we read (Mit freundlichen
Grüßen, Cordialement, Saludos, …) beside ours. Pure functions on lines.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from mailparser_reply.constants import MAIL_LANGUAGES

from parsers.quotes import REPLY_HEADER_LANGUAGES

__all__ = ["MAX_SIGN_OFF_LINES", "drop_sign_off", "is_closing"]

# English closings districts write, beside mail-parser-reply's own lists of
# sign-offs in the languages read for reply headers (`parsers.quotes`).
_OUR_CLOSINGS = ("thanks(?: so much| again| in advance)?", "thank you(?: so much| again| in advance)?", "many thanks",
                 "thx", "ty", "regards", "best", "best regards", "kind regards", "warm regards", "warmest regards",
                 "best wishes", "all the best", "sincerely", "respectfully", "cheers", "take care")


def _library_closings() -> tuple[str, ...]:
    """mail-parser-reply's sign-off patterns, less their trailing commas and the non-word ones ('/\\w+')."""
    found = []
    for language in REPLY_HEADER_LANGUAGES:
        for pattern in MAIL_LANGUAGES.get(language, {}).get("signatures", []):
            pattern = pattern.rstrip(",").strip()
            if pattern[:1].isalpha() or pattern.startswith("(?:"):
                found.append(pattern)
    return tuple(found)


# A closing alone on a line, or followed by a name on the same line ("Thanks, Kelly", "Cheers - Zack").
# The name is capitalised, so "Thanks, that worked." is no closing.
_CLOSING = re.compile(
    r"^(?i:" + "|".join((*_OUR_CLOSINGS, *_library_closings())) + r")"
    r"\s*[,.!]?(?:\s*[-–—]?\s*[A-Z][\w.'’-]*(?:\s+[A-Z][\w.'’-]*){0,2})?\s*$"
)
# A sign-off, or a signature block, is at most this many lines.
MAX_SIGN_OFF_LINES = 6


def is_closing(line: str) -> bool:
    """Whether ``line`` is a sign-off ("Thanks,", "Regards, Zack")."""
    return bool(_CLOSING.match(line.strip()))


def drop_sign_off(lines: Sequence[str], sender_name: str = "") -> list[str]:
    """``lines`` without a trailing sign-off or signature block that follows a blank line.

    A block counts when it is at most MAX_SIGN_OFF_LINES lines and starts with
    a closing ("Thanks,", "Regards, Zack") or with the sender's name (a name
    and title block: "Zack Morris" / "Technology Director").
    """
    names = _names(sender_name)
    for start in range(1, len(lines)):
        if lines[start - 1].strip() or not lines[start].strip():
            continue
        if sum(1 for line in lines[start:] if line.strip()) > MAX_SIGN_OFF_LINES:
            continue
        if is_closing(lines[start]) or _starts_with_name(lines[start], names):
            return list(lines[:start])
    return list(lines)


def _names(sender_name: str) -> tuple[str, ...]:
    """The sender's full name and first name, compared without case; nothing for an empty name."""
    words = re.sub(r"[\"(),]", " ", sender_name).split()
    if not words:
        return ()
    if "," in sender_name and len(words) >= 2:  # "Morris, Zack" as Outlook writes it
        words = [*words[1:], words[0]]
    return tuple(dict.fromkeys((" ".join(words).casefold(), words[0].casefold())))


def _starts_with_name(line: str, names: tuple[str, ...]) -> bool:
    """The line is the name alone, or the name and a title after a separator ("Zack Morris | IT")."""
    first = re.split(r"\s*(?:[|,]|\s[-–—]\s)\s*", line.strip(), maxsplit=1)[0]
    return " ".join(first.split()).casefold() in names
