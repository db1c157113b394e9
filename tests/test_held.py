"""Held mail: new cases over the rate wait for time, are processed in order, and the sender is told once.

The rate of new cases and the reply cap are one policy: a contact within the
rate always gets the acknowledgement, and the one held notice is never
swallowed by the cap. Time is moved on through the worker's clock, not slept.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from conftest import DATA, CapturingRelay, Intake, compose, with_settings
from intake.act.worker import process_stored
from intake.config import load_config
from intake.store.database import open_store
from intake.store.models import utcnow

ZACK = "Zack Morris <zack.morris@bayside.example>"
ZACK_ADDRESS = "zack.morris@bayside.example"
QUESTION = "Case Type: Ask a Question\nModule: Census\nDescription: Where is report {n}?\n"


def limited_intake(tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str],
                   relay: tuple[CapturingRelay, int], settings: str) -> Intake:
    instance = Intake(tmp_path, database_url, capsys, relay=relay)
    text = instance.config.read_text()
    for section, lines in re.findall(r"\[(\w+)\]\n((?:[^\[].*\n)*)", settings):
        text = with_settings(text, section, lines)
    instance.config.write_text(text)
    assert instance.run("contacts", "import", str(DATA / "contacts.csv")).code == 0
    return instance


def send(intake: Intake, n: int, sender: str = ZACK) -> None:
    assert intake.ingest(compose(sender, f"Report {n}", QUESTION.format(n=n), message_id=f"<report-{n}@x>")).code == 0


def kinds_sent(intake: Intake) -> list[tuple[str, tuple[str, ...]]]:
    return [(m["kind"], tuple(m["to"])) for m in intake.outbox()]


def test_over_the_rate_mail_is_held_told_once_and_processed_in_order_when_time_comes(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str],
        relay: tuple[CapturingRelay, int]) -> None:
    intake = limited_intake(tmp_path, database_url, capsys, relay, "[limits]\ncases_per_hour_per_sender = 2\n")
    for n in range(1, 6):
        send(intake, n)
    outcomes = [m["outcome"] for m in intake.messages()]
    assert outcomes == ["case_created", "case_created", "held", "held", "held"]
    assert kinds_sent(intake) == [("acknowledgement", (ZACK_ADDRESS,))] * 2 + [("held_notice", (ZACK_ADDRESS,))]
    notice = intake.sent_mail()[-1].get_body(preferencelist=("plain",)).get_content()
    assert '"Report 3" is waiting in line' in notice and "do not need to send it again" in notice

    held = intake.run("held", "list", "--json").json()
    assert isinstance(held, list) and [h["subject"] for h in held] == ["Report 3", "Report 4", "Report 5"]
    first_case = dt.datetime.fromisoformat(intake.cases()[0]["created"])
    assert dt.datetime.fromisoformat(held[0]["until"]) == first_case + dt.timedelta(hours=1)
    assert "2 new cases from zack.morris@bayside.example in the last hour (limit 2)" in held[0]["reason"]

    config = load_config(intake.config)
    store = open_store(config.database_url)
    assert process_stored(store, config, clock=utcnow) == 0  # not yet: nothing is due
    later = utcnow() + dt.timedelta(hours=1, minutes=1)
    process_stored(store, config, clock=lambda: later)
    # An hour on, two slots are free: reports 3 and 4 become cases, in order; 5 waits again, untold.
    assert [c["subject"] for c in intake.cases()] == ["Report 1", "Report 2", "Report 3", "Report 4"]
    assert [m["outcome"] for m in intake.messages()][2:] == ["case_created", "case_created", "held"]
    assert [k for k, _ in kinds_sent(intake)].count("held_notice") == 1
    assert [h["subject"] for h in intake.run("held", "list", "--json").json()] == ["Report 5"]  # type: ignore[union-attr]

    entry = intake.run("held", "list", "--json").json()[0]  # type: ignore[index]
    released = intake.run("held", "release", str(entry["id"]), "--by", "helpdesk@intake.example")
    assert released.code == 0, released.err
    assert intake.cases()[-1]["subject"] == "Report 5"
    assert intake.run("held", "list", "--json").json() == []
    everything = intake.run("held", "list", "--all", "--json").json()
    assert [h["released_by"] for h in everything] == [None, None, "helpdesk@intake.example"]  # type: ignore[union-attr]
    again = intake.run("held", "release", str(entry["id"]))
    assert again.code == 2 and "already released by helpdesk@intake.example" in again.err


def test_the_account_rate_holds_mail_from_any_of_its_contacts(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str],
        relay: tuple[CapturingRelay, int]) -> None:
    intake = limited_intake(tmp_path, database_url, capsys, relay, "[limits]\ncases_per_hour_per_account = 2\n")
    send(intake, 1)
    send(intake, 2, sender="A.C. Slater <ac.slater@bayside.example>")
    send(intake, 3, sender="A.C. Slater <ac.slater@bayside.example>")
    last = intake.last_outcome()
    assert last["outcome"] == "held" and "new cases for Bayside School (TESTING)" in last["reasons"][-2]


def test_within_the_rate_every_acknowledgement_goes_out_whatever_the_reply_cap(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str],
        relay: tuple[CapturingRelay, int]) -> None:
    intake = limited_intake(tmp_path, database_url, capsys, relay,
                            "[conversations]\nauto_replies_per_hour = 1\n[limits]\ncases_per_hour_per_sender = 3\n")
    for n in range(1, 5):
        send(intake, n)
    # Three acknowledgements past a cap of one, then the held notice: none swallowed.
    assert kinds_sent(intake) == [("acknowledgement", (ZACK_ADDRESS,))] * 3 + [("held_notice", (ZACK_ADDRESS,))]
    # The cap still holds every other automatic answer: a refusal now goes unanswered.
    intake.ingest(compose(ZACK, "status", "", message_id="<status@x>"))
    assert "automatic replies this hour" in intake.last_outcome()["reasons"][-1]
