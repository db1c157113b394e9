"""The parse stage: raw bytes → one frozen `Submission`, computed once per message.

store raw → **parse** → decide → act → outbox → deliver. Everything later
stages read of a message is here: the parsed message (`parsers.message`), what
its subject says (`parsers.subject`), the new text without quoted history
(`parsers.quotes`), the `Field: value` template (`parsers.template`) typed for
the case type it names (`parsers.values`), with every field's problem kept,
and any delivery report (`parsers.report`). The case-type table is handed in
as data (`FormSchema`); nothing here decides, looks anything up or writes.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from parsers.fields import Field, FormSchema
from parsers.limits import Excess, Limits, content_excess, measure, structural_excess
from parsers.message import NotAnEmail, ParsedMessage, parse_message
from parsers.quotes import visible_reply
from parsers.report import DeliveryReport, read_report
from parsers.robots import automatic_reason
from parsers.subject import SubjectParts, read_subject, strip_reply_prefixes
from parsers.template import FieldText, TemplateParse, first_line, parse_visible_text
from parsers.values import coerce, match_choice

__all__ = ["FieldError", "Form", "Submission", "parse"]


@dataclass(frozen=True)
class FieldError:
    """A field whose text could not be read as its kind asks, in words for the sender."""

    label: str
    message: str


@dataclass(frozen=True)
class Form:
    """The template, typed for the case type it names.

    ``case_type`` is the canonical name of the type the message names (in a
    ``Case Type:`` line, else a ``[Case Type]`` subject prefix) when it is one
    we know; ``case_type_written`` is the text as written, and
    ``case_type_source`` says where it was found. Values are typed only once
    the type is known, since a label (``Type``, ``Request Type``) means a
    different field in different types.
    """

    case_type: str | None = None
    case_type_written: str | None = None
    case_type_source: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)  # label → typed value
    written: Mapping[str, str] = field(default_factory=dict)  # label → text as written
    errors: tuple[FieldError, ...] = ()
    notes: tuple[str, ...] = ()  # how things were read, for the decision log
    prefill: Mapping[str, str] = field(default_factory=dict)  # label → text, to pre-fill a template in a reply


@dataclass(frozen=True)
class Submission:
    """One inbound message, parsed."""

    size: int  # of the raw bytes
    message: ParsedMessage | None  # None when the bytes are not mail at all
    not_email: str | None  # why not, in plain words
    subject: SubjectParts
    new_text: str  # what the sender wrote this time: no quoted history, no signature
    template: TemplateParse
    form: Form
    automatic: str | None  # why a program sent the message rather than a person (`parsers.robots`)
    report: DeliveryReport | None  # a bounce or delivery report of a mail system
    envelope_sender: str | None = None  # the SMTP MAIL FROM; "" for the null sender, None when not known
    excess: Excess | None = None  # the limit the message is over (`parsers.limits`): it is kept, not acted on


_NO_TEMPLATE = TemplateParse((), "", ())


def parse(raw: bytes, forms: FormSchema, envelope_sender: str | None = None, limits: Limits | None = None
          ) -> Submission:
    """Parse `raw` once; `envelope_sender` is the SMTP MAIL FROM it came with, when it came by SMTP/LMTP.

    A message over a structural limit (size, headers, MIME depth or parts) has
    only its headers read; its `excess` says which limit.
    """
    limits = limits or Limits()
    excess = structural_excess(measure(raw), limits)
    try:
        message = parse_message(raw, headers_only=excess.reason if excess else None)
    except NotAnEmail as exc:
        return Submission(len(raw), None, exc.reason, read_subject(""), "", _NO_TEMPLATE, Form(),
                          None, None, envelope_sender)
    subject = read_subject(message.subject)
    automatic = automatic_reason(message, message.structure, envelope_sender)
    if excess is not None:
        return Submission(len(raw), message, None, subject, "", _NO_TEMPLATE, Form(), automatic, None,
                          envelope_sender, excess)
    new_text = visible_reply(message.text, message.html, reply=may_be_reply(message, subject))
    template = parse_visible_text(new_text, forms.labels, message.from_name)
    return Submission(size=len(raw), message=message, not_email=None, subject=subject, new_text=new_text,
                      template=template, form=read_form(template, subject, forms), automatic=automatic,
                      report=read_report(message, message.structure, envelope_sender),
                      envelope_sender=envelope_sender,
                      excess=content_excess([len(a.content) for a in message.attachments], limits))


def may_be_reply(message: ParsedMessage, subject: SubjectParts) -> bool:
    """Whether the headers name an earlier message: In-Reply-To, References, a Re:/Fwd: prefix or a case tag.

    Any earlier message counts, not only ours, and any prefix: a message that
    is not a reply by all of these is a new conversation, whose text the quote
    strippers need not read unless it shows quoted history (`parsers.quotes`).
    """
    return bool(message.in_reply_to or message.references or subject.case_number is not None
                or strip_reply_prefixes(subject.text) != subject.text.strip())


def read_form(template: TemplateParse, subject: SubjectParts, forms: FormSchema) -> Form:
    """The template's values typed for the case type it names; untyped when it names none we know."""
    named = template.get(forms.case_type.label)
    written, source = ((field_text(named, forms.case_type), f"{forms.case_type.label} field") if named and named.text
                       else (subject.type_prefix, "subject prefix"))
    case_type = match_choice(written, forms.case_type.choices, forms.case_type.choice_aliases) if written else None
    if case_type is None:
        return Form(None, written, source if written else "", prefill=_prefill(template, subject, forms, None))
    fields = forms.fields_by_type[case_type]
    values, as_written, errors, notes = _typed(template, fields, case_type, forms)
    notes += _fill_from_the_message(template, subject, forms, values, as_written)
    return Form(case_type, written, source, values, as_written, tuple(errors), tuple(notes),
                _prefill(template, subject, forms, fields, case_type))


def _typed(template: TemplateParse, fields: tuple[Field, ...], case_type: str, forms: FormSchema
           ) -> tuple[dict[str, Any], dict[str, str], list[FieldError], list[str]]:
    by_label = {f.label: f for f in fields}
    values: dict[str, Any] = {}
    written: dict[str, str] = {}
    errors: list[FieldError] = []
    notes: list[str] = []
    for found in template.fields:
        field_spec = by_label.get(found.label)
        if field_spec is None:
            notes.append(f"field '{found.written}' does not apply to {case_type} cases; ignored")
            continue
        if found.label in forms.not_typed:
            continue
        text = field_text(found, field_spec)
        if text != found.text:
            notes.append(f"{found.label}: only its own line was read; the lines below it are not part of it")
        coerced = coerce(field_spec, text)
        written[found.label] = text
        values[found.label] = coerced.value
        if coerced.error:
            errors.append(FieldError(found.label, coerced.error))
        if coerced.note:
            notes.append(f"{found.label}: {coerced.note}")
    notes += [f"field '{label}' was given more than once; the first value was used" for label in template.repeated]
    return values, written, errors, notes


def field_text(found: FieldText, field_spec: Field) -> str:
    """The text of a field as its kind reads it: a single-line kind takes its own line only."""
    return first_line(found.text) if field_spec.kind.single_line else found.text


def _fill_from_the_message(template: TemplateParse, subject: SubjectParts, forms: FormSchema,
                           values: dict[str, Any], written: dict[str, str]) -> list[str]:
    """The email Subject is the case Subject when the body gives none; free text before the template
    is the Description when the body has no Description field."""
    notes = []
    if not values.get(forms.subject.label) and subject.topic:
        values[forms.subject.label] = written[forms.subject.label] = subject.topic
        notes.append(f"{forms.subject.label} taken from the email subject")
    if not values.get(forms.description.label) and template.preamble:
        values[forms.description.label] = written[forms.description.label] = template.preamble
        notes.append(f"{forms.description.label} taken from the text before the template")
    return notes


def _prefill(template: TemplateParse, subject: SubjectParts, forms: FormSchema, fields: tuple[Field, ...] | None,
             case_type: str | None = None) -> dict[str, str]:
    """Label → text as written, for every field understood, to pre-fill the template in a reply."""
    by_label = None if fields is None else {f.label: f for f in fields}
    prefill = {found.label: found.text if by_label is None else field_text(found, by_label[found.label])
               for found in template.fields if by_label is None or found.label in by_label}
    if case_type is not None:
        prefill[forms.case_type.label] = case_type
    if not prefill.get(forms.subject.label) and subject.topic:
        prefill[forms.subject.label] = subject.topic
    return prefill
