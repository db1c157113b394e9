"""What a decision can come to: one typed value per kind of outcome, each carrying only its own data.

`routing.decide` returns exactly one of these for every message; the act stage
has one handler per type (`intake.act.handlers`). Every value carries its
``reasons``, in words a person can read, and the recorded `Outcome`. Values
that answer the sender name the recipients of the answer in ``reply_to``
(empty when policy says not to answer: over the reply cap, a forged sender).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypeVar

from parsers.message import Attachment
from parsers.report import DeliveryReport
from routing.contacts import AccountView, ContactView
from routing.problems import Problem
from routing.schema import CaseType, CaseTypeSpec
from routing.states import Outcome, Reply
from routing.threads import CaseView

__all__ = ["AddComment", "AskForInformation", "CaseDraft", "CommentDraft", "CreateCase", "Decision", "Hold", "Ignore",
           "Problem", "Quarantine", "RecordBounce", "Refuse", "SendStatus", "SendTemplates", "Recipient"]

Recipient = tuple[str, str]  # (display name, address)


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
    notice_id: int | None = None  # a reply to this incident's mail made the case; it is linked to it
    notes: tuple[str, ...] = ()  # what the contact should know about the case, from the type's notes

    @property
    def billable(self) -> bool:
        return self.spec.may_be_billable

    @property
    def on_behalf(self) -> bool:
        return self.contact.id != self.submitted_by.id


@dataclass(frozen=True)
class CommentDraft:
    """A reply on a case's thread, reduced to its new text."""

    case: CaseView
    author: str  # email address
    body: str
    attachments: tuple[Attachment, ...]
    by_staff: bool
    reopens: bool


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The base of every outcome: what is recorded and why."""

    outcome: ClassVar[Outcome]
    reply: ClassVar[Reply | None] = None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Answered(Decision):
    """A decision that answers the sender."""

    reply_to: tuple[Recipient, ...] = ()

    def unanswered(self: _A, reason: str) -> _A:
        return replace(self, reply_to=(), reasons=(*self.reasons, reason))


_A = TypeVar("_A", bound=Answered)


@dataclass(frozen=True, kw_only=True)
class CreateCase(Answered):
    outcome = Outcome.CASE_CREATED
    reply = Reply.ACKNOWLEDGEMENT
    draft: CaseDraft


@dataclass(frozen=True, kw_only=True)
class AskForInformation(Answered):
    outcome = Outcome.NEEDS_INFORMATION
    reply = Reply.NEEDS_INFORMATION
    problems: tuple[Problem, ...] = ()
    case_type: CaseType | None = None
    # What was understood, label → text as written: pre-fills the template of the reply.
    prefill: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Refuse(Answered):
    outcome = Outcome.REFUSED
    reply = Reply.REFUSAL
    problems: tuple[Problem, ...] = ()
    case_type: CaseType | None = None


@dataclass(frozen=True, kw_only=True)
class SendTemplates(Answered):
    outcome = Outcome.TEMPLATE_SENT
    reply = Reply.TEMPLATE
    types: tuple[CaseType, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SendStatus(Answered):
    outcome = Outcome.STATUS_SENT
    reply = Reply.STATUS
    contact: ContactView


@dataclass(frozen=True, kw_only=True)
class AddComment(Decision):
    outcome = Outcome.COMMENT_ADDED
    comment: CommentDraft


@dataclass(frozen=True, kw_only=True)
class Ignore(Decision):
    outcome = Outcome.IGNORED


@dataclass(frozen=True, kw_only=True)
class RecordBounce(Decision):
    """A mail system's report about our own mail: counted against the contact, never answered."""

    outcome = Outcome.IGNORED
    report: DeliveryReport



@dataclass(frozen=True, kw_only=True)
class Quarantine(Decision):
    """Mail that claims to be from a contact (or staff) and failed sender authentication: never answered,
    held until a person releases or drops it; staff are told."""

    outcome = Outcome.QUARANTINED
    claimed_sender: str
    why: str  # what authentication found, for the staff notice and `intake quarantine show`


@dataclass(frozen=True, kw_only=True)
class Hold(Answered):
    """A new case over the rate of new cases: kept and processed again at ``until``, in order.

    ``reply_to`` is empty when the sender was already told in the last hour: one notice, not one per message.
    """

    outcome = Outcome.HELD
    reply = Reply.HELD_NOTICE
    until: dt.datetime
    why: str
