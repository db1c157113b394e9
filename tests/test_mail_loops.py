"""No mail loops: two intakes answering each other, and a broken autoresponder answering everything."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import DATA, Intake, compose

OTHER = "help@other.example"


def _intake(root: Path, database_url: str, capsys: pytest.CaptureFixture[str], **options: object) -> Intake:
    root.mkdir()
    instance = Intake(root, database_url, capsys, **options)  # type: ignore[arg-type]
    assert instance.run("contacts", "import", str(DATA / "contacts.csv")).code == 0
    return instance


def _pass_on(source: Intake, target: Intake, delivered: set[str]) -> int:
    """Deliver to `target` what `source` sent that `target` has not had yet; how many."""
    count = 0
    for message in source.sent_mail():
        if message["Message-ID"] not in delivered:
            delivered.add(message["Message-ID"])
            target.ingest(message.as_bytes())
            count += 1
    return count


def test_two_intakes_answering_each_other_stop_at_once(tmp_path: Path, database_url: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    ours = _intake(tmp_path / "ours", database_url, capsys)
    theirs = _intake(tmp_path / "theirs", f"sqlite:///{tmp_path / 'theirs.db'}", capsys, support=OTHER)
    # Their helpdesk writes to ours once (a person did, or a misconfigured forward).
    ours.ingest(compose(f"Other Helpdesk <{OTHER}>", "Please call us", "Call 555-0100."))
    delivered: set[str] = set()
    for _ in range(10):
        if not (_pass_on(ours, theirs, delivered) + _pass_on(theirs, ours, delivered)):
            break
    assert len(ours.sent_mail()) == 1  # our refusal to a stranger...
    assert theirs.sent_mail() == []  # ...is Auto-Submitted, so theirs never answers it
    assert theirs.last_outcome()["outcome"] == "ignored"


def test_a_broken_autoresponder_gets_at_most_one_reply(intake: Intake) -> None:
    """An out-of-office that answers everything without marking itself automatic in any way."""
    intake.ingest(compose("Zack Morris <zack.morris@bayside.example>", "Households",
                          "Case Type: Ask a Question\nModule: Census\nDescription: Where is the report?\n"))
    robot = "Away <away@elsewhere.example>"
    answered: set[str] = set()
    for _ in range(30):
        new = [m for m in intake.sent_mail() if m["Message-ID"] not in answered]
        if not new:
            break
        for message in new:
            answered.add(message["Message-ID"])
            # No "Out of office:" subject either: it escapes every signal of parsers.robots.
            intake.ingest(compose(robot, f"Re: {message['Subject']}", "I am away until Monday."))
    to_robot = [m for m in intake.outbox() if m["to"] == ["away@elsewhere.example"]]
    assert len(to_robot) == 1  # a stranger is told once; the reply cap would stop it at 10 otherwise
    assert "already answered once" in intake.last_outcome()["reasons"][-1]
