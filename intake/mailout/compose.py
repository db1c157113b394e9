"""Every mail intake sends, composed in one place: answers to messages and mail about a case.

Part of the act stage: a handler asks for the mail its outcome causes, in the
transaction that records the outcome, and queues it (`intake.mailout.outbox`).
The wording lives in templates/email/ (one `.txt`/`.html` pair per `Reply`
kind); this module picks the pair, turns the outcome into plain values the
templates can print, and sets the headers that thread the mail and keep other
robots from answering it. Header values are built only from text with its
line breaks and control characters removed.
"""
from __future__ import annotations

import binascii
import datetime as dt
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.utils import format_datetime, formataddr
from typing import Any

from intake.config import Config
from intake.mailout.templates import format_date, template_environment
from parsers.fields import Field, FieldKind
from parsers.message import bare_message_id
from parsers.subject import case_tag, case_type_prefix, starts_with_reply_prefix
from parsers.values import match_choice
from routing.notices import NoteOnNotice
from routing.outcomes import (
    Answered,
    AskForInformation,
    CaseDraft,
    CreateCase,
    Hold,
    Recipient,
    Refuse,
    SendStatus,
    SendTemplates,
)
from routing.schema import CASE_TYPE, DESCRIPTION, PRIORITY, SUBJECT, CaseType, CaseTypeSpec
from routing.states import Reply
from routing.threads import case_message_id_prefix, plus_address

__all__ = ["Answer", "CaseSummary", "MailHeaders", "FormLine", "Original", "StatusListing", "TypeSheet",
           "answer_subject", "compose_answer", "compose_case_mail", "compose_notice", "display_value", "header_text",
           "new_message_id", "render"]

# The part of a template every case type shares; sent when the case type is not known yet.
GENERIC_FIELDS = (CASE_TYPE, PRIORITY, SUBJECT, DESCRIPTION)
GENERIC_REQUIRED = frozenset({CASE_TYPE, SUBJECT, DESCRIPTION})


@dataclass(frozen=True)
class Original:
    """The message an answer answers."""

    subject: str
    message_id: str | None
    references: tuple[str, ...] = ()


# A `status` answer lists the cases closed in the last this many days.
STATUS_CLOSED_DAYS = 90


@dataclass(frozen=True)
class StatusListing:
    """A contact's cases, as the `status` answer lists them."""

    open_cases: tuple[dict[str, Any], ...] = ()
    closed_cases: tuple[dict[str, Any], ...] = ()
    closed_days: int = STATUS_CLOSED_DAYS


@dataclass(frozen=True)
class Answer:
    """One answer to compose: the decision, the message it answers, and what the act stage stored."""

    decision: Answered
    original: Original
    case_number: int | None = None  # set for acknowledgements
    case_created: dt.datetime | None = None
    attachments: tuple[tuple[str, int], ...] = ()  # (filename, size) stored on the case
    status: StatusListing | None = None  # for a `status` answer
    preview: bool = False  # a dry run: no case number exists yet
    incident: Any = None  # the open incident the new case joined (intake.notify.joining.IncidentJoined)


@dataclass(frozen=True)
class FormLine:
    """One `Label: value` line of a case template, with what to tell a person about it."""

    label: str
    value: str
    hint: str
    required_note: str  # "", "required" or "required when Request Type is Add or Replace"


@dataclass(frozen=True)
class TypeSheet:
    """One case type as a reply shows it: what it is for, where it goes and its template."""

    name: str
    description: str
    department: str
    billable: bool
    lines: tuple[FormLine, ...]


@dataclass(frozen=True)
class CaseSummary:
    """A created case, as the acknowledgement shows it."""

    number: int | str
    subject: str
    case_type: str
    priority: str
    priority_note: str
    department: str
    billable: bool
    created: str
    account: str
    contact: str  # the contact's name
    contact_email: str
    submitted_by: str  # "" when the contact sent it themselves
    fields: tuple[FormLine, ...]  # every field understood, in form order
    attachments: tuple[tuple[str, str], ...]  # (filename, readable size)
    follows_case: int | None = None  # the closed case a late reply was about
    notes: tuple[str, ...] = ()  # one line each: how a value was filed, what to know about the request


@dataclass(frozen=True)
class MailHeaders:
    """The headers of one outgoing message that differ from message to message."""

    to: tuple[Recipient, ...]
    subject: str
    auto_submitted: str | None  # RFC 3834; None for mail a person wrote
    case_number: int | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()


def new_message_id(config: Config, case_number: int | None = None) -> str:
    """A Message-ID of ours; about a case, it carries the case's HMAC token so replies find their thread."""
    if case_number is None:
        return f"<intake.{uuid.uuid4().hex}@{config.message_id_domain}>"
    prefix = case_message_id_prefix(config.conversations.secret, case_number)
    return f"<{prefix}{uuid.uuid4().hex[:16]}@{config.message_id_domain}>"


def render(kind: Reply, values: Mapping[str, Any], headers: MailHeaders, config: Config) -> Message:
    """Any kind of outgoing mail: its template pair, rendered, with the headers every message of ours carries.

    Built with the standard library's MIME classes (`email.mime`), which write
    headers as given instead of parsing each one as if it came off the wire:
    a third of the cost of `EmailMessage` for the same bytes. Every value set
    is ours or cleaned by `header_text`; `_set` refuses a line break anyway.
    """
    environment = template_environment(config.template_dir)
    values = {"organisation": config.organisation, "support_address": config.support_addresses[0],
              "subject": headers.subject, "automatic": kind.automatic, **values}
    # "=_" never occurs in quoted-printable text (every "=" there is "=XX" or ends a line), so the
    # boundary needs no search of the parts for a clash, as the generator's own would.
    message = MIMEMultipart("alternative", boundary=f"=_{uuid.uuid4().hex}")
    _set_headers(message, headers, config)
    for subtype in ("plain", "html"):
        template = environment.get_template(f"{kind.value}.{'txt' if subtype == 'plain' else 'html'}")
        message.attach(_quoted_printable_part(template.render(values), subtype))
    return message


def _quoted_printable_part(text: str, subtype: str) -> MIMEBase:
    """A UTF-8 text part in quoted-printable, which keeps every line under SMTP's 1000-octet limit.

    Encoded by `binascii.b2a_qp`, the C codec the `quopri` module uses, rather
    than `email.quoprimime`, which does the same a character at a time in
    Python at six times the cost.
    """
    part = MIMEBase("text", subtype, charset="utf-8")
    del part["MIME-Version"]  # once, on the message itself
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(binascii.b2a_qp(text.encode("utf-8")).decode("ascii"))
    return part


# Header words in quoted-printable (the standard library's default for UTF-8 is base64).
_UTF8_QP = Charset("utf-8")
_UTF8_QP.header_encoding = QP


# --- answers to a message ------------------------------------------------------------


def compose_answer(answer: Answer, config: Config) -> Message:
    """The answer to a decision as a multipart/alternative message (plain text and HTML) with all its headers."""
    decision = answer.decision
    assert decision.reply is not None and decision.reply_to
    headers = MailHeaders(to=decision.reply_to, subject=answer_subject(answer), case_number=answer.case_number,
                        in_reply_to=answer.original.message_id, references=answer.original.references,
                        auto_submitted=decision.reply.auto_submitted)
    values = {"to_name": greeting_name(decision.reply_to[0][0]),
              "original_subject": answer.original.subject.strip() or "(no subject)",
              "original_topic": case_type_prefix(answer.original.subject)[1] or "(no subject)",
              **_ANSWER_VALUES[type(decision)](answer, config)}
    return render(decision.reply, values, headers, config)


def greeting_name(name: str) -> str:
    """A name as a greeting says it: "Morris, Zack" (as Outlook writes a From) is "Zack Morris"."""
    family, comma, given = header_text(name).partition(",")
    if comma and given.strip() and "," not in given and len(family.split()) <= 2:
        return f"{given.strip()} {family.strip()}"
    return header_text(name)


def answer_subject(answer: Answer) -> str:
    decision = answer.decision
    if isinstance(decision, CreateCase):
        return f"{case_tag_of(answer)} {decision.draft.subject}"
    if isinstance(decision, SendTemplates):
        types = _template_types(decision)
        return f"Case template: {types[0].value}" if len(types) == 1 else "Case templates"
    if isinstance(decision, SendStatus):
        return "Your cases"
    original = answer.original.subject.strip() or "(no subject)"
    return original if starts_with_reply_prefix(original) else f"Re: {original}"


def case_tag_of(answer: Answer) -> str:
    if answer.case_number is not None:
        return case_tag(answer.case_number)
    if answer.preview:
        return "[Case #NEW]"
    raise ValueError("an acknowledgement needs the case number")


def _acknowledgement_values(answer: Answer, config: Config) -> dict[str, Any]:
    assert isinstance(answer.decision, CreateCase)
    draft = answer.decision.draft
    number: int | str = answer.case_number if answer.case_number is not None else "NEW"
    case = CaseSummary(
        number=number, subject=draft.subject, case_type=draft.spec.case_type.value, priority=draft.priority,
        priority_note=draft.priority_note or "", department=draft.department, billable=draft.billable,
        created=_format_created(answer.case_created, config), account=draft.account.name,
        contact=draft.contact.full_name, contact_email=draft.contact.email,
        submitted_by=draft.submitted_by.full_name if draft.on_behalf else "",
        fields=_understood_fields(draft),
        attachments=tuple((name, readable_size(size)) for name, size in answer.attachments),
        follows_case=draft.follows_case, notes=_unlisted_notes(draft) + draft.notes)
    return {"case": case, "incident": answer.incident}


def _unlisted_notes(draft: CaseDraft) -> tuple[str, ...]:
    """One line for each value that named nothing listed and was filed under the field's catch-all."""
    notes = []
    for field in draft.spec.all_fields:
        written = " ".join(draft.fields_as_written.get(field.label, "").split())
        if (field.unlisted is None or draft.fields.get(field.label) != field.unlisted or not written
                or match_choice(written, field.choices, field.choice_aliases) is not None):
            continue
        notes.append(f"About the {field.label}: we filed this under {field.unlisted}; you wrote '{written}'.")
    return tuple(notes)


def _needs_information_values(answer: Answer, config: Config) -> dict[str, Any]:
    decision = answer.decision
    assert isinstance(decision, AskForInformation)
    problems = [p.message for p in decision.problems]
    if decision.case_type is None:
        lines = _form_lines(GENERIC_FIELDS, decision.prefill, None)
        return {"problems": problems, "sheet": None, "generic_lines": lines, "case_types": _all_sheets(config)}
    spec = config.case_types.spec_for(decision.case_type)
    sheet = _sheet(spec, config, {**decision.prefill, CASE_TYPE.label: spec.case_type.value})
    return {"problems": problems, "sheet": sheet, "generic_lines": (), "case_types": ()}


def _refusal_values(answer: Answer, config: Config) -> dict[str, Any]:
    assert isinstance(answer.decision, Refuse)
    return {"problems": [p.message for p in answer.decision.problems]}


def _held_values(answer: Answer, config: Config) -> dict[str, Any]:
    assert isinstance(answer.decision, Hold)
    until = answer.decision.until.astimezone(config.timezone)
    return {"until": f"{until:%H:%M} {until.tzname()} on {until:%A} {until.day} {until:%B}"}


def _templates_values(answer: Answer, config: Config) -> dict[str, Any]:
    assert isinstance(answer.decision, SendTemplates)
    sheets = tuple(_sheet(config.case_types.spec_for(t), config, {CASE_TYPE.label: t.value})
                   for t in _template_types(answer.decision))
    return {"sheets": sheets}


def _status_values(answer: Answer, config: Config) -> dict[str, Any]:
    listing = answer.status or StatusListing()
    return {"open_cases": listing.open_cases, "closed_cases": listing.closed_cases,
            "closed_days": listing.closed_days}


_ANSWER_VALUES: dict[type[Answered], Callable[[Answer, Config], dict[str, Any]]] = {
    CreateCase: _acknowledgement_values,
    AskForInformation: _needs_information_values,
    Refuse: _refusal_values,
    SendTemplates: _templates_values,
    SendStatus: _status_values,
    Hold: _held_values,
    NoteOnNotice: lambda answer, config: {"notice_title": answer.decision.notice.title},  # type: ignore[attr-defined]
}


def _template_types(decision: SendTemplates) -> tuple[CaseType, ...]:
    return decision.types or tuple(CaseType)


# --- mail about a case ---------------------------------------------------------------


@dataclass(frozen=True)
class CaseThread:
    """A case as mail about it needs it: its number and subject, and the thread so far."""

    number: int
    subject: str
    in_reply_to: str | None
    references: tuple[str, ...]


def compose_case_mail(kind: Reply, case: CaseThread, to: Iterable[Recipient], values: Mapping[str, Any],
                      config: Config) -> Message:
    """Mail about a case (a staff comment, a resolution, an approved contact change), on its thread."""
    recipients = tuple(to)
    headers = MailHeaders(to=recipients, subject=f"{case_tag(case.number)} {case.subject}", case_number=case.number,
                        in_reply_to=case.in_reply_to, references=case.references,
                        auto_submitted=kind.auto_submitted)
    values = {"to_name": greeting_name(recipients[0][0]) if len(recipients) == 1 else "", "case_number": case.number,
              "case_subject": case.subject, **values}
    return render(kind, values, headers, config)


def compose_notice(kind: Reply, to: Iterable[Recipient], subject: str, values: Mapping[str, Any],
                   config: Config) -> Message:
    """A notice to staff about no case in particular (a quarantined message)."""
    recipients = tuple(to)
    headers = MailHeaders(to=recipients, subject=subject, auto_submitted=kind.auto_submitted)
    return render(kind, {"to_name": "", **values}, headers, config)


# --- headers ------------------------------------------------------------------------

def _set_headers(message: Message, headers: MailHeaders, config: Config) -> None:
    _set(message, "From", _address(config.from_name, config.from_address))
    _set(message, "To", ", ".join(_address(name, address) for name, address in headers.to))
    _set(message, "Subject", _words(header_text(headers.subject)))
    _set(message, "Date", format_datetime(dt.datetime.now(config.timezone)))
    _set(message, "Message-ID", new_message_id(config, headers.case_number))
    if headers.case_number is not None and config.conversations.plus_addressing:
        _set(message, "Reply-To", _address(config.from_name, plus_address(
            config.support_addresses[0], config.conversations.secret, headers.case_number)))
    if headers.in_reply_to:
        original = bare_message_id(headers.in_reply_to)
        references = [f"<{r}>" for r in map(bare_message_id, headers.references) if r and r != original]
        _set(message, "In-Reply-To", f"<{original}>")
        _set(message, "References", " ".join([*references, f"<{original}>"]))
    # RFC 3834: tell other auto-responders (and Exchange) not to answer us, and mark our own loop.
    if headers.auto_submitted:
        _set(message, "Auto-Submitted", headers.auto_submitted)
    _set(message, "X-Auto-Response-Suppress", "All")
    _set(message, "X-Loop", config.from_address)


def _set(message: Message, name: str, value: str | Header) -> None:
    """Add a header; a line break in its value (which no cleaned value has) is refused, never written."""
    text = str(value)
    if "\r" in text or "\n" in text:
        raise ValueError(f"a line break in the {name} header of outgoing mail")
    message[name] = value  # type: ignore[assignment]  # compat32 takes a Header, as documented


def _words(text: str) -> str | Header:
    """A header's text as written: ASCII as it is, anything else as RFC 2047 encoded words (folded when long)."""
    return text if text.isascii() else Header(text, _UTF8_QP, header_name="Subject")


def _address(name: str, address: str) -> str:
    """`Name <address>`: the name cleaned, quoted where it must be, and encoded when not ASCII."""
    name = header_text(name)
    return formataddr((name, header_text(address)), charset=_UTF8_QP) if name else header_text(address)


# The start of an RFC 2047 encoded word. The standard library parses a header
# value assigned to a message as if it came off the wire, so "=?utf-8?q?..?="
# in a subject or name taken from mail would be decoded a second time, CR/LF
# and all, when the header is written (Python 3.11 and 3.12 do this).
_ENCODED_WORD_START = "=?"
# U+2060 WORD JOINER: invisible, and it breaks the "=?" so no encoded word is seen.
_BROKEN_ENCODED_WORD_START = "=\u2060?"


def header_text(text: str) -> str:
    """One line of plain text for a header: no line breaks, no control characters, single spaces,
    and nothing the standard library could decode again as an encoded word."""
    cleaned = "".join(" " if unicodedata.category(ch)[0] in "CZ" and ch != " " else ch for ch in text)
    return " ".join(cleaned.split()).replace(_ENCODED_WORD_START, _BROKEN_ENCODED_WORD_START)


# --- case templates -----------------------------------------------------------------

def _all_sheets(config: Config) -> tuple[TypeSheet, ...]:
    return tuple(_sheet(spec, config, {}) for spec in config.case_types.case_types.values())


def _sheet(spec: CaseTypeSpec, config: Config, values: Mapping[str, str]) -> TypeSheet:
    # Case Type comes first so that a filled-in template says what it is before anything else.
    fields = (CASE_TYPE, *(f for f in spec.all_fields if f.label != CASE_TYPE.label))
    return TypeSheet(spec.case_type.value, spec.description, config.department_for(spec.case_type),
                     spec.may_be_billable, _form_lines(fields, values, spec))


def _form_lines(fields: Iterable[Field], values: Mapping[str, str], spec: CaseTypeSpec | None) -> tuple[FormLine, ...]:
    return tuple(FormLine(f.label, values.get(f.label, "").strip(), field_hint(f), _required_note(f, spec))
                 for f in fields)


def field_hint(field: Field) -> str:
    """What to write after a field's label, in a few words."""
    parts = [field.hint] if field.hint else []
    if not field.hint and field.choices:
        parts.append("one of: " + ", ".join(field.choices))
    if field.kind is FieldKind.DATE:
        parts.append("a date after today, MM/DD/YYYY" if field.future_only else "a date, MM/DD/YYYY")
    return "; ".join(parts)


def _required_note(field: Field, spec: CaseTypeSpec | None) -> str:
    if spec is not None:
        return spec.required_note(field)
    return "required" if field in GENERIC_REQUIRED else ""


def _understood_fields(draft: CaseDraft) -> tuple[FormLine, ...]:
    """Subject, Description and every field of the type that has a value, in form order."""
    known = {SUBJECT.label: draft.subject, DESCRIPTION.label: draft.description}
    lines = []
    for field in draft.spec.all_fields:
        if field.label in known:
            text = known[field.label]
        else:
            text = display_value(field, draft.fields.get(field.label), draft.fields_as_written.get(field.label))
        if text.strip():
            lines.append(FormLine(field.label, text.strip(), "", ""))
    return tuple(lines)


# --- values as people read them -----------------------------------------------------

def display_value(field: Field, value: Any, written: str | None = None) -> str:
    """A typed field value as text: dates as MM/DD/YYYY, lists joined with ", "."""
    if value is None or value == "":
        return written or ""
    if isinstance(value, bool):
        return written or ("Yes" if value else "No")
    if isinstance(value, (dt.date, dt.datetime)):
        return format_date(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if field.kind is FieldKind.DATE and isinstance(value, str):
        return _iso_date_text(value)
    return str(value)


def _iso_date_text(value: str) -> str:
    try:
        return format_date(dt.date.fromisoformat(value[:10]))
    except ValueError:
        return value


def _format_created(created: dt.datetime | None, config: Config) -> str:
    """Like the support portal: 09/15/2021 - 01:44 PM CDT, in the configured time zone."""
    if created is None:
        return ""
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)  # the store records every time in UTC
    return created.astimezone(config.timezone).strftime("%m/%d/%Y - %I:%M %p %Z")


def readable_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"
