"""Data Restore, as the seed says it: "Data is backed up nightly", so a loss dated today may be in no backup."""
from __future__ import annotations

import datetime as dt

from conftest import Intake, compose, past

ZACK = "Zack Morris <zack.morris@bayside.example>"
NOTE = "Data is backed up nightly, so data entered and lost today"


def _restore(lost: str) -> bytes:
    return compose(ZACK, "[Data Restore] Period 3 attendance deleted", (
        "Module: Attendance\n"
        f"Approximate Date of Loss: {lost}\n"
        "Reason for Restore: A teacher deleted the period 3 attendance by mistake.\n"
        "Written Permission: Yes, I give written permission to restore this data.\n"
        "Description: Please restore the attendance of period 3 at Bayside High.\n"))


def _today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()  # the test configuration's time zone is UTC


def test_a_loss_dated_today_makes_the_case_and_says_it_may_be_in_no_backup(intake: Intake) -> None:
    for _attempt in range(2):  # the day may turn over between writing the date and processing the mail
        today = _today_utc()
        intake.ingest(_restore(today.strftime("%m/%d/%Y")))
        if _today_utc() == today:
            break
    number = intake.cases()[-1]["number"]
    assert intake.show(number)["fields"]["Approximate Date of Loss"] == today.isoformat()
    text = intake.last_reply_prose()
    assert (f"{NOTE} ({today:%m/%d/%Y}) may not be in any backup yet, and we may not be able to restore it. "
            "We have made the case all the same.") in text
    assert any("note for the contact: Data is backed up nightly" in reason
               for reason in intake.last_outcome()["reasons"])


def test_an_older_loss_has_no_such_note(intake: Intake) -> None:
    intake.ingest(_restore(past(3)))
    assert intake.last_outcome()["outcome"] == "case_created"
    assert NOTE not in intake.last_reply_prose()
