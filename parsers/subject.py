"""What a subject line says: reply prefixes, a case-number tag, a case-type prefix, a template request.

Part of the parse stage: the worker reads the parsed message's subject through
these functions before routing decides whether the mail updates an existing
case (``[Case #12]``), opens a new one of a named type (``[Data Restore] ...``)
or asks for a blank template (``template``). Pure functions on strings.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SubjectParts", "case_number_tag", "case_tag", "case_type_prefix", "is_forward", "read_subject",
           "starts_with_reply_prefix", "status_request", "strip_reply_prefixes", "template_request", "without_our_tags"]

# Reply and forward markers of the mail clients our districts use, in English,
# German (AW, WG), Scandinavian (SV, VS), Dutch (Antw), Italian (R, Rif),
# Portuguese/Spanish (Enc) and French (TR); with optional counts "Re[2]:", "Re(2):".
_REPLY_WORDS = ("re", "aw", "sv", "vs", "antw", "rif", "r")
_STRIPPED_FORWARD_WORDS = ("fwd", "fw", "wg", "enc", "tr")
# Forward markers that are recognised but not stripped (Dutch, Spanish, Finnish).
_FORWARD_WORDS = frozenset({*_STRIPPED_FORWARD_WORDS, "vb", "vl", "rv", "doorst"})
_COUNT = r"\s*(?:\[\d+\]|\(\d+\))?\s*[:：]"
_REPLY_PREFIXES = re.compile(
    r"^\s*(?:(?:" + "|".join((*_STRIPPED_FORWARD_WORDS, *_REPLY_WORDS)) + ")" + _COUNT + r"\s*)+", re.IGNORECASE)
_RE_PREFIX = re.compile(r"^\s*re" + _COUNT, re.IGNORECASE)
_FIRST_PREFIX = re.compile(r"^\s*(?P<word>[a-z]+)" + _COUNT, re.IGNORECASE)
_CASE_TAG = re.compile(r"\[\s*case\s*#\s*(\d+)\s*\]", re.IGNORECASE)
_LEADING_BRACKET = re.compile(r"^\[([^\[\]]*)\]\s*(.*)$", re.DOTALL)
_TEMPLATE = re.compile(r"^\s*template\b\s*[:\-–—]?\s*(.*?)[\s.!?]*$", re.IGNORECASE | re.DOTALL)
_STATUS = re.compile(r"^\s*status\s*[.!?]*\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class SubjectParts:
    """Everything a subject line says, read once."""

    text: str  # the subject as received, on one line
    topic: str  # without reply prefixes, [Case #N] tags and a leading [Case Type]: a new case's subject
    type_prefix: str | None  # the text of a leading [Case Type], as written
    case_number: int | None  # the N of a [Case #N] tag
    is_forward: bool
    asks_for_template: bool
    template_type: str | None  # "template Data Restore": the type as written
    asks_for_status: bool


def read_subject(subject: str) -> SubjectParts:
    type_prefix, topic = case_type_prefix(subject)
    wants_template, template_type = template_request(subject)
    return SubjectParts(text=subject, topic=topic, type_prefix=type_prefix, case_number=case_number_tag(subject),
                        is_forward=is_forward(subject), asks_for_template=wants_template,
                        template_type=template_type, asks_for_status=status_request(subject))


def case_tag(number: int) -> str:
    """The tag intake writes into the subject of every mail about a case; `case_number_tag` reads it."""
    return f"[Case #{number}]"


def starts_with_reply_prefix(subject: str) -> bool:
    """Whether the subject already starts with "Re:" (so a reply need not add one)."""
    return bool(_RE_PREFIX.match(subject))


def is_forward(subject: str) -> bool:
    """Whether the subject starts with a forward marker (Fwd:, FW:, WG:, TR:, Enc:, VB:, VL:, RV:, Doorst:)."""
    found = _FIRST_PREFIX.match(subject)
    return found is not None and found.group("word").lower() in _FORWARD_WORDS


def status_request(subject: str) -> bool:
    """Whether the subject is the command ``status``: list my cases."""
    return bool(_STATUS.match(subject))


def strip_reply_prefixes(subject: str) -> str:
    """The subject without any run of ``Re:``/``Fwd:``/``AW:``... prefixes, stripped."""
    return _REPLY_PREFIXES.sub("", subject).strip()


def case_number_tag(subject: str) -> int | None:
    """The N of the first ``[Case #N]`` tag anywhere in the subject, or None."""
    found = _CASE_TAG.search(subject)
    return int(found.group(1)) if found else None


def case_type_prefix(subject: str) -> tuple[str | None, str]:
    """Split a leading ``[Case Type]`` off the subject of a new case.

    Reply and forward prefixes and our own ``[Case #N]`` tags are stripped
    first, wherever they are, so that a forwarded case message starts a case
    whose subject does not carry the old tag (tags never nest: no
    "[Case #6] [Case #1] ..."). Returns the text inside the leading brackets
    and the rest, e.g. ``"Fwd: [Case #1] [Data Restore] Lost enrollments"`` →
    ``("Data Restore", "Lost enrollments")``. When there is no leading
    bracket, or it is empty, the prefix is None and the whole stripped subject
    is returned. Whether the bracketed text names a case type (and not, say,
    ``[EXTERNAL]``) is for routing to decide.
    """
    stripped = without_our_tags(subject)
    found = _LEADING_BRACKET.match(stripped)
    if not found:
        return None, stripped
    inside = " ".join(found.group(1).split())
    if not inside:
        return None, stripped
    return inside, found.group(2).strip()


def without_our_tags(subject: str) -> str:
    """The subject without reply/forward prefixes and ``[Case #N]`` tags, however they are interleaved."""
    previous = None
    while previous != subject:
        previous = subject
        subject = " ".join(_CASE_TAG.sub(" ", strip_reply_prefixes(subject)).split())
    return subject


def template_request(subject: str) -> tuple[bool, str | None]:
    """Whether the subject asks for a blank template, and for which case type as written.

    ``"template"`` (any case, surrounding spaces, trailing punctuation) →
    ``(True, None)``; ``"Template: Data Restore"`` or ``"template for data
    restore"`` → ``(True, "Data Restore")`` / ``(True, "data restore")``: the raw
    text after the word, which routing matches against case types. Reply
    prefixes are *not* stripped: ``"Re: template"`` is a reply to a template
    we sent, most likely filled in, so it is ``(False, None)``.
    """
    found = _TEMPLATE.match(subject)
    if not found:
        return False, None
    rest = re.sub(r"^for\s+", "", found.group(1).strip(), flags=re.IGNORECASE).strip()
    return True, (" ".join(rest.split()) or None)
