"""Replies: a decision's reply, rendered as a message ready for the outbox.

Part of the act stage: the worker calls `render_reply` in the transaction that
records a decision and queues the message. The wording lives in
templates/email/ (one `.txt`/`.html` pair per `Reply` kind); this module picks
the pair, turns the decision into plain values the templates can print, and
sets the headers that thread the reply and keep other robots from answering it.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Callable, Iterable, Mapping


from intake.config import Config
from intake.mailout.templates import format_date, template_environment
from routing.decide import CaseDraft, Decision
from routing.outcomes import Reply
from routing.threads import case_message_id_prefix, plus_address
from routing.schema import (CASE_TYPE, CASE_TYPES, DESCRIPTION, PRIORITY, SUBJECT, CaseType, CaseTypeSpec, Field,
                            FieldKind)

__all__ = ["CaseSummary", "Envelope", "FormLine", "ReplyContext", "TypeSheet", "new_message_id", "render",
           "render_reply", "reply_subject"]

# The part of a template every case type shares; sent when the case type is not known yet.
GENERIC_FIELDS = (CASE_TYPE, PRIORITY, SUBJECT, DESCRIPTION)
_GENERIC_REQUIRED = frozenset({CASE_TYPE.label, SUBJECT.label, DESCRIPTION.label})
_RE_PREFIX = re.compile(r"^\s*re\s*(?:\[\d+\]|\(\d+\))?\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class ReplyContext:
    """Everything a reply says, gathered by the worker from the decision and the stored case."""

    kind: Reply
    to: str  # recipient address
    to_name: str  # display name or ""
    original_subject: str
    original_message_id: str | None  # for In-Reply-To / References
    original_references: tuple[str, ...]
    decision: Decision
    case_number: int | None = None  # set for acknowledgements
    preview: bool = False  # a dry run: no case number exists yet
    case_created: dt.datetime | None = None
    attachments: tuple[tuple[str, int], ...] = ()  # (filename, size) stored on the case
    also_to: tuple[tuple[str, str], ...] = ()  # (name, address): the contact a case was filed for


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


def new_message_id(config: Config, case_number: int | None = None) -> str:
    """A Message-ID of ours; about a case, it carries the case's HMAC token so replies find their thread."""
    if case_number is None:
        return f"<intake.{uuid.uuid4().hex}@{config.message_id_domain}>"
    prefix = case_message_id_prefix(config.conversations.secret, case_number)
    return f"<{prefix}{uuid.uuid4().hex[:16]}@{config.message_id_domain}>"


@dataclass(frozen=True)
class Envelope:
    """The headers of one outgoing message that differ from message to message."""

    to: tuple[tuple[str, str], ...]  # (display name, address)
    subject: str
    case_number: int | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    auto_submitted: str = "auto-replied"  # RFC 3834; "auto-generated" for notices not answering a message


def render(kind: Reply, values: Mapping[str, Any], envelope: Envelope, config: Config) -> EmailMessage:
    """Any kind of outgoing mail: its template pair, rendered, with the headers every message of ours carries."""
    environment = template_environment(config.template_dir)
    values = {"organisation": config.organisation, "support_address": config.support_addresses[0],
              "subject": envelope.subject, **values}
    message = EmailMessage()
    _set_headers(message, envelope, config)
    # Quoted-printable keeps every line under SMTP's 1000-octet limit whatever a field holds.
    message.set_content(environment.get_template(f"{kind.value}.txt").render(values), charset="utf-8",
                        cte="quoted-printable")
    message.add_alternative(environment.get_template(f"{kind.value}.html").render(values),
                            subtype="html", charset="utf-8", cte="quoted-printable")
    return message


def render_reply(ctx: ReplyContext, config: Config) -> EmailMessage:
    """The reply to a decision as a multipart/alternative message (plain text and HTML) with all its headers."""
    envelope = Envelope(to=((ctx.to_name, ctx.to), *ctx.also_to), subject=reply_subject(ctx),
                        case_number=ctx.case_number,
                        in_reply_to=ctx.original_message_id, references=ctx.original_references)
    return render(ctx.kind, _template_values(ctx, config), envelope, config)


def reply_subject(ctx: ReplyContext) -> str:
    if ctx.kind is Reply.ACKNOWLEDGEMENT:
        return f"[Case #{_case_number(ctx)}] {_draft(ctx).subject}"
    if ctx.kind is Reply.TEMPLATE:
        types = _template_types(ctx.decision)
        return f"Case template: {types[0].value}" if len(types) == 1 else "Case templates"
    original = ctx.original_subject.strip() or "(no subject)"
    return original if _RE_PREFIX.match(original) else f"Re: {original}"


# --- headers ------------------------------------------------------------------------

def _set_headers(message: EmailMessage, envelope: Envelope, config: Config) -> None:
    message["From"] = _address(config.from_name, config.from_address)
    message["To"] = [_address(name, address) for name, address in envelope.to]
    message["Subject"] = _one_line(envelope.subject)
    message["Date"] = format_datetime(dt.datetime.now(config.timezone))
    message["Message-ID"] = new_message_id(config, envelope.case_number)
    if envelope.case_number is not None and config.conversations.plus_addressing:
        message["Reply-To"] = _address(config.from_name, plus_address(
            config.support_addresses[0], config.conversations.secret, envelope.case_number))
    if envelope.in_reply_to:
        original = _bracketed(envelope.in_reply_to)
        message["In-Reply-To"] = original
        references = [_bracketed(r) for r in envelope.references if r.strip("<>") != envelope.in_reply_to.strip("<>")]
        message["References"] = " ".join([*references, original])
    # RFC 3834: tell other auto-responders (and Exchange) not to answer us, and mark our own loop.
    message["Auto-Submitted"] = envelope.auto_submitted
    message["X-Auto-Response-Suppress"] = "All"
    message["X-Loop"] = config.from_address


def _address(name: str, address: str) -> Address:
    # Built from its parts so that an unusual but deliverable local part does not fail strict parsing.
    username, _, domain = address.strip().rpartition("@")
    return Address(display_name=_one_line(name), username=username, domain=domain)


def _bracketed(message_id: str) -> str:
    return f"<{message_id.strip().strip('<>')}>"


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- templates ----------------------------------------------------------------------

def _template_values(ctx: ReplyContext, config: Config) -> dict[str, Any]:
    values: dict[str, Any] = {
        "to_name": ctx.to_name,
        "original_subject": ctx.original_subject.strip() or "(no subject)",
    }
    values.update(_KIND_VALUES[ctx.kind](ctx, config))
    return values


def _acknowledgement_values(ctx: ReplyContext, config: Config) -> dict[str, Any]:
    draft = _draft(ctx)
    submitted_by = draft.submitted_by.full_name if draft.submitted_by.id != draft.contact.id else ""
    case = CaseSummary(
        number=_case_number(ctx), case_type=draft.spec.case_type.value, priority=draft.priority,
        priority_note=draft.priority_note or "", department=draft.department, billable=draft.billable,
        created=_format_created(ctx.case_created, config), account=draft.account.name,
        contact=draft.contact.full_name, contact_email=draft.contact.email, submitted_by=submitted_by,
        fields=_understood_fields(draft),
        attachments=tuple((name, readable_size(size)) for name, size in ctx.attachments),
        follows_case=draft.follows_case)
    return {"case": case}


def _needs_information_values(ctx: ReplyContext, config: Config) -> dict[str, Any]:
    decision = ctx.decision
    problems = [p.message for p in decision.problems]
    if decision.case_type is None:
        lines = _form_lines(GENERIC_FIELDS, decision.prefill, None)
        return {"problems": problems, "sheet": None, "generic_lines": lines, "case_types": _all_sheets(config)}
    spec = CASE_TYPES[decision.case_type]
    prefill = {**decision.prefill, CASE_TYPE.label: spec.case_type.value}
    sheet = _sheet(spec, config, prefill)
    return {"problems": problems, "sheet": sheet, "generic_lines": (), "case_types": ()}


def _refusal_values(ctx: ReplyContext, config: Config) -> dict[str, Any]:
    return {"problems": [p.message for p in ctx.decision.problems]}


def _template_kind_values(ctx: ReplyContext, config: Config) -> dict[str, Any]:
    sheets = tuple(_sheet(CASE_TYPES[t], config, {CASE_TYPE.label: t.value})
                   for t in _template_types(ctx.decision))
    return {"sheets": sheets}


_KIND_VALUES: dict[Reply, Callable[[ReplyContext, Config], dict[str, Any]]] = {
    Reply.ACKNOWLEDGEMENT: _acknowledgement_values,
    Reply.NEEDS_INFORMATION: _needs_information_values,
    Reply.REFUSAL: _refusal_values,
    Reply.TEMPLATE: _template_kind_values,
}


def _case_number(ctx: ReplyContext) -> int | str:
    if ctx.case_number is not None:
        return ctx.case_number
    if ctx.preview:
        return "NEW"
    raise ValueError("an acknowledgement needs the case number")


def _draft(ctx: ReplyContext) -> CaseDraft:
    if ctx.decision.draft is None:
        raise ValueError(f"a {ctx.kind.value} reply needs the decision's case draft")
    return ctx.decision.draft


def _template_types(decision: Decision) -> tuple[CaseType, ...]:
    return decision.template_types or tuple(CaseType)


# --- case templates -----------------------------------------------------------------

def _all_sheets(config: Config) -> tuple[TypeSheet, ...]:
    return tuple(_sheet(spec, config, {}) for spec in CASE_TYPES.values())


def _sheet(spec: CaseTypeSpec, config: Config, values: Mapping[str, str]) -> TypeSheet:
    # Case Type comes first so that a filled-in template says what it is before anything else.
    fields = (CASE_TYPE, *(f for f in spec.all_fields if f.label != CASE_TYPE.label))
    return TypeSheet(spec.case_type.value, spec.description, config.department_for(spec.case_type),
                     spec.may_be_billable, _form_lines(fields, values, spec))


def _form_lines(fields: Iterable[Field], values: Mapping[str, str], spec: CaseTypeSpec | None) -> tuple[FormLine, ...]:
    return tuple(FormLine(f.label, values.get(f.label, "").strip(), field_hint(f), _required_note(f.label, spec))
                 for f in fields)


def field_hint(field: Field) -> str:
    """What to write after a field's label, in a few words."""
    parts = [field.hint] if field.hint else []
    if not field.hint and field.choices:
        parts.append("one of: " + ", ".join(field.choices))
    if field.kind is FieldKind.DATE:
        parts.append("a date after today, MM/DD/YYYY" if field.future_only else "a date, MM/DD/YYYY")
    return "; ".join(parts)


def _required_note(label: str, spec: CaseTypeSpec | None) -> str:
    if label == CASE_TYPE.label or label in (spec.required if spec else _GENERIC_REQUIRED):
        return "required"
    if spec is None:
        return ""
    conditions = [(on, value) for on, value, labels in spec.required_when if label in labels]
    if not conditions:
        return ""
    on = conditions[0][0]
    return f"required when {on} is " + " or ".join(value for _, value in conditions)


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
        created = created.replace(tzinfo=dt.timezone.utc)  # the store records every time in UTC
    return created.astimezone(config.timezone).strftime("%m/%d/%Y - %I:%M %p %Z")


def readable_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"
