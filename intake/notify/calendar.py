"""The iCalendar part of maintenance mail (RFC 5545, METHOD:PUBLISH), built with the `icalendar` package.

No attendees and no organizer, so a calendar adds the window without sending
"Accepted:" replies. The UID is the notice's, stable, and SEQUENCE grows with
every change, so a moved or cancelled window updates the same entry
(a cancellation is published as STATUS:CANCELLED at a higher SEQUENCE).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import icalendar

__all__ = ["MaintenanceWindow", "maintenance_calendar", "notice_uid"]

PRODID = "-//intake//notifications//EN"


@dataclass(frozen=True)
class MaintenanceWindow:
    notice_id: int
    title: str
    description: str
    starts: dt.datetime
    ends: dt.datetime
    sequence: int
    cancelled: bool
    stamp: dt.datetime
    domain: str
    url: str | None = None


def notice_uid(notice_id: int, domain: str) -> str:
    return f"intake-notice-{notice_id}@{domain}"


def maintenance_calendar(window: MaintenanceWindow) -> str:
    """The VCALENDAR text of one maintenance window."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = icalendar.Event()
    event.add("uid", notice_uid(window.notice_id, window.domain))
    event.add("sequence", window.sequence)
    event.add("dtstamp", window.stamp.astimezone(dt.UTC))
    event.add("dtstart", window.starts.astimezone(dt.UTC))
    event.add("dtend", window.ends.astimezone(dt.UTC))
    event.add("summary", f"Maintenance: {window.title}")
    event.add("description", window.description)
    event.add("status", "CANCELLED" if window.cancelled else "CONFIRMED")
    event.add("transp", "TRANSPARENT")  # a maintenance window does not make the reader busy
    if window.url:
        event.add("url", window.url)
    calendar.add_component(event)
    return calendar.to_ical().decode("utf-8")
