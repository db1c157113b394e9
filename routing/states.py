"""The states of things, as enums: the ground module every layer may import.

A message's outcome, a case's status, an outbox row's status and the kinds of
mail intake sends. They are stored as their string values, so the database,
the JSON views and the logs read the same words; the code compares enums and
a typo is a NameError, not a silent mismatch.
"""
from __future__ import annotations

import enum

__all__ = ["CaseStatus", "HeldStatus", "OutboxStatus", "Outcome", "QuarantineStatus", "Reply"]


class Outcome(enum.StrEnum):
    """How an inbound message ended. A stored message with no outcome is not processed yet."""

    CASE_CREATED = "case_created"
    COMMENT_ADDED = "comment_added"
    NEEDS_INFORMATION = "needs_information"
    REFUSED = "refused"
    IGNORED = "ignored"
    TEMPLATE_SENT = "template_sent"
    STATUS_SENT = "status_sent"
    QUARANTINED = "quarantined"  # claims to be a contact's and failed authentication: waits for a person
    HELD = "held"  # over the rate of new cases: waits for time, then is processed in order
    FAILED = "failed"  # an internal error; kept for replay, never silently dropped
    NOTICE_NOTE_ADDED = "notice_note_added"  # a reply to a maintenance notice, kept on the notice
    UNSUBSCRIBED = "unsubscribed"  # maintenance mail stopped for a contact (List-Unsubscribe)


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


class HeldStatus(enum.StrEnum):
    """held (waits until its time) → released (its time came, or staff released it: processed again)."""

    HELD = "held"
    RELEASED = "released"


class QuarantineStatus(enum.StrEnum):
    """held (waits for a person) → released (processed as if authenticated) | dropped (kept, never processed)."""

    HELD = "held"
    RELEASED = "released"
    DROPPED = "dropped"


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
    QUARANTINE_NOTICE = "quarantine_notice"  # to staff: a message waits in the quarantine
    HELD_NOTICE = "held_notice"  # to the sender: new cases over the rate wait, and will be processed
    NOTICE = "notice"  # an incident or maintenance notice, one per contact in scope
    NOTICE_NOTE = "notice_note"  # the answer to a reply to a maintenance notice
    NOTICE_EARLY_WARNING = "notice_early_warning"  # to staff: outage cases from several accounts, a draft incident
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
                           Reply.STATUS, Reply.HELD_NOTICE, Reply.NOTICE_NOTE})
_WRITTEN_BY_A_PERSON = frozenset({Reply.COMMENT, Reply.RESOLUTION})
