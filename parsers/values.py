"""One field's text typed by its schema ``Field``: the last step of the parse stage.

``parsers.template`` hands over the text written under a label; ``coerce``
turns it into the value the schema's ``FieldKind`` calls for, forgiving what
people write (case, spacing, aliases, small misspellings, the common date
forms) and otherwise saying in plain words what is wrong and how to write it.
Whether a field is required, or a date must be in the future, is decided
downstream in routing, which knows the case type and the day the mail came.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from dateutil import parser as date_parser
from rapidfuzz import fuzz, process

from parsers.fields import Field, FieldKind

__all__ = ["Coerced", "coerce", "match_choice", "suggestions"]

# A close misspelling ("Grdae Book", "Attendence") scores 90 or more with
# fuzz.ratio on normalised text; unrelated words stay far below.
FUZZY_CUTOFF = 85.0
_EMPTY_ALIASES: Mapping[str, str] = {}


@dataclass(frozen=True)
class Coerced:
    """A field's typed value, the text it came from, and a problem or a note for the person."""

    value: object | None
    original: str
    error: str | None
    note: str | None = None


def coerce(field: Field, text: str) -> Coerced:
    """Type ``text`` as ``field.kind`` asks; empty text is no value and no error."""
    if not text.strip():
        return Coerced(None, text, None)
    return _COERCERS[field.kind](field, text)


# --- choices ---------------------------------------------------------------------

def normalise_choice(text: str) -> str:
    """Lowercase words without punctuation: "Read-Only." → "read only"."""
    return " ".join(re.sub(r"[^\w]+", " ", text.casefold()).replace("_", " ").split())


def match_choice(text: str, choices: Sequence[str], aliases: Mapping[str, str] = _EMPTY_ALIASES) -> str | None:
    """The choice ``text`` means, matched forgivingly (case, spacing, punctuation, aliases, misspelling)."""
    return _match_choice(text, choices, aliases, fuzzy=True)


def _match_choice(text: str, choices: Sequence[str], aliases: Mapping[str, str], *, fuzzy: bool) -> str | None:
    targets = _choice_targets(choices, aliases)
    wanted = normalise_choice(text)
    if not wanted:
        return None
    exact = targets.get(wanted) or _squashed(targets).get(wanted.replace(" ", ""))
    if exact is not None or not fuzzy:
        return exact
    best = process.extractOne(wanted, list(targets), scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF)
    return targets[best[0]] if best else _abbreviation_of(wanted, targets)


def _abbreviation_of(wanted: str, targets: Mapping[str, str]) -> str | None:
    """The one choice whose words each start with the written words ("student info" → Student Information)."""
    words = wanted.split()
    found = {choice for spelling, choice in targets.items()
             if len(spelling.split()) == len(words) and len(wanted) >= 4
             and all(full.startswith(part) for part, full in zip(words, spelling.split(), strict=False))}
    return found.pop() if len(found) == 1 else None


def suggestions(text: str, choices: Sequence[str], limit: int = 3) -> list[str]:
    """The choices closest to ``text``, best first, for a "did you mean" line."""
    by_spelling = {normalise_choice(c): c for c in choices}
    found = process.extract(normalise_choice(text), list(by_spelling), scorer=fuzz.WRatio, limit=limit,
                            score_cutoff=75)
    return [by_spelling[spelling] for spelling, _score, _index in found]


def _choice_targets(choices: Sequence[str], aliases: Mapping[str, str]) -> dict[str, str]:
    """Every normalised spelling (choice or alias) mapped to its choice; choices win ties."""
    targets = {normalise_choice(alias): choice for alias, choice in aliases.items() if choice in choices}
    targets.update({normalise_choice(choice): choice for choice in choices})
    return targets


def _squashed(targets: Mapping[str, str]) -> dict[str, str]:
    return {spelling.replace(" ", ""): choice for spelling, choice in targets.items()}


def _changed(text: str, choice: str) -> bool:
    return normalise_choice(text) != normalise_choice(choice)


def _choice_list(field: Field) -> str:
    return ", ".join(field.choices)


def _coerce_enum(field: Field, text: str) -> Coerced:
    written = text.strip()
    choice = match_choice(written, field.choices, field.choice_aliases)
    if choice is None and field.unlisted is not None:
        return Coerced(field.unlisted, text, None, f"'{written}' is not listed; filed under {field.unlisted}")
    if choice is None:
        close = suggestions(written, field.choices)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        return Coerced(None, text, f"'{written}' is not a {field.label} we know.{hint} "
                                   f"Choose one of: {_choice_list(field)}")
    note = f"read '{written}' as '{choice}'" if _changed(written, choice) else None
    return Coerced(choice, text, None, note)


# --- multi-choice ------------------------------------------------------------------

_ITEM_LINE = re.compile(r"^\s*(?:[-*•·‣◦▪]|\d+[.)])\s+")
_SEPARATOR = re.compile(r"(\s*[,;/&]\s*(?:(?:and|or)\s+)?|\s+and\s+)", re.IGNORECASE)


def _coerce_multi_choice(field: Field, text: str) -> Coerced:
    matched: list[tuple[str, str]] = []
    unknown: list[str] = []
    for line in text.splitlines():
        found, missing = _split_choices(_ITEM_LINE.sub("", line), field)
        matched.extend(found)
        unknown.extend(missing)
    if unknown:
        names = " and ".join(f"'{u}'" for u in unknown)
        verb = "is" if len(unknown) == 1 else "are"
        close = [f"{' or '.join(near)} for '{u}'" for u in unknown if (near := suggestions(u, field.choices))]
        hint = f" Did you mean {'; '.join(close)}?" if close else ""
        return Coerced(None, text, f"{names} {verb} not one of the {field.label} choices we know.{hint} "
                                   f"Choose one or more of: {_choice_list(field)}")
    chosen = list(dict.fromkeys(choice for _, choice in matched))
    readings = [f"'{written}' as '{choice}'" for written, choice in matched if _changed(written, choice)]
    note = "read " + ", ".join(readings) if readings else None
    return Coerced(chosen, text, None, note)


def _split_choices(line: str, field: Field) -> tuple[list[tuple[str, str]], list[str]]:
    """(written, choice) pairs named on one line, and the parts that name none.

    A separator only splits where it separates known choices, so a choice
    that contains one ("Data Import/Export/Modification") still matches whole:
    the longest run of pieces that names a choice exactly wins, and a single
    piece may also match forgivingly.
    """
    line = line.strip()
    whole = match_choice(line, field.choices, field.choice_aliases)
    if whole is not None or not line:
        return ([(line, whole)] if whole else []), []
    tokens = _SEPARATOR.split(line)
    found: list[tuple[str, str]] = []
    missing: list[str] = []
    start, count = 0, len(tokens[0::2])
    while start < count:
        end, choice = _longest_choice(tokens, start, count, field)
        written = "".join(tokens[2 * start: 2 * end - 1]).strip()
        if choice is not None:
            found.append((written, choice))
        elif written:
            missing.append(written)
        start = end
    return found, missing


def _longest_choice(tokens: list[str], start: int, count: int, field: Field) -> tuple[int, str | None]:
    for end in range(count, start, -1):
        span = "".join(tokens[2 * start: 2 * end - 1])
        choice = _match_choice(span, field.choices, field.choice_aliases, fuzzy=end - start == 1)
        if choice is not None:
            return end, choice
    return start + 1, None


# --- dates -----------------------------------------------------------------------

# Two defaults that differ in every date part: whatever dateutil fills in from
# the default, rather than reads, shows up as a difference. Both are leap years
# and both months have 31 days, so no written day is refused because of them.
_DEFAULT_A = dt.datetime(2000, 1, 1)
_DEFAULT_B = dt.datetime(2004, 3, 3)
# Words a person puts around a date that carry no date of their own.
_FILLER_WORDS = frozenset({"on", "around", "about", "approximately", "approx", "roughly", "circa",
                           "ca", "the", "of", "since", "starting", "began", "beginning", "at", "date"})
_DATE_HINT = "write it like 09/07/2021 or 2021-09-07"
MIN_YEAR = 1900


def _coerce_date(field: Field, text: str) -> Coerced:
    written = " ".join(text.split())
    date, problem = read_date(written)
    if date is None:
        return Coerced(None, text, f"'{written}' is not a date we can read{problem}; {_DATE_HINT}")
    return Coerced(date, text, None)


def read_date(text: str) -> tuple[dt.date | None, str]:
    """The calendar date ``text`` names (US month/day order), or None and a reason fragment."""
    first = _parse_date(text, _DEFAULT_A)
    second = _parse_date(text, _DEFAULT_B)
    if first is None or second is None:
        return None, ""
    missing = [part for part in ("year", "month", "day") if getattr(first, part) != getattr(second, part)]
    if missing:
        return None, f" (it has no {' or '.join(missing)})"
    if first.year < MIN_YEAR:
        return None, ""
    return first.date(), ""


def _parse_date(text: str, default: dt.datetime) -> dt.datetime | None:
    """dateutil's reading of ``text``; fuzzy only where the skipped words are filler."""
    try:
        return date_parser.parse(text, default=default)
    except (date_parser.ParserError, ValueError, OverflowError):
        pass
    try:
        parsed, skipped = date_parser.parse(text, default=default, fuzzy_with_tokens=True)
    except (date_parser.ParserError, ValueError, OverflowError):
        return None
    words = re.findall(r"\w+", " ".join(skipped).lower())
    return parsed if all(word in _FILLER_WORDS for word in words) else None


# --- email, phone, consent, text ---------------------------------------------------

_ADDR_SPEC = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


def _coerce_email(field: Field, text: str) -> Coerced:
    written = " ".join(text.split())
    address = read_address(written)
    if address is None:
        return Coerced(None, text, f"'{written}' is not one email address; write it like name@district.org")
    return Coerced(address, text, None)


def read_address(text: str) -> str | None:
    """The one lowercased addr-spec in ``text`` ("Name <a@b.org>" or "a@b.org"), else None."""
    text = re.sub(r"^mailto:", "", text.strip(), flags=re.IGNORECASE)
    pairs = email.utils.getaddresses([text])
    if len(pairs) != 1:
        return None
    address = pairs[0][1].removeprefix("mailto:").strip()
    return address.lower() if _ADDR_SPEC.match(address) else None


_EXTENSION = re.compile(r"\s*(?:ext\.?|extension|x)\s*\d{1,6}\s*$", re.IGNORECASE)
_PHONE_PUNCTUATION = re.compile(r"[\s().\-+/\u2010-\u2015]")
MIN_PHONE_DIGITS, MAX_PHONE_DIGITS = 7, 15


def _coerce_phone(field: Field, text: str) -> Coerced:
    written = " ".join(text.split())
    if not is_phone_number(written):
        return Coerced(None, text, f"'{written}' is not a phone number we can read; "
                                   "write it like 555-123-4567 or +1 555 123 4567 x89")
    return Coerced(written, text, None)


def is_phone_number(text: str) -> bool:
    """7 to 15 digits once punctuation, spaces, '+' and an extension are removed."""
    digits = _PHONE_PUNCTUATION.sub("", _EXTENSION.sub("", text))
    return digits.isdigit() and digits.isascii() and MIN_PHONE_DIGITS <= len(digits) <= MAX_PHONE_DIGITS


_NEGATIVE_START = re.compile(r"^(?:no|nope|n/?a|none|not|never|pending|tbd|later|unknown)\b", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:not|never|without|cannot|refuse[sd]?|decline[sd]?|den(?:y|ied))\b|n't\b",
                       re.IGNORECASE)
_AFFIRMATION = re.compile(
    r"^(?:yes|yep|yeah|y|ok|okay|sure|confirmed|affirmative)\b"
    r"|\b(?:authori[sz](?:e|ed|es|ing|ation)|approved?|approving|grant(?:ed)?|granting|permit(?:ted)?"
    r"|give|given|giving|consent(?:ed)?|agree[ds]?|allow(?:ed)?)\b",
    re.IGNORECASE,
)


def _coerce_consent(field: Field, text: str) -> Coerced:
    written = " ".join(text.split())
    if not gives_consent(written):
        return Coerced(None, text, f"We need your written permission to go ahead, and '{written}' does not "
                                   f"give it; write for example '{field.label}: Yes, I give written permission "
                                   "to restore this data'")
    return Coerced(written, text, None)


def gives_consent(text: str) -> bool:
    """True when the statement affirms (yes, I authorize, approved, granted) and negates nothing."""
    if _NEGATIVE_START.match(text) or _NEGATION.search(text):
        return False
    return bool(_AFFIRMATION.search(text))


def _coerce_text(field: Field, text: str) -> Coerced:
    """Free text as written; a close spelling of a suggested choice is read as that choice."""
    written = text.strip()
    choice = match_choice(written, field.choices, field.choice_aliases) if field.choices else None
    if choice is None:
        return Coerced(written, text, None)
    note = f"read '{written}' as '{choice}'" if _changed(written, choice) else None
    return Coerced(choice, text, None, note)


_COERCERS: dict[FieldKind, Callable[[Field, str], Coerced]] = {
    FieldKind.TEXT: _coerce_text,
    FieldKind.MULTILINE: _coerce_text,
    FieldKind.ENUM: _coerce_enum,
    FieldKind.MULTI_CHOICE: _coerce_multi_choice,
    FieldKind.DATE: _coerce_date,
    FieldKind.EMAIL: _coerce_email,
    FieldKind.PHONE: _coerce_phone,
    FieldKind.CONSENT: _coerce_consent,
}
