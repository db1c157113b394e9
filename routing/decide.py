"""The decision: from a parsed message to one outcome, with every reason behind it.

An ordered chain of small steps, each of which either lets the message go on
or ends the decision (ignore, refuse, ask for information, send templates).
Nothing here writes anything: the worker acts on the returned `Decision`, and
`intake ingest --dry-run` prints it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable

from parsers.message import Attachment, ParsedMessage
from parsers.quotes import visible_reply
from parsers.subject import case_type_prefix, status_request, strip_reply_prefixes, template_request
from parsers.template import TemplateParse, parse_template
from parsers.values import coerce, match_choice
from routing import rules
from routing.contacts import (AccountView, ContactView, Directory, choose_account, choose_contact, may_file,
                              sender_standing)
from routing.outcomes import Outcome, Problem, Reply
from routing.schema import CASE_TYPE, COMMON_FIELDS, CaseType, CaseTypeSpec, known_labels, spec_for
from routing.threads import CaseView, Threads, ThreadMatch, case_from_our_message_id, match_thread, may_comment

LABELS = known_labels()
_COMMON_LABELS = {f.label for f in COMMON_FIELDS}


@dataclass(frozen=True)
class Policy:
    """What the decision needs to know of the configuration and the clock."""

    own_addresses: frozenset[str]
    max_message_bytes: int
    today: dt.date
    department_for: Callable[[CaseType], str]
    now: dt.datetime = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    secret: str = ""
    support_addresses: tuple[str, ...] = ()
    staff_addresses: tuple[str, ...] = ()
    plus_addressing: bool = True
    reopen_window: dt.timedelta = dt.timedelta(days=14)
    trusted_authserv_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CaseDraft:
    """A case ready to be stored: every value decided, nothing yet written."""

    spec: CaseTypeSpec
    account: AccountView
    contact: ContactView
    submitted_by: ContactView
    priority: str
    priority_note: str | None
    subject: str
    description: str
    fields: dict[str, Any]  # the type's own fields, JSON-ready values
    fields_as_written: dict[str, str]
    module: str | None
    department: str
    attachments: tuple[Attachment, ...]
    follows_case: int | None = None  # a late reply to this closed case made the new one

    @property
    def billable(self) -> bool:
        return self.spec.may_be_billable


@dataclass(frozen=True)
class CommentDraft:
    """A reply on a case's thread, reduced to its new text."""

    case: CaseView
    author: str  # email address
    body: str
    attachments: tuple[Attachment, ...]
    by_staff: bool
    reopens: bool


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reasons: tuple[str, ...]
    reply: Reply | None = None
    problems: tuple[Problem, ...] = ()
    draft: CaseDraft | None = None
    case_type: CaseType | None = None
    # What was understood, label → text as written: pre-fills the template of a needs-information reply.
    prefill: dict[str, str] = field(default_factory=dict)
    template_types: tuple[CaseType, ...] = ()
    comment: CommentDraft | None = None
    status_of: ContactView | None = None  # a `status` request: list this contact's cases


class _Stop(Exception):
    """Ends the chain with a decision; raised by a step, caught by `decide`."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.outcome.value)
        self.decision = decision


def decide(message: ParsedMessage, size: int, directory: Directory, threads: Threads, policy: Policy) -> Decision:
    log: list[str] = []
    try:
        return _decide(message, size, directory, threads, policy, log)
    except _Stop as stop:
        return stop.decision


def _decide(message: ParsedMessage, size: int, directory: Directory, threads: Threads, policy: Policy,
            log: list[str]) -> Decision:
    _ignore_automatic(message, policy, log)
    _refuse_forged(message, policy, log)
    _refuse_oversize(size, policy, log)
    _answer_template_request(message, log)
    _answer_status_request(message, directory, log)
    _add_to_thread(message, directory, threads, policy, log)
    sender = _authorized_sender(message, directory, log)
    parse = parse_template(message.text, LABELS)
    spec = _case_type(message, parse, log)
    _permitted(sender, spec, log, parse)
    return _build_case(message, parse, spec, sender, directory, policy, log)


def _stop(outcome: Outcome, log: list[str], reply: Reply | None = None, **values: Any) -> _Stop:
    return _Stop(Decision(outcome, tuple(log), reply, **values))


def _ignore_automatic(message: ParsedMessage, policy: Policy, log: list[str]) -> None:
    reason = rules.auto_reply_reason(message, policy.own_addresses)
    if reason is None and not message.from_address:
        reason = "no sender address to answer"
    if reason is None and message.message_id and case_from_our_message_id(message.message_id, policy.secret):
        reason = f"our own message <{message.message_id}> came back"
    if reason:
        log.append(f"ignored, never answered: {reason}")
        raise _stop(Outcome.IGNORED, log)
    log.append(f"sender {message.from_address}; not an automatic message")


def _refuse_forged(message: ParsedMessage, policy: Policy, log: list[str]) -> None:
    """A forged sender is never answered: the reply would go to someone who did not write."""
    reason = rules.forged_sender_reason(message, policy.trusted_authserv_ids)
    if reason:
        log.append(f"refused, not answered: the sender {message.from_address} is forged: {reason}")
        raise _stop(Outcome.REFUSED, log)


def _refuse_oversize(size: int, policy: Policy, log: list[str]) -> None:
    problem = rules.size_problem(size, policy.max_message_bytes)
    if problem:
        log.append(f"refused: {size} bytes is over the limit of {policy.max_message_bytes}")
        raise _stop(Outcome.REFUSED, log, Reply.REFUSAL, problems=(problem,))


def _answer_template_request(message: ParsedMessage, log: list[str]) -> None:
    wanted, written = template_request(message.subject)
    if not wanted:
        return
    types = tuple(CaseType)
    if written:
        chosen = match_choice(written, CASE_TYPE.choices, CASE_TYPE.choice_aliases)
        if chosen:
            types = (CaseType(chosen),)
        else:
            log.append(f"'{written}' is not a case type; sending every template")
    log.append("template request: sending " + ", ".join(t.value for t in types))
    raise _stop(Outcome.TEMPLATE_SENT, log, Reply.TEMPLATE, template_types=types)


def _answer_status_request(message: ParsedMessage, directory: Directory, log: list[str]) -> None:
    """Subject `status`: the sender's open cases and those closed in the last 90 days."""
    if not status_request(message.subject):
        return
    address = message.from_address or ""
    sender = directory.contact_by_email(address)
    if sender is None or not sender.active:
        refusal = sender_standing(sender, address)
        reason = refusal.reason if refusal else f"{address} is not an active contact"
        log.append(f"refused status request: {reason}")
        raise _stop(Outcome.REFUSED, log, Reply.REFUSAL, problems=(Problem(reason, refuse=True),))
    log.append(f"status request from {sender.full_name}")
    raise _stop(Outcome.STATUS_SENT, log, Reply.STATUS, status_of=sender)


def _add_to_thread(message: ParsedMessage, directory: Directory, threads: Threads, policy: Policy,
                   log: list[str]) -> None:
    """A reply on a case's thread becomes a comment (or, long after closing, a follow-up case)."""
    match = match_thread(message, threads, policy.secret, policy.support_addresses, policy.plus_addressing)
    if match is None:
        return
    address = message.from_address or ""
    log.append(f"reply to case #{match.case.number}: {match.how}")
    sender = directory.contact_by_email(address)
    refusal = may_comment(sender, address, match.case, policy.staff_addresses)
    if refusal:
        log.append(f"refused: {refusal}")
        raise _stop(Outcome.REFUSED, log, Reply.REFUSAL, problems=(Problem(refusal, refuse=True),))
    body = visible_reply(message.text, message.html)
    if not body.strip() and not message.attachments:
        log.append("ignored: the reply has no new text and no attachments")
        raise _stop(Outcome.IGNORED, log)
    case = match.case
    if case.status == "closed" and case.closed is not None and policy.now - case.closed > policy.reopen_window:
        raise _Stop(_follow_up(message, match, body, sender, directory, policy, log))
    by_staff = address in policy.staff_addresses
    reopens = case.status in ("resolved", "closed") and not by_staff
    log.append(f"comment added to case #{case.number}" + (f"; reopens it ({case.status})" if reopens else ""))
    comment = CommentDraft(case, address, body, message.attachments, by_staff, reopens)
    raise _stop(Outcome.COMMENT_ADDED, log, comment=comment)


def _follow_up(message: ParsedMessage, match: ThreadMatch, body: str, sender: ContactView | None,
               directory: Directory, policy: Policy, log: list[str]) -> Decision:
    """A new case of the same type for the same district, linked to the closed one."""
    old = match.case
    contact = directory.contact_by_email(old.contact_email) or sender
    if contact is None or sender is None:
        log.append("refused: the follow-up has no contact to file it for")
        reason = f"Case #{old.number} is closed; please send a new case."
        return Decision(Outcome.REFUSED, tuple(log), Reply.REFUSAL, (Problem(reason, refuse=True),))
    spec = spec_for(CaseType(old.case_type))
    account = AccountView(old.account_id, old.account_name)
    days = policy.reopen_window.days
    log.append(f"case #{old.number} was closed more than {days} days ago: a new case follows it")
    draft = CaseDraft(spec=spec, account=account, contact=contact, submitted_by=sender,
                      priority=rules.decide_priority(spec, None).priority, priority_note=None,
                      subject=old.subject, description=body, fields={}, fields_as_written={}, module=None,
                      department=policy.department_for(spec.case_type), attachments=message.attachments,
                      follows_case=old.number)
    log.append(f"case created: {spec.case_type.value}, following case #{old.number}")
    return Decision(Outcome.CASE_CREATED, tuple(log), Reply.ACKNOWLEDGEMENT, draft=draft, case_type=spec.case_type)


def _authorized_sender(message: ParsedMessage, directory: Directory, log: list[str]) -> ContactView:
    address = message.from_address or ""
    sender = directory.contact_by_email(address)
    refusal = sender_standing(sender, address)
    if refusal:
        log.append(f"refused: {refusal.reason}")
        raise _stop(Outcome.REFUSED, log, Reply.REFUSAL, problems=(Problem(refusal.reason, refuse=True),))
    assert sender is not None  # sender_standing refuses unknown senders
    log.append(f"sender is an active {sender.contact_type.value} contact ({sender.full_name})")
    return sender


def _case_type(message: ParsedMessage, parse: TemplateParse, log: list[str]) -> CaseTypeSpec:
    written = parse.get(CASE_TYPE.label)
    prefix, _ = case_type_prefix(strip_reply_prefixes(message.subject))
    text, where = (written.text, "Case Type field") if written and written.text else (prefix, "subject prefix")
    if text:
        chosen = match_choice(text, CASE_TYPE.choices, CASE_TYPE.choice_aliases)
        if chosen:
            log.append(f"case type {chosen} (from the {where} '{text}')")
            return spec_for(CaseType(chosen))
        problem = Problem(f"'{text}' is not a case type we know. Choose one of: "
                          + ", ".join(t.value for t in CaseType) + ".", CASE_TYPE.label)
    elif not message.text.strip():
        problem = Problem("Your message has no text. Please describe your request using the case template "
                          "below.", CASE_TYPE.label)
    elif not parse.fields:
        problem = Problem("We could not find a case template in your message. Please fill in the template "
                          "below, one 'Field: value' line per field, starting with the Case Type.", CASE_TYPE.label)
    else:
        problem = Problem("The Case Type is missing. Add a 'Case Type:' line with one of: "
                          + ", ".join(t.value for t in CaseType) + ".", CASE_TYPE.label)
    log.append(f"needs information: {problem.message}")
    raise _stop(Outcome.NEEDS_INFORMATION, log, Reply.NEEDS_INFORMATION, problems=(problem,),
                prefill=_prefill(message, parse, None))


def _permitted(sender: ContactView, spec: CaseTypeSpec, log: list[str], parse: TemplateParse) -> None:
    refusal = may_file(sender, spec)
    if refusal:
        log.append(f"refused: {refusal.reason}")
        raise _stop(Outcome.REFUSED, log, Reply.REFUSAL, problems=(Problem(refusal.reason, refuse=True),),
                    case_type=spec.case_type)


def _build_case(message: ParsedMessage, parse: TemplateParse, spec: CaseTypeSpec, sender: ContactView,
                directory: Directory, policy: Policy, log: list[str]) -> Decision:
    problems: list[Problem] = []
    account = _resolved(choose_account(sender, _text(parse, "Account")), "Account", problems)
    contact = None
    if isinstance(account, AccountView):
        contact = _resolved(choose_contact(sender, account, _text(parse, "Contact"), directory), "Contact", problems)
    values, written = _typed_fields(spec, parse, problems, log)
    _fill_subject_and_description(message, parse, values, written, log)
    typed = rules.TypedFields(values, written)
    problems += rules.missing_required(spec, typed)
    problems += rules.dates_in_future(spec, typed, policy.today)
    problems += rules.data_restore_window(spec, typed, policy.today)
    if isinstance(contact, ContactView):
        problems += rules.sql_server_needs_bootcamp(spec, typed, contact)
    if problems or not isinstance(account, AccountView) or not isinstance(contact, ContactView):
        refuse = any(p.refuse for p in problems)
        outcome, reply = (Outcome.REFUSED, Reply.REFUSAL) if refuse else (Outcome.NEEDS_INFORMATION,
                                                                           Reply.NEEDS_INFORMATION)
        log.extend(f"{outcome.value.replace('_', ' ')}: {p.message}" for p in problems)
        return Decision(outcome, tuple(log), reply, tuple(problems), case_type=spec.case_type,
                        prefill=_prefill(message, parse, spec))
    return _draft(message, spec, account, contact, sender, values, written, policy, log)


def _resolved(choice: Any, label: str, problems: list[Problem]) -> Any:
    if choice.problem:
        problems.append(Problem(choice.problem, label))
    return choice.value


def _text(parse: TemplateParse, label: str) -> str | None:
    found = parse.get(label)
    return found.text if found and found.text else None


def _typed_fields(spec: CaseTypeSpec, parse: TemplateParse, problems: list[Problem],
                  log: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    written: dict[str, str] = {}
    for found in parse.fields:
        field_spec = spec.field(found.label)
        if field_spec is None:
            log.append(f"field '{found.written}' does not apply to {spec.case_type.value} cases; ignored")
            continue
        if found.label in ("Account", "Contact", "Case Type"):
            continue
        coerced = coerce(field_spec, found.text)
        written[found.label] = found.text
        values[found.label] = coerced.value
        if coerced.error:
            problems.append(Problem(coerced.error, found.label))
        if coerced.note:
            log.append(f"{found.label}: {coerced.note}")
    for label in parse.repeated:
        log.append(f"field '{label}' was given more than once; the first value was used")
    return values, written


def _fill_subject_and_description(message: ParsedMessage, parse: TemplateParse, values: dict[str, Any],
                                  written: dict[str, str], log: list[str]) -> None:
    """The email Subject is the case Subject when the body gives none; free text before the template
    is the Description when the body has no Description field."""
    if not values.get("Subject"):
        _, subject = case_type_prefix(strip_reply_prefixes(message.subject))
        if subject:
            values["Subject"] = written["Subject"] = subject
            log.append("Subject taken from the email subject")
    if not values.get("Description") and parse.preamble:
        values["Description"] = written["Description"] = parse.preamble
        log.append("Description taken from the text before the template")


def _prefill(message: ParsedMessage, parse: TemplateParse, spec: CaseTypeSpec | None) -> dict[str, str]:
    """Label → text as written, for every field understood, to pre-fill the template in a reply."""
    prefill = {f.label: f.text for f in parse.fields if spec is None or spec.field(f.label)}
    if spec is not None:
        prefill[CASE_TYPE.label] = spec.case_type.value
    if not prefill.get("Subject"):
        _, subject = case_type_prefix(strip_reply_prefixes(message.subject))
        if subject:
            prefill["Subject"] = subject
    return prefill


def _draft(message: ParsedMessage, spec: CaseTypeSpec, account: AccountView, contact: ContactView,
           sender: ContactView, values: dict[str, Any], written: dict[str, str], policy: Policy,
           log: list[str]) -> Decision:
    priority = rules.decide_priority(spec, values.get("Priority"))
    log.append(f"priority {priority.priority}" + (f": {priority.note}" if priority.note else
                                                   " (as written)" if values.get("Priority") else " (default)"))
    log.append(f"account {account.name}; contact {contact.full_name}"
               + (f", submitted by {sender.full_name} on their behalf" if contact.id != sender.id else ""))
    department = policy.department_for(spec.case_type)
    log.append(f"routed to {department}" + ("; may be billable" if spec.may_be_billable else ""))
    own = {label: _json_ready(v) for label, v in values.items() if label not in _COMMON_LABELS}
    draft = CaseDraft(
        spec=spec, account=account, contact=contact, submitted_by=sender,
        priority=priority.priority, priority_note=priority.note,
        subject=str(values["Subject"])[:500], description=str(values["Description"]),
        fields=own, fields_as_written={k: v for k, v in written.items() if k not in _COMMON_LABELS},
        module=values.get("Module"), department=department, attachments=message.attachments)
    log.append(f"case created: {spec.case_type.value}")
    return Decision(Outcome.CASE_CREATED, tuple(log), Reply.ACKNOWLEDGEMENT, draft=draft,
                    case_type=spec.case_type)


def _json_ready(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value

