"""The daemon's scheduled work, driven by an injected clock: maintenance reminders and state changes at
their times (catching up after downtime), the iCalendar part, unsubscribing, and closing resolved cases."""
from __future__ import annotations

import datetime as dt
import threading

import icalendar
import pytest

from conftest import Intake, compose
from intake.config import Config, load_config
from intake.mailout.delivery import deliver_pending
from intake.notify.schedule import run_due
from intake.store.database import Store, open_store
from intake.store.models import utcnow
from notify_helpers import BAYSIDE, BAYSIDE_NOTIFIED, notice_mail, recipients, text_of

ZACK = "zack.morris@bayside.example"


@pytest.fixture
def running(intake: Intake) -> tuple[Intake, Store, Config]:
    config = load_config(intake.config)
    store = open_store(config.database_url)
    yield intake, store, config
    store.engine.dispose()


def _maintenance(intake: Intake, starts: dt.datetime, hours: float = 4, *extra: str) -> int:
    ran = intake.run("notify", "maintenance", "Database upgrade", "--starts", starts.strftime("%Y-%m-%d %H:%M"),
                     "--ends", (starts + dt.timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M"),
                     "--body", "The SIS is unavailable during the upgrade.", "--accounts", BAYSIDE, *extra, "--json")
    assert ran.code == 0, ran.err
    return int(ran.json()["id"])


def _at(store: Store, config: Config, now: dt.datetime) -> int:
    """One pass of the scheduler at `now`, and the delivery of what it queued; how many jobs ran."""
    ran = run_due(store, config, now).jobs
    deliver_pending(store, config)
    return ran


def _starts_in(days: int) -> dt.datetime:
    return (utcnow() + dt.timedelta(days=days)).replace(second=0, microsecond=0)


def _status(intake: Intake, notice: int) -> str:
    return str(intake.run("notify", "show", str(notice), "--json").json()["status"])


def test_reminder_start_and_end_fire_at_their_times(running: tuple[Intake, Store, Config]) -> None:
    intake, store, config = running
    starts = _starts_in(3)
    notice = _maintenance(intake, starts)
    posted = len(notice_mail(intake))
    assert _at(store, config, starts - dt.timedelta(hours=25)) == 0 and len(notice_mail(intake)) == posted
    assert _at(store, config, starts - dt.timedelta(hours=23)) == 1
    reminders = notice_mail(intake)[posted:]
    assert recipients(reminders) == {address: 1 for address in BAYSIDE_NOTIFIED}
    assert "REMINDER" in text_of(reminders[0]) and _status(intake, notice) == "scheduled"
    assert _at(store, config, starts - dt.timedelta(minutes=1)) == 0
    assert _at(store, config, starts) == 1 and _status(intake, notice) == "in progress"
    assert _at(store, config, starts + dt.timedelta(hours=4)) == 1 and _status(intake, notice) == "completed"
    kinds = [s["kind"] for s in intake.run("notify", "show", str(notice), "--json").json()["steps"]]
    assert kinds == ["posted", "reminder", "started", "completed"]
    assert _at(store, config, starts + dt.timedelta(days=30)) == 0  # each job runs once


def test_after_downtime_the_jobs_catch_up_in_order_and_a_late_reminder_is_not_sent(
        running: tuple[Intake, Store, Config]) -> None:
    intake, store, config = running
    starts = _starts_in(2)
    notice = _maintenance(intake, starts)
    assert _at(store, config, starts + dt.timedelta(hours=5)) == 3  # down from before the reminder until after the end
    shown = intake.run("notify", "show", str(notice), "--json").json()
    assert shown["status"] == "completed"
    assert [s["kind"] for s in shown["steps"]] == ["posted", "started", "completed"]


def test_two_daemons_run_each_job_once(running: tuple[Intake, Store, Config]) -> None:
    intake, store, config = running
    starts = _starts_in(2)
    notice = _maintenance(intake, starts)
    other = open_store(config.database_url)
    later = starts + dt.timedelta(hours=5)
    results: list[int] = []
    threads = [threading.Thread(target=lambda s=s: results.append(run_due(s, config, later).jobs))
               for s in (store, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    other.engine.dispose()
    assert sum(results) == 3
    kinds = [s["kind"] for s in intake.run("notify", "show", str(notice), "--json").json()["steps"]]
    assert kinds == ["posted", "started", "completed"]


def _calendar(message) -> icalendar.Calendar:  # type: ignore[no-untyped-def]
    part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    assert part.get_param("method") == "PUBLISH"
    return icalendar.Calendar.from_ical(part.get_content())


def test_the_calendar_part_has_the_window_a_stable_uid_and_a_cancellation_updates_it(intake: Intake) -> None:
    starts = _starts_in(10)
    notice = _maintenance(intake, starts, 3)
    first = _calendar(notice_mail(intake)[0])
    event = first.walk("VEVENT")[0]
    assert str(first["METHOD"]) == "PUBLISH" and "ATTENDEE" not in event and "ORGANIZER" not in event
    assert event.decoded("DTSTART") == starts and event.decoded("DTEND") == starts + dt.timedelta(hours=3)
    assert int(event["SEQUENCE"]) == 0 and str(event["STATUS"]) == "CONFIRMED"
    before = len(notice_mail(intake))
    assert intake.run("notify", "cancel", str(notice), "--body", "Postponed to the spring.").code == 0
    cancelled = notice_mail(intake)[before:]
    assert recipients(cancelled) == {address: 1 for address in BAYSIDE_NOTIFIED}
    again = _calendar(cancelled[0]).walk("VEVENT")[0]
    assert str(again["UID"]) == str(event["UID"]) and int(again["SEQUENCE"]) == 1
    assert str(again["STATUS"]) == "CANCELLED"
    assert _status(intake, notice) == "cancelled"


def _unsubscribe_request(address: str, sender: str) -> bytes:
    raw = compose(sender, "unsubscribe", "")
    return raw.replace(b"To: Campus Support <support@intake.example>", f"To: <{address}>".encode())


def test_unsubscribing_stops_maintenance_mail_only(intake: Intake) -> None:
    _maintenance(intake, _starts_in(10))
    mailed = next(m for m in notice_mail(intake) if m["To"].addresses[0].addr_spec == ZACK)
    header = str(mailed["List-Unsubscribe"])
    address = header.removeprefix("<mailto:").split("?")[0]
    forged = address.replace(address.split("-")[-1].split("@")[0], "0" * 12)
    assert intake.ingest(_unsubscribe_request(forged, f"Zack <{ZACK}>")).code == 0
    assert intake.last_outcome()["outcome"] != "unsubscribed"
    outbox = len(intake.outbox())
    assert intake.ingest(_unsubscribe_request(address, f"Zack <{ZACK}>")).code == 0
    assert intake.last_outcome()["outcome"] == "unsubscribed" and len(intake.outbox()) == outbox  # not answered

    before = len(notice_mail(intake))
    _maintenance(intake, _starts_in(20))
    assert set(recipients(notice_mail(intake)[before:])) == BAYSIDE_NOTIFIED - {ZACK}
    before = len(notice_mail(intake))
    assert intake.run("notify", "incident", "Outage", "--body", "Down.", "--accounts", BAYSIDE).code == 0
    assert set(recipients(notice_mail(intake)[before:])) == BAYSIDE_NOTIFIED


def test_resolved_cases_close_after_their_days_without_mail(running: tuple[Intake, Store, Config]) -> None:
    intake, store, config = running
    assert intake.ingest(compose(f"Zack <{ZACK}>", "Households", "Case Type: Ask a Question\nModule: Census\n"
                                 "Description: Where is the household report?\n")).code == 0
    number = intake.cases()[-1]["number"]
    assert intake.run("resolve", str(number), "--resolution", "Reports > Households.").code == 0
    resolved = dt.datetime.fromisoformat(intake.show(number)["resolved"].replace("Z", "+00:00"))
    outbox = len(intake.outbox())
    run_due(store, config, resolved + dt.timedelta(days=6, hours=23))
    assert intake.cases()[-1]["status"] == "resolved"
    assert run_due(store, config, resolved + dt.timedelta(days=7, minutes=1)).closed_cases == 1
    assert intake.cases()[-1]["status"] == "closed" and len(intake.outbox()) == outbox


def test_moving_the_window_updates_the_calendar_entry_and_the_jobs(running: tuple[Intake, Store, Config]) -> None:
    intake, store, config = running
    starts = _starts_in(5)
    notice = _maintenance(intake, starts)
    first = _calendar(notice_mail(intake)[0]).walk("VEVENT")[0]
    later = starts + dt.timedelta(days=2)
    before = len(notice_mail(intake))
    ran = intake.run("notify", "update", str(notice), "--body", "Moved two days later.", "--starts",
                     later.strftime("%Y-%m-%d %H:%M"), "--ends",
                     (later + dt.timedelta(hours=4)).strftime("%Y-%m-%d %H:%M"))
    assert ran.code == 0, ran.err
    moved = _calendar(notice_mail(intake)[before]).walk("VEVENT")[0]
    assert str(moved["UID"]) == str(first["UID"]) and int(moved["SEQUENCE"]) == 1
    assert moved.decoded("DTSTART") == later
    assert _at(store, config, starts + dt.timedelta(minutes=1)) == 0  # the old start is gone
    assert _status(intake, notice) == "scheduled"
    assert _at(store, config, later) == 2 and _status(intake, notice) == "in progress"  # the new reminder and start
    wrong = intake.run("notify", "update", str(notice), "--body", "x", "--ends", "2020-01-01 00:00")
    assert wrong.code == 2 and "end after it starts" in wrong.err


def test_a_job_that_fails_is_recorded_and_does_not_stop_the_others(running: tuple[Intake, Store, Config]) -> None:
    from intake.store.notices import ScheduledJob
    intake, store, config = running
    starts = _starts_in(2)
    notice = _maintenance(intake, starts)
    with store.session() as session, session.begin():
        session.add(ScheduledJob(kind="no such job", due=starts - dt.timedelta(hours=1), notice_id=notice))
    assert _at(store, config, starts + dt.timedelta(hours=5)) == 4  # the failed one, and the window's three
    assert _status(intake, notice) == "completed"
    with store.session() as session:
        failed = session.query(ScheduledJob).filter(ScheduledJob.kind == "no such job").one()
        assert failed.done is not None and failed.result.startswith("failed: ValueError")
    assert _at(store, config, starts + dt.timedelta(hours=6)) == 0
