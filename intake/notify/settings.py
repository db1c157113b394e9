"""The `[notifications]` settings: one frozen value, read by `intake.config`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["KNOWN_KEYS", "NotificationSettings", "notification_settings"]

KNOWN_KEYS = frozenset({
    "include_read_only", "list_id", "reminder_hours", "close_resolved_after_days", "status_page_dir",
    "status_page_publish_command", "status_page_title", "status_page_url", "early_warning_accounts",
    "early_warning_minutes", "join_case_types", "join_subject_words", "join_accounts"})


@dataclass(frozen=True)
class NotificationSettings:
    include_read_only: bool = False  # Read Only contacts get notices too
    list_id: str = ""  # the List-Id of notice mail; "" → notices.<domain of the From address>
    reminder_hours: float = 24.0  # a maintenance reminder this long before it starts
    close_resolved_after_days: int = 7  # a resolved case is closed after this many days, silently
    status_page_dir: Path | None = None  # the daemon keeps the status page here, current
    status_page_publish_command: str | None = None  # run (by a shell) after each regeneration
    status_page_title: str = "Notifications"
    status_page_url: str | None = None  # where the page is hosted, linked from notice mail
    early_warning_accounts: int = 3  # outage cases from this many accounts ...
    early_warning_minutes: int = 15  # ... within this many minutes, and no incident open: a draft incident
    join_case_types: tuple[str, ...] = ("Report an Outage",)  # new cases of these types join an open incident
    join_subject_words: tuple[str, ...] = ()  # as do cases whose subject has one of these words
    join_accounts: tuple[str, ...] = ()  # and any case from these accounts


def notification_settings(table: dict[str, Any], base: Path) -> NotificationSettings:
    """The settings of the table; ValueError (with the setting's name) for a value that cannot be used."""
    unknown = set(table) - KNOWN_KEYS
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(KNOWN_KEYS))}")
    directory = table.get("status_page_dir")
    settings = NotificationSettings(
        include_read_only=bool(table.get("include_read_only", False)),
        list_id=str(table.get("list_id", "")).strip(),
        reminder_hours=float(table.get("reminder_hours", 24)),
        close_resolved_after_days=int(table.get("close_resolved_after_days", 7)),
        status_page_dir=base / directory if directory else None,
        status_page_publish_command=table.get("status_page_publish_command") or None,
        status_page_title=str(table.get("status_page_title", "Notifications")),
        status_page_url=table.get("status_page_url") or None,
        early_warning_accounts=int(table.get("early_warning_accounts", 3)),
        early_warning_minutes=int(table.get("early_warning_minutes", 15)),
        join_case_types=tuple(str(t) for t in table.get("join_case_types", ["Report an Outage"])),
        join_subject_words=tuple(str(w).lower() for w in table.get("join_subject_words", [])),
        join_accounts=tuple(str(a) for a in table.get("join_accounts", [])))
    if settings.reminder_hours < 0 or settings.close_resolved_after_days <= 0:
        raise ValueError("reminder_hours must not be negative and close_resolved_after_days must be positive")
    if settings.early_warning_accounts < 2 or settings.early_warning_minutes <= 0:
        raise ValueError("early_warning_accounts must be at least 2 and early_warning_minutes positive")
    return settings
