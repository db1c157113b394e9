"""The decision: from a parsed `Submission` to one typed outcome, with every reason behind it.

store raw → parse → **decide** → act → outbox → deliver. An ordered chain of
small rules, as in Mailman's chains: each rule looks at the submission and
either ends the decision with an outcome (ignore, record a bounce, refuse,
ask for information, send templates or status, add a comment, create a case)
or lets the message go on, adding a reason to the log as it does. Every policy
decision is here, the per-sender reply cap included (fed by a read-only
count). Nothing here writes anything: the act stage carries the outcome out,
and `intake ingest --dry-run` prints it.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from parsers.message import ParsedMessage
from parsers.submission import Submission
from parsers.values import match_choice
from routing import notices, rules
from routing.authenticity import Verdict, organisational_domain
from routing.checks import CheckInput, dates_in_future, missing_required
from routing.contacts import (
    AccountView,
    ContactView,
    Directory,
    choose_account,
    choose_contact,
    may_file,
    sender_standing,
)
from routing.outcomes import (
    AddComment,
    Answered,
    AskForInformation,
    CaseDraft,
    CommentDraft,
    CreateCase,
    Decision,
    Hold,
    Ignore,
    Problem,
    Quarantine,
    RecordBounce,
    Refuse,
    SendStatus,
    SendTemplates,
)
from routing.schema import (
    ACCOUNT,
    CASE_TYPE,
    COMMON_FIELDS,
    CONTACT,
    DEFAULT_TABLE,
    DESCRIPTION,
    MODULE,
    PRIORITY,
    SUBJECT,
    CaseType,
    CaseTypeSpec,
    CaseTypeTable,
)
from routing.states import CaseStatus
from routing.threads import ThreadMatch, Threads, case_from_our_message_id, match_thread, may_comment

__all__ = ["CaseLog", "Policy", "RecentCases", "ReplyLog", "Views", "decide"]

_COMMON_LABELS = {f.label for f in COMMON_FIELDS}


class ReplyLog(Protocol):
    """Read-only counts of the answers mail from an address was sent."""

    def automatic_replies_since(self, address: str, since: dt.datetime) -> int: ...

    def refusals_since(self, address: str, since: dt.datetime) -> int: ...

    def held_notices_since(self, address: str, since: dt.datetime) -> int: ...


@dataclass(frozen=True)
class RecentCases:
    """The new cases of a window: how many, and when the `limit`-th newest was made (None with fewer).

    That case leaving the window is what frees a place under the limit; the
    count and the one time are all the rule needs, however many cases there are.
    """

    count: int
    limit_th_newest: dt.datetime | None


class CaseLog(Protocol):
    """Read-only look-ups of the rate of new cases, and of mail waiting for it."""

    def cases_created_since(self, contact_id: int, account_id: int, since: dt.datetime, sender_limit: int,
                            account_limit: int) -> tuple[RecentCases, RecentCases]:
        """The cases filed by the contact, and the cases of the account, created since then, each against its limit."""
        ...

    def held_from(self, address: str) -> tuple[dt.datetime, ...]:
        """When each message from ``address`` that waits for the rate is due (earliest first)."""
        ...


@dataclass(frozen=True)
class Views:
    """The read-only look-ups the decision may make."""

    directory: Directory
    threads: Threads
    replies: ReplyLog
    cases: CaseLog
    notices: notices.NoticeLookup = notices.NO_NOTICES


@dataclass(frozen=True)
class Policy:
    """What the decision needs to know of the configuration and the clock."""

    own_addresses: frozenset[str]
    today: dt.date
    department_for: Callable[[CaseType], str]
    case_types: CaseTypeTable = DEFAULT_TABLE  # with the deployment's open lists (modules and the like)
    now: dt.datetime = dt.datetime.min.replace(tzinfo=dt.UTC)
    secret: str = ""
    support_addresses: tuple[str, ...] = ()
    staff_addresses: tuple[str, ...] = ()
    plus_addressing: bool = True
    reopen_window: dt.timedelta = dt.timedelta(days=14)
    # `[security] unauthenticated_domains`: mail from these fails authentication and is handled as if unchecked.
    unauthenticated_domains: frozenset[str] = frozenset()
    auto_replies_per_hour: int = 10
    # New cases an hour, filed by one contact and for one account; more wait (Hold), in order.
    cases_per_hour_per_sender: int = 30
    cases_per_hour_per_account: int = 60
    ignore_case_rate: bool = False  # `intake held release`: a person said to process it now
    # A stranger (no contact of any district) is told how to become one at most once in this time.
    stranger_refusal_window: dt.timedelta = dt.timedelta(days=30)


@dataclass
class _Context:
    """One decision in progress: the submission, the look-ups, and the log of reasons so far."""

    submission: Submission
    views: Views
    policy: Policy
    verdict: Verdict  # sender authentication's, made before the decision (`intake.trust`)
    log: list[str] = field(default_factory=list)
    sender: ContactView | None = None  # once the sender is known to be an active contact
    spec: CaseTypeSpec | None = None  # once the case type is known

    @property
    def message(self) -> ParsedMessage:
        assert self.submission.message is not None  # the first rule ends the chain for non-mail
        return self.submission.message

    @property
    def address(self) -> str:
        return self.message.from_address or ""

    @property
    def answer_sender(self) -> tuple[tuple[str, str], ...]:
        return ((self.message.from_name, self.address),)

    def reasons(self, *more: str) -> tuple[str, ...]:
        self.log.extend(more)
        return tuple(self.log)


Rule = Callable[[_Context], Decision | None]


def decide(submission: Submission, views: Views, policy: Policy, verdict: Verdict | None = None) -> Decision:
    """The one outcome of a message: the first rule of the chain that decides, then the reply cap.

    ``verdict`` is what sender authentication found; None (as with sender_auth = none) checks nothing.
    """
    context = _Context(submission, views, policy, verdict or Verdict.unchecked())
    for rule in _CHAIN:
        decision = rule(context)
        if decision is not None:
            return _within_reply_cap(_strangers_told_once(decision, context), context)
    raise AssertionError("the last rule of the chain always decides")


# --- mail nobody should answer ---------------------------------------------------


def _not_mail(c: _Context) -> Decision | None:
    if c.submission.message is not None:
        return None
    return Ignore(reasons=c.reasons(f"ignored, never answered: not an email message: {c.submission.not_email}"))


def _delivery_report(c: _Context) -> Decision | None:
    """A bounce or delivery report of a mail system: recorded against our mail, never answered."""
    report = c.submission.report
    return RecordBounce(reasons=c.reasons(), report=report) if report is not None else None


def _ambiguous_sender(c: _Context) -> Decision | None:
    """A From that names no single sender is never answered: the answer could go to someone who did not write."""
    problem = c.message.sender_problem
    if problem is None:
        return None
    return Refuse(reasons=c.reasons(f"refused, not answered: the sender is ambiguous: {problem}"))


def _automatic(c: _Context) -> Decision | None:
    message = c.message
    reason = rules.auto_reply_reason(message, c.policy.own_addresses, c.submission.automatic)
    if reason is None and not message.from_address:
        reason = "no sender address to answer"
    if reason is None and message.message_id and case_from_our_message_id(message.message_id, c.policy.secret):
        reason = f"our own message <{message.message_id}> came back"
    if reason:
        return Ignore(reasons=c.reasons(f"ignored, never answered: {reason}"))
    c.log.append(f"sender {message.from_address}; not an automatic message")
    return None


def _authenticated(c: _Context) -> Decision | None:
    """Mail that fails sender authentication is never answered: the From may be someone who did not write.

    Claiming to be a contact (or staff), it is quarantined for a person to look
    at; from anyone else it is refused unanswered, so spam never fills the quarantine.
    """
    verdict = c.verdict
    if not verdict.checked:
        return None
    if verdict.authenticated:
        c.log.append(f"sender authenticated: {verdict.reason}")
        return None
    domain = c.address.rpartition("@")[2]
    if domain in c.policy.unauthenticated_domains or organisational_domain(domain) in c.policy.unauthenticated_domains:
        c.log.append(f"sender not authenticated ({verdict.reason}); accepted as {domain} is listed in "
                     f"[security] unauthenticated_domains")
        c.verdict = Verdict.unchecked()
        return None
    known = c.views.directory.contact_by_email(c.address) is not None or c.address in c.policy.staff_addresses
    if known:
        return Quarantine(reasons=c.reasons(f"quarantined, not answered: claims to be from {c.address}, and "
                                            f"sender authentication failed: {verdict.reason}"),
                          claimed_sender=c.address, why=verdict.reason)
    return Refuse(reasons=c.reasons(f"refused, not answered: {c.address} is no contact and sender "
                                    f"authentication failed: {verdict.reason}"))


def _over_a_limit(c: _Context) -> Decision | None:
    """A message over a limit (`parsers.limits`) is kept and not acted on; only an active contact is told."""
    excess = c.submission.excess
    if excess is None:
        return None
    reason = f"refused: over the limit {excess.limit}: {excess.reason}"
    sender = c.views.directory.contact_by_email(c.address)
    if sender is None or not sender.active:
        return Refuse(reasons=c.reasons(reason, f"no reply sent: {c.address} is no active contact"))
    return Refuse(reasons=c.reasons(reason), reply_to=c.answer_sender, problems=(Problem(excess.message, refuse=True),))


def _encrypted(c: _Context) -> Decision | None:
    """Encrypted mail is kept and refused: politely to a contact, unanswered to anyone else.

    A stranger's or a program's encrypted mail gets no answer (programs never
    reach this rule): an answer to a forged From would be backscatter, and
    the answer tells a contact only that we could not read it.
    """
    problem = rules.encrypted_problem(c.message.encryption)
    if problem is None:
        return None
    if c.views.directory.contact_by_email(c.address) is None:
        return Refuse(reasons=c.reasons(f"refused, not answered: {c.message.encryption} encrypted mail from "
                                        f"{c.address}, who is no contact; nothing in it can be read"))
    return Refuse(reasons=c.reasons(f"refused: the message is encrypted ({c.message.encryption}) and cannot be "
                                    f"read; kept unread"),
                  reply_to=c.answer_sender, problems=(problem,))


# --- commands in the subject -------------------------------------------------------


def _template_request(c: _Context) -> Decision | None:
    subject = c.submission.subject
    if not subject.asks_for_template:
        return None
    types = tuple(CaseType)
    if subject.template_type:
        chosen = match_choice(subject.template_type, CASE_TYPE.choices, CASE_TYPE.choice_aliases)
        if chosen:
            types = (CaseType(chosen),)
        else:
            c.log.append(f"'{subject.template_type}' is not a case type; sending every template")
    return SendTemplates(reasons=c.reasons("template request: sending " + ", ".join(t.value for t in types)),
                         reply_to=c.answer_sender, types=types)


def _status_request(c: _Context) -> Decision | None:
    """Subject `status`: the sender's open cases and those closed in the last 90 days."""
    if not c.submission.subject.asks_for_status:
        return None
    sender = c.views.directory.contact_by_email(c.address)
    if sender is None or not sender.active:
        refusal = sender_standing(sender, c.address)
        reason = refusal.reason if refusal else f"{c.address} is not an active contact"
        return _refuse(c, f"refused status request: {reason}", reason)
    return SendStatus(reasons=c.reasons(f"status request from {sender.full_name}"), reply_to=c.answer_sender,
                      contact=sender)


# --- replies on a case's thread ------------------------------------------------------


def _reply_on_a_thread(c: _Context) -> Decision | None:
    """A reply on a case's thread becomes a comment (or, long after closing, a follow-up case)."""
    policy = c.policy
    match = match_thread(c.message, c.submission.subject, c.views.threads, policy.secret, policy.support_addresses,
                         policy.plus_addressing)
    if match is None:
        return None
    c.log.append(f"reply to case #{match.case.number}: {match.how}")
    sender = c.views.directory.contact_by_email(c.address)
    refusal = may_comment(sender, c.address, match.case, policy.staff_addresses)
    if refusal:
        return _refuse(c, f"refused: {refusal}", refusal)
    body = c.submission.new_text
    if not body.strip() and not c.message.attachments:
        return Ignore(reasons=c.reasons("ignored: the reply has no new text and no attachments"))
    case = match.case
    if case.status == CaseStatus.CLOSED and case.closed is not None and policy.now - case.closed > policy.reopen_window:
        return _follow_up(c, match, body, sender)
    by_staff = c.address in policy.staff_addresses
    reopens = case.status in (CaseStatus.RESOLVED, CaseStatus.CLOSED) and not by_staff
    comment = CommentDraft(case, c.address, body, c.message.attachments, by_staff, reopens)
    return AddComment(reasons=c.reasons(f"comment added to case #{case.number}"
                                        + (f"; reopens it ({case.status})" if reopens else "")), comment=comment)


def _follow_up(c: _Context, match: ThreadMatch, body: str, sender: ContactView | None) -> Decision:
    """A new case of the same type for the same district, linked to the closed one."""
    old = match.case
    contact = c.views.directory.contact_by_email(old.contact_email) or sender
    if contact is None or sender is None:
        return _refuse(c, "refused: the follow-up has no contact to file it for",
                       f"Case #{old.number} is closed; please send a new case.")
    spec = c.policy.case_types.spec_for(CaseType(old.case_type))
    c.log.append(f"case #{old.number} was closed more than {c.policy.reopen_window.days} days ago: "
                 f"a new case follows it")
    draft = CaseDraft(spec=spec, account=AccountView(old.account_id, old.account_name), contact=contact,
                      submitted_by=sender, priority=rules.decide_priority(spec, None).priority, priority_note=None,
                      subject=old.subject, description=body, fields={}, fields_as_written={}, module=None,
                      department=c.policy.department_for(spec.case_type), attachments=c.message.attachments,
                      follows_case=old.number)
    return _create(c, draft, f"case created: {spec.case_type.value}, following case #{old.number}")


# --- a new case ---------------------------------------------------------------------


def _sender_may_file_cases(c: _Context) -> Decision | None:
    sender = c.views.directory.contact_by_email(c.address)
    refusal = sender_standing(sender, c.address)
    if refusal:
        return _refuse(c, f"refused: {refusal.reason}", refusal.reason)
    assert sender is not None  # sender_standing refuses unknown senders
    c.log.append(f"sender is an active {sender.contact_type.value} contact ({sender.full_name})")
    c.sender = sender
    return None


def _case_type_named(c: _Context) -> Decision | None:
    form = c.submission.form
    if form.case_type is not None:
        c.log.append(f"case type {form.case_type} (from the {form.case_type_source} '{form.case_type_written}')")
        c.spec = c.policy.case_types.spec_for(CaseType(form.case_type))
        return None
    problem = Problem(_why_no_case_type(c.submission), CASE_TYPE.label)
    return AskForInformation(reasons=c.reasons(f"needs information: {problem.message}"), reply_to=c.answer_sender,
                             problems=(problem,), prefill=dict(form.prefill))


def _why_no_case_type(submission: Submission) -> str:
    written = submission.form.case_type_written
    names = ", ".join(t.value for t in CaseType)
    if written:
        return f"'{written}' is not a case type we know. Choose one of: {names}."
    if not submission.message or not submission.message.text.strip():
        return "Your message has no text. Please describe your request using the case template below."
    if not submission.template.fields:
        return ("We could not find a case template in your message. Please fill in the template below, one "
                "'Field: value' line per field, starting with the Case Type.")
    return f"The Case Type is missing. Add a 'Case Type:' line with one of: {names}."


def _sender_may_file_this_type(c: _Context) -> Decision | None:
    assert c.sender is not None and c.spec is not None
    refusal = may_file(c.sender, c.spec)
    return _refuse(c, f"refused: {refusal.reason}", refusal.reason, c.spec.case_type) if refusal else None


def _the_case(c: _Context) -> Decision:
    """Account, contact and every field checked: the case, or everything wrong with it at once."""
    sender, spec, form = c.sender, c.spec, c.submission.form
    assert sender is not None and spec is not None
    problems: list[Problem] = []
    account = _resolved(choose_account(sender, _written(c, ACCOUNT.label)), ACCOUNT.label, problems)
    contact = None
    if isinstance(account, AccountView):
        contact = _resolved(choose_contact(sender, account, _written(c, CONTACT.label), c.views.directory),
                            CONTACT.label, problems)
    problems += [Problem(error.message, error.label) for error in form.errors]
    c.log.extend(form.notes)
    case = CheckInput(spec, form.values, form.written, c.policy.today,
                      contact if isinstance(contact, ContactView) else None)
    for check in (missing_required, dates_in_future, *spec.checks):
        problems += check(case)
    if problems or not isinstance(account, AccountView) or not isinstance(contact, ContactView):
        return _problems(c, spec, problems)
    notes = tuple(line for note in spec.notes for line in note(case))
    c.log.extend(f"note for the contact: {line}" for line in notes)
    draft = dataclasses.replace(_draft(c, spec, account, contact, sender), notes=notes)
    return _create(c, draft, f"case created: {spec.case_type.value}")


def _written(c: _Context, label: str) -> str | None:
    found = c.submission.template.get(label)
    return found.text if found and found.text else None


def _resolved(choice: Any, label: str, problems: list[Problem]) -> Any:
    if choice.problem:
        problems.append(Problem(choice.problem, label))
    return choice.value


def _problems(c: _Context, spec: CaseTypeSpec, problems: Sequence[Problem]) -> Decision:
    """Refused when a problem cannot be fixed by resending; else ask for what is missing."""
    prefill = dict(c.submission.form.prefill)
    if any(p.refuse for p in problems):
        reasons = c.reasons(*(f"refused: {p.message}" for p in problems))
        return Refuse(reasons=reasons, reply_to=c.answer_sender, problems=tuple(problems), case_type=spec.case_type)
    reasons = c.reasons(*(f"needs information: {p.message}" for p in problems))
    return AskForInformation(reasons=reasons, reply_to=c.answer_sender, problems=tuple(problems),
                             case_type=spec.case_type, prefill=prefill)


def _draft(c: _Context, spec: CaseTypeSpec, account: AccountView, contact: ContactView,
           sender: ContactView) -> CaseDraft:
    values, written = c.submission.form.values, c.submission.form.written
    priority = rules.decide_priority(spec, values.get(PRIORITY.label))
    c.log.append(f"priority {priority.priority}" + (f": {priority.note}" if priority.note else
                                                     " (as written)" if values.get(PRIORITY.label) else " (default)"))
    c.log.append(f"account {account.name}; contact {contact.full_name}"
                 + (f", submitted by {sender.full_name} on their behalf" if contact.id != sender.id else ""))
    department = c.policy.department_for(spec.case_type)
    c.log.append(f"routed to {department}" + ("; may be billable" if spec.may_be_billable else ""))
    own = {label: _json_ready(v) for label, v in values.items() if label not in _COMMON_LABELS}
    return CaseDraft(
        spec=spec, account=account, contact=contact, submitted_by=sender,
        priority=priority.priority, priority_note=priority.note,
        subject=str(values[SUBJECT.label])[:500], description=str(values[DESCRIPTION.label]),
        fields=own, fields_as_written={k: v for k, v in written.items() if k not in _COMMON_LABELS},
        module=values.get(MODULE.label), department=department, attachments=c.message.attachments)


def _json_ready(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


# --- outcomes and the reply cap ------------------------------------------------------------


def _create(c: _Context, draft: CaseDraft, reason: str) -> CreateCase | Hold:
    held = _over_the_case_rate(c, draft)
    if held is not None:
        return held
    # A case filed on someone's behalf is acknowledged to them too.
    also = ((draft.contact.full_name, draft.contact.email),) if draft.on_behalf else ()
    return CreateCase(reasons=c.reasons(reason), reply_to=(*c.answer_sender, *also), draft=draft)


_HOUR = dt.timedelta(hours=1)


def _over_the_case_rate(c: _Context, draft: CaseDraft) -> Hold | None:
    """Over the rate of new cases (or behind mail of the sender that already waits for it): held, not dropped.

    The sender is told once an hour at most; the held message is processed
    again, in order, when a case of the last hour falls out of the window.
    """
    policy = c.policy
    if policy.ignore_case_rate:
        return None
    waiting = c.views.cases.held_from(c.address)
    by_sender, by_account = c.views.cases.cases_created_since(
        draft.submitted_by.id, draft.account.id, policy.now - _HOUR, policy.cases_per_hour_per_sender,
        policy.cases_per_hour_per_account)
    over: list[tuple[str, dt.datetime]] = []
    if by_sender.limit_th_newest is not None:
        over.append((f"{by_sender.count} new cases from {c.address} in the last hour (limit "
                     f"{policy.cases_per_hour_per_sender})", by_sender.limit_th_newest + _HOUR))
    if by_account.limit_th_newest is not None:
        over.append((f"{by_account.count} new cases for {draft.account.name} in the last hour (limit "
                     f"{policy.cases_per_hour_per_account})", by_account.limit_th_newest + _HOUR))
    if not over and not waiting:
        return None
    if over:
        why, until = "; ".join(w for w, _ in over), max(u for _, u in over)
    else:
        why, until = f"{len(waiting)} earlier message(s) from {c.address} wait for the rate of new cases", waiting[0]
    told = c.views.replies.held_notices_since(c.address, policy.now - _HOUR)
    hold = Hold(reasons=c.reasons(f"held until {until:%Y-%m-%d %H:%M} UTC: {why}"), reply_to=c.answer_sender,
                until=until, why=why)
    return hold.unanswered("no notice sent: the sender was told of held mail in the last hour") if told else hold


def _refuse(c: _Context, reason: str, problem: str, case_type: CaseType | None = None) -> Refuse:
    return Refuse(reasons=c.reasons(reason), reply_to=c.answer_sender, problems=(Problem(problem, refuse=True),),
                  case_type=case_type)


def _strangers_told_once(decision: Decision, c: _Context) -> Decision:
    """Unless its sender is authenticated, a stranger is refused with an answer at most once per
    `stranger_refusal_window`: spam with a forged From would otherwise make intake mail every
    innocent address it names (backscatter)."""
    if not isinstance(decision, Refuse) or not decision.reply_to or c.verdict.authenticated:
        return decision
    if c.views.directory.contact_by_email(c.address) is not None:
        return decision
    window = c.policy.stranger_refusal_window
    if not c.views.replies.refusals_since(c.address, c.policy.now - window):
        return decision
    return decision.unanswered(f"no reply sent: {c.address} is no contact and was already answered once "
                               f"in the last {window.days} days")


def _within_reply_cap(decision: Decision, c: _Context) -> Decision:
    """At most `auto_replies_per_hour` automatic replies to one address an hour: a loop that slips
    past every other check ends here.

    Acknowledgements and the held notice are never capped: the rate of new
    cases bounds them, and a contact within that rate is always told their
    case was made (or, once, that it waits)."""
    if not isinstance(decision, Answered) or not decision.reply_to or isinstance(decision, CreateCase | Hold):
        return decision
    limit = c.policy.auto_replies_per_hour
    sent = c.views.replies.automatic_replies_since(c.address, c.policy.now - dt.timedelta(hours=1))
    if sent < limit:
        return decision
    return decision.unanswered(f"no reply sent: {c.address} already had {limit} automatic replies this hour")


_CHAIN: tuple[Rule, ...] = (
    _not_mail,
    _delivery_report,
    _ambiguous_sender,
    notices.unsubscribe_request,
    _automatic,
    _authenticated,
    _over_a_limit,
    _encrypted,
    notices.notice_reply,
    _template_request,
    _status_request,
    _reply_on_a_thread,
    _sender_may_file_cases,
    _case_type_named,
    _sender_may_file_this_type,
    _the_case,
)
