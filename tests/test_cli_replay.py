"""`intake replay ID...`: failed messages are processed again; any other number is an error that says why."""
from __future__ import annotations

import tomllib

from sqlalchemy import update

from conftest import Intake, compose
from intake.store.database import open_store
from intake.store.models import InboundMessage

ZACK = "Zack Morris <zack.morris@bayside.example>"
QUESTION = "Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n"


def _mark_failed(intake: Intake, inbound_id: int) -> None:
    """Leave a stored message as the worker leaves one it crashed on."""
    store = open_store(tomllib.loads(intake.config.read_text())["database"]["url"])
    with store.session() as session, session.begin():
        session.execute(update(InboundMessage).where(InboundMessage.id == inbound_id)
                        .values(outcome="failed", case_number=None,
                                reasons=["internal error, kept for replay: RuntimeError: boom"]))
    store.engine.dispose()


def test_a_message_that_is_not_failed_is_refused_naming_its_outcome(intake: Intake) -> None:
    intake.ingest(compose(ZACK, "Households", QUESTION))
    [message] = intake.messages()

    ran = intake.run("replay", str(message["id"]))

    assert ran.code == 2 and ran.out == ""
    assert ran.err == (f"intake: error: message {message['id']} is not failed (its outcome is case_created); "
                       "only failed messages are replayed\n")
    assert len(intake.cases()) == 1


def test_an_unknown_message_is_refused(intake: Intake) -> None:
    ran = intake.run("replay", "99")

    assert ran.code == 2 and ran.out == ""
    assert ran.err == "intake: error: there is no message 99\n"


def test_a_failed_message_is_replayed(intake: Intake) -> None:
    intake.ingest(compose(ZACK, "Households", QUESTION))
    [message] = intake.messages()
    _mark_failed(intake, message["id"])

    ran = intake.run("replay", str(message["id"]))

    assert ran.code == 0, ran.err
    assert ran.out.startswith(f"message {message['id']}: case_created #")
    assert intake.messages()[0]["outcome"] == "case_created"


def test_the_failed_ones_of_several_are_replayed_and_the_others_named(intake: Intake) -> None:
    intake.ingest(compose(ZACK, "Households", QUESTION))
    intake.ingest(compose(ZACK, "Schedules", QUESTION))
    failed, done = (m["id"] for m in intake.messages())
    _mark_failed(intake, failed)

    ran = intake.run("replay", str(failed), str(done), "99")

    assert ran.code == 2
    assert f"message {failed}: case_created" in ran.out
    assert ran.err.splitlines() == [
        f"intake: error: message {done} is not failed (its outcome is case_created); only failed messages are replayed",
        "intake: error: there is no message 99"]


def test_the_help_names_the_number_intake_messages_shows(intake: Intake) -> None:
    import pytest
    with pytest.raises(SystemExit):
        intake.run("replay", "--help")
    text = intake.capsys.readouterr().out
    assert "ID [ID ...]" in text and "intake messages" in text and "MESSAGE_ID" not in text
