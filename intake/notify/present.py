"""Notices as people read them, for mail and the status page alike: pure functions of stored values.

The seed's words and colours: an orange banner while an incident is in
progress, green for open maintenance, gray when nothing is open; each notice
with its start–end time and status ("Jul 30, 2024, 01:27 PM - Jul 30, 2024,
02:25 PM Resolved") and its time-stamped updates ("2:25 PM UPDATE: …").
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from intake.notify.states import OPEN_STATUSES, STATUS_LABELS, NoticeKind, NoticeStatus, StepKind
from intake.store.notices import Notice, NoticeStep

__all__ = ["Banner", "NoticeCard", "Update", "banner_for", "card_of", "moment"]


@dataclass(frozen=True)
class Banner:
    state: str  # incident | maintenance | none
    background: str
    foreground: str
    words: str


# Orange, green and gray as the seed names them; text colours chosen for WCAG AA contrast (4.5:1 or more).
INCIDENT_BANNER = Banner("incident", "#f28c28", "#1a1a1a", "An incident is in progress")
MAINTENANCE_BANNER = Banner("maintenance", "#2e7d32", "#ffffff", "Maintenance is scheduled")
CLEAR_BANNER = Banner("none", "#5f6368", "#ffffff", "There are no current open notifications")


@dataclass(frozen=True)
class Update:
    label: str  # "2:25 PM UPDATE"
    body: str
    at: dt.datetime


@dataclass(frozen=True)
class NoticeCard:
    id: int
    kind: str
    title: str
    body: str
    status: str
    status_label: str
    is_open: bool
    times: str  # "Jul 30, 2024, 01:27 PM - Jul 30, 2024, 02:25 PM Resolved"
    span: str  # the same without the status
    starts: dt.datetime | None
    ends: dt.datetime | None
    published: dt.datetime | None
    closed: dt.datetime | None
    updates: tuple[Update, ...]  # newest first
    accounts: tuple[str, ...]
    areas: tuple[str, ...]

    @property
    def kind_label(self) -> str:
        return "Incident" if self.kind == NoticeKind.INCIDENT else "Maintenance"


def moment(value: dt.datetime | None, zone: ZoneInfo) -> str:
    """Jul 30, 2024, 01:27 PM (in the configured zone)."""
    return value.astimezone(zone).strftime("%b %d, %Y, %I:%M %p") if value is not None else ""


def _clock(value: dt.datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%I:%M %p").lstrip("0")


_STEP_WORDS = {StepKind.UPDATE: "UPDATE", StepKind.REMINDER: "REMINDER", StepKind.STARTED: "STARTED",
               StepKind.COMPLETED: "COMPLETED", StepKind.RESOLVED: "RESOLVED", StepKind.CANCELLED: "CANCELLED"}


def _updates(steps: Iterable[NoticeStep], zone: ZoneInfo, preview: NoticeStep | None) -> tuple[Update, ...]:
    shown = [s for s in steps if (s.sent is not None or s is preview) and s.kind != StepKind.POSTED]
    shown.sort(key=lambda s: (s.sent or s.created, s.id), reverse=True)
    return tuple(Update(f"{_clock(s.sent or s.created, zone)} {_STEP_WORDS[StepKind(s.kind)]}", s.body,
                        s.sent or s.created) for s in shown)


def _span(notice: Notice, zone: ZoneInfo) -> str:
    if notice.kind == NoticeKind.MAINTENANCE:
        start, end = notice.starts, notice.ends
    else:
        start, end = notice.published or notice.created, notice.closed
    return moment(start, zone) + (f" - {moment(end, zone)}" if end is not None else "")


def card_of(notice: Notice, zone: ZoneInfo, preview: NoticeStep | None = None) -> NoticeCard:
    """The notice as shown: its sent steps, and `preview` (a draft step shown as it will be sent)."""
    status = NoticeStatus(notice.status)
    label = STATUS_LABELS[status]
    span = _span(notice, zone)
    return NoticeCard(id=notice.id, kind=notice.kind, title=notice.title, body=notice.body, status=status.value,
                      status_label=label, is_open=status in OPEN_STATUSES, times=f"{span} {label}", span=span,
                      starts=notice.starts, ends=notice.ends, published=notice.published, closed=notice.closed,
                      updates=_updates(notice.steps, zone, preview), accounts=tuple(notice.accounts or ()),
                      areas=tuple(notice.areas or ()))


def banner_for(cards: Sequence[NoticeCard]) -> Banner:
    """Orange while an incident is open, else green while maintenance is open, else gray."""
    open_kinds = {card.kind for card in cards if card.is_open}
    if NoticeKind.INCIDENT in open_kinds:
        return INCIDENT_BANNER
    if NoticeKind.MAINTENANCE in open_kinds:
        return MAINTENANCE_BANNER
    return CLEAR_BANNER
