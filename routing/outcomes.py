"""The values a decision is made of: outcomes, replies and problems."""
from __future__ import annotations

import enum
from dataclasses import dataclass


class Outcome(str, enum.Enum):
    """How an inbound message ended. A stored message with no outcome is not processed yet."""

    CASE_CREATED = "case_created"
    COMMENT_ADDED = "comment_added"
    NEEDS_INFORMATION = "needs_information"
    REFUSED = "refused"
    IGNORED = "ignored"
    TEMPLATE_SENT = "template_sent"
    STATUS_SENT = "status_sent"
    FAILED = "failed"  # an internal error; kept for replay, never silently dropped


class Reply(str, enum.Enum):
    """The kinds of mail intake sends back; each has a template pair in templates/email/."""

    ACKNOWLEDGEMENT = "acknowledgement"
    NEEDS_INFORMATION = "needs_information"
    REFUSAL = "refusal"
    TEMPLATE = "template"
    STATUS = "status"
    COMMENT = "comment"  # a staff comment, mailed to the contact on the case's thread
    RESOLUTION = "resolution"
    CONTACT_CHANGE = "contact_change"  # an approved Modify Support Contacts case


@dataclass(frozen=True)
class Problem:
    """Something wrong with a message, in words for the person who sent it.

    `refuse` marks problems the sender cannot fix by editing and resending
    (not authorized, data older than the retention window); the others ask
    for more information.
    """

    message: str
    label: str | None = None
    refuse: bool = False
