"""The states of things, as enums: the ground module every layer may import.

A message's outcome, a case's status, an outbox row's status and the kinds of
mail intake sends. They are stored as their string values, so the database,
the JSON views and the logs read the same words; the code compares enums and
a typo is a NameError, not a silent mismatch.
"""
from __future__ import annotations

import enum

__all__ = ["CaseStatus", "OutboxStatus", "Outcome", "Reply"]


class Outcome(enum.StrEnum):
    """How an inbound message ended. A stored message with no outcome is not processed yet."""

    CASE_CREATED = "case_created"
    COMMENT_ADDED = "comment_added"
    NEEDS_INFORMATION = "needs_information"
    REFUSED = "refused"
    IGNORED = "ignored"
    TEMPLATE_SENT = "template_sent"
    STATUS_SENT = "status_sent"
    FAILED = "failed"  # an internal error; kept for replay, never silently dropped


class CaseStatus(enum.StrEnum):
    NEW = "new"
    OPEN = "open"
    WAITING_ON_CONTACT = "waiting on contact"
    RESOLVED = "resolved"
    CLOSED = "closed"


class OutboxStatus(enum.StrEnum):
    """queued → sent; or retrying (temporary failure) → sent | failed; failed (5xx, or gave up);
    suppressed (every recipient is bouncing)."""

    QUEUED = "queued"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


class Reply(enum.StrEnum):
    """The kinds of mail intake sends; each has a template pair in templates/email/."""

    ACKNOWLEDGEMENT = "acknowledgement"
    NEEDS_INFORMATION = "needs_information"
    REFUSAL = "refusal"
    TEMPLATE = "template"
    STATUS = "status"
    COMMENT = "comment"  # a staff comment, mailed to the contact on the case's thread
    RESOLUTION = "resolution"
    CONTACT_CHANGE = "contact_change"  # an approved Modify Support Contacts case
    DEPARTMENT_NOTICE = "department_notice"  # to a department's address: a new case, a contact's reply

    @property
    def automatic(self) -> bool:
        """An automatic answer to a message: counted by the per-sender reply cap."""
        return self in _AUTO_REPLIED

    @property
    def auto_submitted(self) -> str | None:
        """The RFC 3834 Auto-Submitted value: auto-replied for automatic answers, auto-generated for
        notices no message asked for, none for mail a person wrote (a staff comment or resolution)."""
        if self in _AUTO_REPLIED:
            return "auto-replied"
        if self in _WRITTEN_BY_A_PERSON:
            return None
        return "auto-generated"


_AUTO_REPLIED = frozenset({Reply.ACKNOWLEDGEMENT, Reply.NEEDS_INFORMATION, Reply.REFUSAL, Reply.TEMPLATE,
                           Reply.STATUS})
_WRITTEN_BY_A_PERSON = frozenset({Reply.COMMENT, Reply.RESOLUTION})
