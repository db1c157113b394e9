"""Text for people: how the command line shows stored values in text mode.

`out` prints every line the command line writes for people, made safe for a
terminal by `safe`: values from mail (subjects, senders, reasons, comments,
filenames) can carry ESC, CR and other control characters that a terminal
would obey; they are shown as visible escapes (``\\x1b``) instead. A value
keeps its line breaks only where the command line itself splits it into lines.

`shown` turns a stored value into what staff read (``yes``/``no``, lists
joined, ``-`` for nothing); `case_fields` prints a case's Description and
the type's own fields, the same for `intake show` and the dry run.
"""
from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import IO, Any

MISSING = "-"
INDENT = "  "

# C0 (with tab, newline and CR), DEL, C1, and the Unicode controls that reorder or break text.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: str) -> str:
    """`text` with every control character replaced by a visible escape: one line, nothing a terminal obeys."""
    return _CONTROLS.sub(_escape, text)


def out(*lines: str, file: IO[str] | None = None, flush: bool = False) -> None:
    """Print each of `lines` on a line of its own, made safe by `safe`."""
    stream = file or sys.stdout
    for line in lines:
        print(safe(line), file=stream, flush=flush)


def shown(value: Any) -> str:
    """A stored value as staff read it: never Python's ``None``, ``True`` or ``[...]``."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(shown(item) for item in value) or MISSING
    text = str(value)
    return text if text.strip() else MISSING


def labelled(label: str, value: Any, indent: str = INDENT) -> list[str]:
    """``label: value``; the later lines of a multi-line value indented one step further."""
    first, *rest = shown(value).splitlines() or [MISSING]
    return [f"{indent}{label}: {first}", *(f"{indent}{INDENT}{line}" if line else "" for line in rest)]


def block(label: str, text: str | None, indent: str = INDENT) -> list[str]:
    """A long text under its label, every line indented (a Description)."""
    if text is None or not text.strip():
        return [f"{indent}{label}: {MISSING}"]
    return [f"{indent}{label}:", *(f"{indent}{INDENT}{line}" if line else "" for line in text.splitlines())]


def case_fields(description: str | None, fields: Mapping[str, Any], written: Mapping[str, str] | None = None
                ) -> list[str]:
    """A case's Description and its type's own fields, as `intake show` and the dry run print them.

    A choice read from other words (a Module filed under Not Applicable, a
    misspelling) shows the words as written beside it, so staff see what the
    contact meant.
    """
    lines = block("Description", description)
    for label, value in fields.items():
        as_written = (written or {}).get(label, "")
        if _reads_differently(value, as_written):
            value = f"{shown(value)} (written: '{' '.join(as_written.split())}')"
        lines += labelled(label, value)
    return lines


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _reads_differently(value: Any, written: str) -> bool:
    if not isinstance(value, str) or not written.strip() or "\n" in value or _ISO_DATE.match(value):
        return False
    return " ".join(written.split()).casefold() != " ".join(value.split()).casefold()


def billable(value: bool | None) -> str:
    """The case type is one whose work may be charged for; the case itself is not priced."""
    return "may be billable" if value else "no"
