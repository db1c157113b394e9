"""The times staff write (`2026-12-14 22:00`, `Dec 14 10pm`), read in the configured time zone."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from dateutil import parser as date_parser

__all__ = ["WhenError", "parse_when"]


class WhenError(ValueError):
    """A time that cannot be read; the message quotes it."""


def parse_when(text: str, zone: ZoneInfo, now: dt.datetime) -> dt.datetime:
    """`text` as an aware UTC datetime. A time with no year is the next such time from `now` on; a time
    with no zone is in `zone` (one written with a zone keeps it)."""
    local_now = now.astimezone(zone)
    midnight = local_now.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    try:
        parsed = date_parser.parse(text, default=midnight)
        other_year = date_parser.parse(text, default=midnight.replace(year=midnight.year - 1))
    except (ValueError, OverflowError) as exc:
        raise WhenError(f"cannot read the time {text!r}: write it like 2026-12-14 22:00 or Dec 14 10pm") from exc
    year_written = parsed.year == other_year.year
    aware = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)
    if not year_written and aware < local_now - dt.timedelta(days=1):
        aware = aware.replace(year=aware.year + 1)
    return aware.astimezone(dt.UTC)
