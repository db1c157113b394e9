"""The kinds and life cycles of notices, and the words the seed shows for them."""
from __future__ import annotations

import enum

__all__ = ["NoticeKind", "NoticeStatus", "StepKind", "OPEN_STATUSES", "STATUS_LABELS"]


class NoticeKind(enum.StrEnum):
    INCIDENT = "incident"
    MAINTENANCE = "maintenance"


class NoticeStatus(enum.StrEnum):
    OPEN = "open"  # an incident in progress
    RESOLVED = "resolved"
    SCHEDULED = "scheduled"  # maintenance announced, not yet started
    IN_PROGRESS = "in progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class StepKind(enum.StrEnum):
    """One thing told about a notice; each is mailed to the contacts in scope."""

    POSTED = "posted"
    UPDATE = "update"
    REMINDER = "reminder"
    STARTED = "started"
    COMPLETED = "completed"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


OPEN_STATUSES = frozenset({NoticeStatus.OPEN, NoticeStatus.SCHEDULED, NoticeStatus.IN_PROGRESS})

STATUS_LABELS = {
    NoticeStatus.OPEN: "In Progress",
    NoticeStatus.RESOLVED: "Resolved",
    NoticeStatus.SCHEDULED: "Scheduled",
    NoticeStatus.IN_PROGRESS: "In Progress",
    NoticeStatus.COMPLETED: "Completed",
    NoticeStatus.CANCELLED: "Cancelled",
}

# The status a step leaves its notice in (None: unchanged).
STATUS_AFTER: dict[tuple[NoticeKind, StepKind], NoticeStatus] = {
    (NoticeKind.INCIDENT, StepKind.POSTED): NoticeStatus.OPEN,
    (NoticeKind.INCIDENT, StepKind.RESOLVED): NoticeStatus.RESOLVED,
    (NoticeKind.INCIDENT, StepKind.CANCELLED): NoticeStatus.CANCELLED,
    (NoticeKind.MAINTENANCE, StepKind.POSTED): NoticeStatus.SCHEDULED,
    (NoticeKind.MAINTENANCE, StepKind.STARTED): NoticeStatus.IN_PROGRESS,
    (NoticeKind.MAINTENANCE, StepKind.COMPLETED): NoticeStatus.COMPLETED,
    (NoticeKind.MAINTENANCE, StepKind.RESOLVED): NoticeStatus.COMPLETED,
    (NoticeKind.MAINTENANCE, StepKind.CANCELLED): NoticeStatus.CANCELLED,
}
CLOSING_STEPS = frozenset({StepKind.RESOLVED, StepKind.CANCELLED, StepKind.COMPLETED})
