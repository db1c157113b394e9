"""The ``Field: value`` body template: message text to labelled field texts.

Part of the parse stage, after ``parsers.message`` has turned the raw mail
into text. It finds the labels a person filled in (any spelling the schema
knows, as passed in ``labels``) and the text under each, tolerating what mail
clients and people do to a template: bold/italic markers, bullets, odd
spacing, a label on its own line, a signature, a quoted reply history and a
"Thanks," at the end. It does not type values (``parsers.values``) or decide
which fields a case type needs (``routing``).
"""
from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from parsers.quotes import visible_reply
from parsers.signoff import drop_sign_off

__all__ = ["FieldText", "TemplateParse", "first_line", "parse_template", "parse_visible_text"]

_BULLET = re.compile(r"^(?:[-*•·‣◦▪–]|\u2022)\s+")
_EMPHASIS = "*_"
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\ufeff"), None)
_SPACES = re.compile(r"[\s\u00a0\u2007\u202f]+")


@dataclass(frozen=True)
class FieldText:
    """The text a person wrote under one label."""

    label: str
    written: str
    text: str
    line: int


@dataclass(frozen=True)
class TemplateParse:
    """Every labelled field in body order, the free text before them and labels given twice."""

    fields: tuple[FieldText, ...]
    preamble: str
    repeated: tuple[str, ...]

    def get(self, label: str) -> FieldText | None:
        """The field with canonical label ``label`` (case-insensitive), or None."""
        wanted = label_key(label)
        return next((f for f in self.fields if label_key(f.label) == wanted), None)


@dataclass(frozen=True)
class _LabelLine:
    label: str
    written: str
    inline_value: str


def parse_template(text: str, labels: Mapping[str, Sequence[str]], sender_name: str = "") -> TemplateParse:
    """Split a whole body into labelled fields, after cutting its quoted history and signature."""
    return parse_visible_text(visible_reply(text), labels, sender_name)


def parse_visible_text(text: str, labels: Mapping[str, Sequence[str]], sender_name: str = "") -> TemplateParse:
    """Split the new text of a message (see `parsers.quotes`) into labelled fields.

    ``labels`` maps every spelling to canonical labels. A value runs to the
    next label; a sign-off or signature block after a blank line (one that
    starts with ``sender_name`` included) is not part of it.
    """
    known = _keyed(labels)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    preamble: list[str] = []
    found: list[tuple[_LabelLine, int, list[str]]] = []
    for number, line in enumerate(lines, start=1):
        label_line = match_label(line, known)
        if label_line is not None:
            found.append((label_line, number, [label_line.inline_value]))
        elif found:
            found[-1][2].append(line)
        else:
            preamble.append(line)
    return _assemble(preamble, found, sender_name)


# The label keys of each spelling mapping seen, by identity: a configuration's forms are made once and never
# changed, and keying their hundred-odd spellings again for every message cost more than reading its lines.
_KEYED: dict[int, tuple[Mapping[str, Sequence[str]], dict[str, str]]] = {}


def _keyed(labels: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """``labels`` keyed by `label_key`, each spelling to its first canonical label."""
    held = _KEYED.get(id(labels))
    if held is None or held[0] is not labels:  # the mapping itself is held, so its id is not reused meanwhile
        if len(_KEYED) >= 8:
            _KEYED.clear()
        held = _KEYED[id(labels)] = (labels, {label_key(spelling): canonical[0]
                                              for spelling, canonical in labels.items() if canonical})
    return held[1]


def _assemble(preamble: list[str], found: list[tuple[_LabelLine, int, list[str]]], sender_name: str
              ) -> TemplateParse:
    fields: list[FieldText] = []
    repeated: list[str] = []
    for label_line, number, value_lines in found:
        value_lines = drop_sign_off(value_lines, sender_name)
        if any(f.label == label_line.label for f in fields):
            if label_line.label not in repeated:
                repeated.append(label_line.label)
            continue
        fields.append(FieldText(label_line.label, label_line.written, _join(value_lines), number))
    if not found:
        preamble = drop_sign_off(preamble, sender_name)
    return TemplateParse(tuple(fields), _join(preamble), tuple(repeated))


def _join(lines: list[str]) -> str:
    """A value's lines as one text; the lines below the label lose only the indentation they share
    (text converted from HTML indents whole ``<div>``s; a pasted log keeps its own)."""
    first, below = (lines[0], lines[1:]) if lines else ("", [])
    rest = textwrap.dedent("\n".join(line.rstrip() for line in below))
    return "\n".join([first.rstrip(), rest]).strip() if below else first.strip()


def first_line(text: str) -> str:
    """The value of a single-line field (a date, a choice, an address, a phone number): its first line."""
    return next((line.strip() for line in text.split("\n") if line.strip()), "")


def label_key(label: str) -> str:
    """A label reduced for comparison: case, inner spacing and a trailing '?' do not count."""
    return _SPACES.sub(" ", label.translate(_INVISIBLE)).strip().rstrip("?").strip().casefold()


def match_label(line: str, known: Mapping[str, str]) -> _LabelLine | None:
    """The label a line starts with, if it is one of ``known`` (keys made with label_key)."""
    body = _BULLET.sub("", line.translate(_INVISIBLE).lstrip(" \t\u00a0"))
    before, colon, after = body.partition(":")
    candidate = before.strip().strip(_EMPHASIS).strip()
    canonical = known.get(label_key(candidate))
    if canonical is not None and (colon or not after):
        value = after.lstrip(_EMPHASIS + " \t\u00a0") if before.strip() != candidate else after
        return _LabelLine(canonical, candidate, value.strip())
    return _match_question(body, known)


def _match_question(body: str, known: Mapping[str, str]) -> _LabelLine | None:
    """A question label answered on its line without a colon: "Who is impacted? Teachers"."""
    before, mark, after = body.partition("?")
    candidate = before.strip().strip(_EMPHASIS).strip()
    canonical = known.get(label_key(candidate))
    if mark and canonical is not None and canonical.endswith("?"):
        return _LabelLine(canonical, candidate + "?", after.lstrip(_EMPHASIS).strip())
    return None

