"""Several `intake serve` processes on one database: what they must share, and who does what.

On PostgreSQL any number of daemons, on any number of hosts, serve one
database. They must share the thread secret (a token one writes must verify
on every other), so `serve` refuses to start there without a configured one.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from conftest import DATA, TEST_SECRET_ENV, Intake, compose
from intake.act.handlers import Processed
from intake.act.worker import process_pass
from intake.config import load_config
from intake.mailin.accept import accept
from intake.store.database import Store, open_store
from intake.store.models import Case, InboundMessage, OutboundMessage


def _without_configured_secret(intake: Intake) -> None:
    text = intake.config.read_text()
    assert f'secret_env = "{TEST_SECRET_ENV}"\n' in text
    intake.config.write_text(text.replace(f'secret_env = "{TEST_SECRET_ENV}"\n', ""))


def test_serve_refuses_postgresql_without_a_shared_secret_and_says_how_to_set_one(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    intake = Intake(tmp_path, database_url, capsys)
    _without_configured_secret(intake)
    check = intake.run("serve", "--check")
    if make_url(database_url).get_backend_name() == "postgresql":
        served = intake.run("serve")
        assert served.code == 1
        assert "every intake serve must share one thread secret" in served.err
        assert "set [conversations] secret_env or secret_file" in served.err
        assert check.code == 1
        assert "FAIL  configuration" in check.out and "secret_env or secret_file" in check.out
    else:  # SQLite is one machine's database: the secret generated beside it serves
        assert "ok    configuration" in check.out


# --- the worker: batches, savepoints, replies that wait -----------------------

ZACK = "Zack Morris <zack.morris@bayside.example>"
QUESTION = "Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n"


def _contacts_intake(tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> Intake:
    intake = Intake(tmp_path, database_url, capsys)
    assert intake.run("contacts", "import", str(DATA / "contacts.csv")).code == 0
    return intake


def _stored(store: Store, raw: bytes) -> int:
    return accept(store, raw, "test").id


def _outcomes(store: Store) -> dict[int, tuple[str | None, int | None]]:
    with store.session() as session:
        return {row.id: (row.outcome, row.case_number) for row in session.scalars(select(InboundMessage))}


def _refuse_cases_titled(store: Store, subject: str) -> None:
    """A real fault in the database: storing a case with this subject fails, as a broken disk or bug would."""
    with store.engine.begin() as connection:
        if store.engine.dialect.name == "postgresql":
            connection.execute(text(
                "CREATE FUNCTION refuse_case() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.subject = '{subject}' THEN RAISE EXCEPTION 'refused by the test''s trigger'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"))
            connection.execute(text("CREATE TRIGGER refuse_case BEFORE INSERT ON cases "
                                    "FOR EACH ROW EXECUTE FUNCTION refuse_case()"))
        else:
            connection.execute(text(
                f"CREATE TRIGGER refuse_case BEFORE INSERT ON cases WHEN NEW.subject = '{subject}' "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test''s trigger'); END"))


def test_one_message_failing_in_a_batch_leaves_the_others_processed_and_answered(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    intake = _contacts_intake(tmp_path, database_url, capsys)
    config = load_config(intake.config)
    store = open_store(database_url)
    try:
        _refuse_cases_titled(store, "Broken")
        ids = [_stored(store, compose(ZACK, subject, QUESTION)) for subject in ("First", "Broken", "Third")]

        heard: list[Processed] = []
        done = process_pass(store, config, on_processed=heard.append)

        outcomes = _outcomes(store)
        assert done.processed == 3 and [p.inbound_id for p in heard] == ids
        assert outcomes[ids[0]][0] == outcomes[ids[2]][0] == "case_created"
        assert outcomes[ids[1]] == ("failed", None)
        with store.session() as session:
            failed = session.get(InboundMessage, ids[1])
            assert failed is not None and "refused by the test's trigger" in (failed.error or "")
            assert session.scalars(select(Case.subject).order_by(Case.number)).all() == ["First", "Third"]
            answered = session.scalars(select(OutboundMessage.inbound_message_id)).all()
        assert sorted(answered) == [ids[0], ids[2]]  # the failed one queued nothing: its savepoint was undone
    finally:
        store.engine.dispose()


def test_a_reply_to_a_message_another_worker_holds_waits_for_it_then_joins_its_case(
        tmp_path: Path, postgresql_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    intake = _contacts_intake(tmp_path, postgresql_url, capsys)
    config = load_config(intake.config)
    store = open_store(postgresql_url)
    try:
        first = _stored(store, compose(ZACK, "Households", QUESTION, message_id="<first@bayside.example>"))
        follow_up = _stored(store, compose(ZACK, "Re: Households", "I forgot: it is for 2026.",
                                           headers={"In-Reply-To": "<first@bayside.example>",
                                                    "References": "<first@bayside.example>"},
                                           message_id="<second@bayside.example>"))
        with store.session() as other_worker, other_worker.begin():
            other_worker.execute(select(InboundMessage.id).where(InboundMessage.id == first).with_for_update())
            meanwhile = process_pass(store, config)
            assert (meanwhile.processed, meanwhile.waiting) == (0, 1)
            assert _outcomes(store)[follow_up] == (None, None)  # not a new case: it waits
        after = process_pass(store, config)

        outcomes = _outcomes(store)
        assert after.processed == 2 and after.waiting == 0
        assert outcomes[first][0] == "case_created"
        assert outcomes[follow_up] == ("comment_added", outcomes[first][1])
    finally:
        store.engine.dispose()


def test_a_reply_stored_before_its_parent_is_processed_joins_the_case_in_the_same_pass(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    intake = _contacts_intake(tmp_path, database_url, capsys)
    config = load_config(intake.config)
    store = open_store(database_url)
    try:
        first = _stored(store, compose(ZACK, "Households", QUESTION, message_id="<first@bayside.example>"))
        follow_up = _stored(store, compose(ZACK, "Re: Households", "I forgot: it is for 2026.",
                                           headers={"In-Reply-To": "<first@bayside.example>"},
                                           message_id="<second@bayside.example>"))
        done = process_pass(store, config)
        outcomes = _outcomes(store)
        assert done.processed == 2
        assert outcomes[follow_up] == ("comment_added", outcomes[first][1])
    finally:
        store.engine.dispose()
