"""The pure rules: who a notice reaches, and the times staff write."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from intake.notify.scope import Audience, ContactFacts, Scope, in_scope
from intake.notify.when import WhenError, parse_when


def contact(**changes: object) -> ContactFacts:
    values: dict[str, object] = {"id": 1, "email": "a@b.example", "name": "A B", "contact_type": "Authorized",
                                 "active": True, "bouncing": False, "areas": ("SIS",), "accounts": ("Bayside",)}
    values.update(changes)
    return ContactFacts(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("who", "scope", "audience", "reached"), [
    (contact(), Scope(), Audience(), True),
    (contact(), Scope(accounts=("bayside",)), Audience(), True),
    (contact(), Scope(accounts=("Valley",)), Audience(), False),
    (contact(), Scope(areas=("Finance",)), Audience(), False),
    (contact(areas=()), Scope(areas=("Finance",)), Audience(), True),  # no areas recorded: every notice
    (contact(areas=("SIS", "Finance")), Scope(areas=("finance",)), Audience(), True),
    (contact(contact_type="Technical"), Scope(), Audience(), True),
    (contact(contact_type="Read Only"), Scope(), Audience(), False),
    (contact(contact_type="Read Only"), Scope(), Audience(include_read_only=True), True),
    (contact(active=False), Scope(), Audience(include_read_only=True), False),
    (contact(bouncing=True), Scope(), Audience(), False),
    (contact(unsubscribed=True), Scope(), Audience(maintenance=True), False),
    (contact(unsubscribed=True), Scope(), Audience(maintenance=False), True),  # incident mail is never stopped
    (contact(accounts=()), Scope(), Audience(), False),
])
def test_in_scope(who: ContactFacts, scope: Scope, audience: Audience, reached: bool) -> None:
    assert in_scope(who, scope, audience) is reached


CHICAGO = ZoneInfo("America/Chicago")
NOW = dt.datetime(2026, 12, 1, 22, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("written", "expected"), [
    ("2026-12-14 22:00", dt.datetime(2026, 12, 15, 4, 0, tzinfo=dt.UTC)),
    ("Dec 14 10pm", dt.datetime(2026, 12, 15, 4, 0, tzinfo=dt.UTC)),
    ("Jan 3 1am", dt.datetime(2027, 1, 3, 7, 0, tzinfo=dt.UTC)),  # no year, already past this year: next year's
    ("2026-12-14T22:00:00+00:00", dt.datetime(2026, 12, 14, 22, 0, tzinfo=dt.UTC)),  # a zone written is kept
])
def test_when_in_the_configured_zone(written: str, expected: dt.datetime) -> None:
    assert parse_when(written, CHICAGO, NOW) == expected


def test_when_that_cannot_be_read_says_how_to_write_it() -> None:
    with pytest.raises(WhenError, match="Dec 14 10pm"):
        parse_when("sometime soon", CHICAGO, NOW)
