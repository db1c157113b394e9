"""Rules of the decision chain for mail about notices: unsubscribing, and replies to notice mail.

A message to a contact's List-Unsubscribe address stops maintenance mail for
them. A reply to incident mail becomes a Report an Outage case for the
sender's district, linked to the incident (the seed: "we request that you
still submit a case"); a reply to maintenance mail becomes a note on the
notice and is answered with how to file a case. Calendar replies to notice
mail are recorded and never answered (auto-replies end earlier, in the
chain's `_automatic`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

from routing import rules
from routing.contacts import AccountView, ContactView, may_file
from routing.notice_threads import contact_from_unsubscribe_address, notice_from_message_id
from routing.outcomes import Answered, CaseDraft, CreateCase, Decision, Ignore, Problem, Refuse
from routing.schema import CaseType, spec_for
from routing.states import Outcome, Reply

if TYPE_CHECKING:
    from routing.decide import _Context

__all__ = ["NO_NOTICES", "NoteOnNotice", "NoticeLookup", "NoticeView", "Unsubscribe", "notice_reply",
           "unsubscribe_request"]


@dataclass(frozen=True)
class NoticeView:
    """What the decision needs to know of a notice."""

    id: int
    kind: str  # incident | maintenance
    title: str
    status: str
    accounts: tuple[str, ...]  # empty: every account


class NoticeLookup(Protocol):
    def notice(self, notice_id: int) -> NoticeView | None: ...


class _NoNotices:
    def notice(self, notice_id: int) -> NoticeView | None:
        return None


NO_NOTICES: NoticeLookup = _NoNotices()


@dataclass(frozen=True, kw_only=True)
class Unsubscribe(Decision):
    """Stop maintenance mail to this contact; not answered (the request is often sent by a program)."""

    outcome: ClassVar[Outcome] = Outcome.UNSUBSCRIBED
    contact_id: int


@dataclass(frozen=True, kw_only=True)
class NoteOnNotice(Answered):
    """A contact's reply to maintenance mail: kept on the notice, answered with how to file a case."""

    outcome: ClassVar[Outcome] = Outcome.NOTICE_NOTE_ADDED
    reply: ClassVar[Reply | None] = Reply.NOTICE_NOTE
    notice: NoticeView
    author: str
    body: str


def unsubscribe_request(c: _Context) -> Decision | None:
    policy = c.policy
    for address in c.message.to:
        contact = contact_from_unsubscribe_address(address, policy.support_addresses, policy.secret)
        if contact is not None:
            return Unsubscribe(reasons=c.reasons(f"unsubscribe request for contact {contact}: "
                                                 f"no more maintenance mail; incident mail continues"),
                               contact_id=contact)
    return None


def notice_reply(c: _Context) -> Decision | None:
    notice = _replied_notice(c)
    if notice is None:
        return None
    c.log.append(f"reply to {notice.kind} notice #{notice.id}")
    if _is_calendar_reply(c):
        return Ignore(reasons=c.reasons("ignored, never answered: a calendar reply to notice mail"))
    sender = c.views.directory.contact_by_email(c.address)
    if sender is None or not sender.active:
        return None  # the chain refuses it as it refuses any stranger
    if notice.kind == "maintenance":
        return NoteOnNotice(reasons=c.reasons(f"note added to maintenance notice #{notice.id}"),
                            reply_to=c.answer_sender, notice=notice, author=c.address, body=c.submission.new_text)
    return _outage_case(c, notice, sender)


def _replied_notice(c: _Context) -> NoticeView | None:
    for reference in (c.message.in_reply_to, *reversed(c.message.references)):
        number = notice_from_message_id(reference, c.policy.secret) if reference else None
        if number is not None:
            return c.views.notices.notice(number)
    return None


def _is_calendar_reply(c: _Context) -> bool:
    return any(part.get_content_type() == "text/calendar" for part in c.message.structure.walk())


def _outage_case(c: _Context, notice: NoticeView, sender: ContactView) -> Decision:
    spec = spec_for(CaseType.REPORT_AN_OUTAGE)
    refusal = may_file(sender, spec)
    if refusal is not None:
        return Refuse(reasons=c.reasons(f"refused: {refusal.reason}"), reply_to=c.answer_sender,
                      problems=(Problem(refusal.reason, refuse=True),), case_type=spec.case_type)
    account = _account_in_scope(sender, notice)
    description = c.submission.new_text.strip() or f"Affected by the incident {notice.title}."
    draft = CaseDraft(spec=spec, account=account, contact=sender, submitted_by=sender,
                      priority=rules.decide_priority(spec, None).priority, priority_note=None,
                      subject=notice.title[:500], description=description, fields={}, fields_as_written={},
                      module=None, department=c.policy.department_for(spec.case_type),
                      attachments=c.message.attachments, notice_id=notice.id)
    return CreateCase(reasons=c.reasons(f"case created: {spec.case_type.value}, from a reply to incident "
                                        f"#{notice.id}, linked to it"), reply_to=c.answer_sender, draft=draft)


def _account_in_scope(sender: ContactView, notice: NoticeView) -> AccountView:
    wanted = {name.casefold() for name in notice.accounts}
    for account in sender.accounts:
        if not wanted or account.name.casefold() in wanted:
            return account
    return sender.accounts[0]
