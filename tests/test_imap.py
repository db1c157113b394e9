"""The IMAP poller against a real Dovecot: stored first, then \\Seen or moved; restarts, outages, UIDVALIDITY.

Every test that takes `store` runs on SQLite and on PostgreSQL. Waiting is
always for a condition with a deadline; the deadlines are generous because
only a failure ever waits them out.
"""
from __future__ import annotations

import asyncio
import email.utils
import logging
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import sessionmaker

import intake.mailin.imap
from dovecot import Dovecot, running_dovecot
from intake.config import ImapMailbox
from intake.logs import logfmt
from intake.mailin.accept import Stored, accept
from intake.mailin.imap import ImapPoller, run_imap_poller
from intake.store.database import Store, store_raw
from intake.store.models import ImapState, InboundMessage
from parsers.headers import filing_headers

DEADLINE_SECONDS = 20.0
SEEN = b"\\Seen"
FAST: dict[str, Any] = dict(backoff_initial=0.05, backoff_max=0.4, idle_check_seconds=0.1)


# --- helpers that read like the domain ----------------------------------------


def mail(subject: str, *, message_id: str | None = None) -> bytes:
    message_id = message_id or f"<{uuid.uuid4().hex}@client.example>"
    return (f"From: Pat Teacher <pat@district.example>\r\n"
            f"To: support@intake.example\r\n"
            f"Subject: {subject}\r\n"
            f"Date: {email.utils.formatdate()}\r\n"
            f"Message-ID: {message_id}\r\n"
            f"\r\n"
            f"Please help with {subject}.\r\n").encode()


def wait_until(condition: Callable[[], object], what: str, deadline: float = DEADLINE_SECONDS) -> None:
    give_up = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"gave up after {deadline:.0f}s waiting for {what}")
        time.sleep(0.05)


def stored(store: Store) -> list[InboundMessage]:
    with store.session() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def stored_subjects(store: Store) -> list[str]:
    return [row.subject for row in stored(store)]


def seen(server: Dovecot, folder: str = "INBOX") -> list[bool]:
    return [SEEN in flags for flags in server.messages(folder).values()]


def mailbox_for(server: Dovecot, tmp_path: Path, **settings: object) -> ImapMailbox:
    password_file = tmp_path / "imap-password"
    password_file.write_text(server.password + "\n")
    defaults: dict[str, object] = dict(name="support", host=server.host, port=server.port, security="none",
                                       username=server.user, password_file=password_file, poll_seconds=300.0)
    return ImapMailbox(**{**defaults, **settings})  # type: ignore[arg-type]


class RunningPoller:
    """A poller's `run` loop in a thread, as the daemon runs it, with its wake-ups counted."""

    def __init__(self, poller: ImapPoller) -> None:
        self.poller = poller
        self.wakes = 0
        self.thread = threading.Thread(target=poller.run, args=(self._wake,), daemon=True)

    def _wake(self) -> None:
        self.wakes += 1


@contextmanager
def polling(poller: ImapPoller) -> Iterator[RunningPoller]:
    running = RunningPoller(poller)
    running.thread.start()
    try:
        yield running
    finally:
        poller.stop()
        running.thread.join(DEADLINE_SECONDS)
        assert not running.thread.is_alive(), "the poller did not stop"


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


@pytest.fixture
def store_raw_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The source of every message the poller hands to `accept`, duplicates included."""
    calls: list[str] = []

    def counting(store: Store, raw: bytes, source: str) -> Stored:
        calls.append(source)
        return accept(store, raw, source)

    monkeypatch.setattr(intake.mailin.imap, "accept", counting)
    return calls


# --- new mail: stored, then marked handled -------------------------------------


def test_new_mail_arriving_during_idle_is_stored_then_flagged_seen(dovecot: Dovecot, store: Store,
                                                                   tmp_path: Path) -> None:
    dovecot.append(mail("waiting before start"))
    mailbox = mailbox_for(dovecot, tmp_path)  # polls only every 300 s: only IDLE can be this quick

    async def scenario() -> int:
        woken = asyncio.Event()
        stopping = asyncio.Event()
        task = asyncio.create_task(run_imap_poller(mailbox, store, woken.set, stopping, **FAST))
        await asyncio.wait_for(woken.wait(), DEADLINE_SECONDS)
        woken.clear()
        await asyncio.to_thread(dovecot.append, mail("projector is broken"))
        await asyncio.wait_for(woken.wait(), DEADLINE_SECONDS)
        stopping.set()
        await asyncio.wait_for(task, DEADLINE_SECONDS)
        return len(stored(store))

    assert asyncio.run(scenario()) == 2
    rows = stored(store)
    assert [r.subject for r in rows] == ["waiting before start", "projector is broken"]
    assert [r.source for r in rows] == ["imap:support/INBOX uid=1", "imap:support/INBOX uid=2"]
    assert seen(dovecot) == [True, True]


def test_mail_arriving_between_a_poll_and_idle_is_not_missed(dovecot: Dovecot, store: Store,
                                                             tmp_path: Path) -> None:
    """The server may announce it with its answer to IDLE itself, which idle_check never sees."""
    poller = ImapPoller(mailbox_for(dovecot, tmp_path), store, **FAST)  # polls only every 300 s
    try:
        assert poller.poll_once() == 0
        dovecot.append(mail("arrived just before IDLE"))  # after the SEARCH, before the IDLE command
        assert poller.wait_for_mail(DEADLINE_SECONDS) is True
        assert poller.poll_once() == 1
    finally:
        poller.close()
    assert [r.subject for r in stored(store)] == ["arrived just before IDLE"]


def test_polls_when_the_server_offers_no_idle(store: Store, tmp_path: Path) -> None:
    with running_dovecot(without=("IDLE",)) as server:
        poller = ImapPoller(mailbox_for(server, tmp_path, poll_seconds=0.2), store, **FAST)
        with polling(poller) as running:
            wait_until(lambda: poller.client is not None, "the poller to connect")
            assert poller.client is not None and not poller.client.has_capability("IDLE")
            server.append(mail("no idle here"))
            wait_until(lambda: stored_subjects(store) == ["no idle here"], "the message to be stored")
            wait_until(lambda: seen(server) == [True], "the message to be flagged \\Seen")
            assert running.wakes >= 1


def test_after_move_moves_the_message_with_MOVE(dovecot: Dovecot, store: Store, tmp_path: Path) -> None:
    poller = ImapPoller(mailbox_for(dovecot, tmp_path, after="move", move_to="Processed"), store, **FAST)
    dovecot.append(mail("move me"))
    assert poller.poll_once() == 1
    assert poller.client is not None and poller.client.has_capability("MOVE")
    poller.close()
    assert dovecot.messages("INBOX") == {}
    assert len(dovecot.messages("Processed")) == 1
    assert stored_subjects(store) == ["move me"]


@pytest.mark.parametrize("without", [("MOVE",), ("MOVE", "UIDPLUS")], ids=["copy-uid-expunge", "copy-expunge"])
def test_after_move_falls_back_to_copy_and_delete(without: tuple[str, ...], store: Store, tmp_path: Path) -> None:
    with running_dovecot(without=without) as server:
        server.append(mail("first"))
        server.append(mail("second"))
        poller = ImapPoller(mailbox_for(server, tmp_path, after="move", move_to="Done"), store, **FAST)
        assert poller.poll_once() == 2
        assert poller.client is not None
        assert not any(poller.client.has_capability(c) for c in without)
        poller.close()
        assert server.messages("INBOX") == {}
        assert len(server.messages("Done")) == 2
        assert stored_subjects(store) == ["first", "second"]


# --- the store comes first ---------------------------------------------------------


def read_only(database_url: str) -> Store:
    """The same database, opened so that every write fails."""
    if database_url.startswith("sqlite:///"):
        url = f"sqlite:///file:{database_url[len('sqlite:///'):]}?mode=ro&uri=true"
    else:
        url = database_url + "%20-cdefault_transaction_read_only%3Don"
    engine = create_engine(url)
    return Store(engine, sessionmaker(engine, expire_on_commit=False))


def test_a_message_is_not_flagged_until_the_store_has_it(dovecot: Dovecot, store: Store, database_url: str,
                                                         tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="intake.mailin.imap")
    dovecot.append(mail("keep me safe"))
    poller = ImapPoller(mailbox_for(dovecot, tmp_path), read_only(database_url), **FAST)
    with polling(poller) as running:
        wait_until(lambda: sum("could not be stored" in r.getMessage() for r in caplog.records) >= 2,
                   "two failed attempts to store the message")
        assert seen(dovecot) == [False]
        assert stored(store) == []
        poller.store.engine.dispose()
        poller.store = store  # the database is writable again
        wait_until(lambda: seen(dovecot) == [True], "the message to be flagged once stored")
        assert stored_subjects(store) == ["keep me safe"]
        wait_until(lambda: running.wakes == 1, "the worker to be woken")


# --- remembering where it got to ----------------------------------------------


def test_a_restarted_poller_does_not_fetch_handled_mail_again(dovecot: Dovecot, store: Store, tmp_path: Path,
                                                              store_raw_calls: list[str]) -> None:
    mailbox = mailbox_for(dovecot, tmp_path)
    dovecot.append(mail("one"))
    dovecot.append(mail("two"))
    first = ImapPoller(mailbox, store, **FAST)
    assert first.poll_once() == 2
    first.close()
    # Someone marks both unread again: only the remembered UIDs keep them from
    # being taken a second time.
    with dovecot.client() as client:
        client.select_folder("INBOX")
        client.remove_flags([1, 2], [SEEN])
    dovecot.append(mail("three"))

    again = ImapPoller(mailbox, store, **FAST)
    assert again.poll_once() == 1
    again.close()
    assert store_raw_calls == [f"imap:support/INBOX uid={uid}" for uid in (1, 2, 3)]
    assert stored_subjects(store) == ["one", "two", "three"]
    with store.session() as session:
        state = session.get(ImapState, ("support", "INBOX"))
        assert state is not None and state.last_uid == 3
        assert state.uid_validity == dovecot.uid_validity()


def test_reconnects_when_dovecot_restarts_mid_poll(dovecot: Dovecot, store: Store, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="intake.mailin.imap")
    poller = ImapPoller(mailbox_for(dovecot, tmp_path), store, **FAST)
    with polling(poller):
        dovecot.append(mail("before the restart"))
        wait_until(lambda: stored_subjects(store) == ["before the restart"], "the first message")
        dovecot.restart()
        dovecot.append(mail("after the restart"))
        wait_until(lambda: stored_subjects(store) == ["before the restart", "after the restart"],
                   "the message appended after the restart")
        wait_until(lambda: seen(dovecot) == [True, True], "both messages flagged")
    assert any("event=reconnecting" in r.getMessage() for r in caplog.records)
    assert sum("event=connected" in r.getMessage() for r in caplog.records) >= 2


def test_a_changed_uidvalidity_is_handled_without_duplicates(dovecot: Dovecot, store: Store, tmp_path: Path,
                                                             store_raw_calls: list[str],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="intake.mailin.imap")
    mailbox = mailbox_for(dovecot, tmp_path, folder="Support")
    old = [mail(f"old {n}") for n in (1, 2, 3)]
    for raw in old:
        dovecot.append(raw, folder="Support")
    poller = ImapPoller(mailbox, store, **FAST)
    assert poller.poll_once() == 3
    poller.close()
    old_validity = dovecot.uid_validity("Support")

    # The folder is rebuilt (as a server migration would): UIDs start again at
    # 1, below the remembered last UID, and one old message is back, unread.
    with dovecot.client() as client:
        client.delete_folder("Support")
        client.create_folder("Support")
    dovecot.doveadm("mailbox", "update", "-u", dovecot.user, "--uid-validity", str(old_validity + 7), "Support")
    dovecot.append(old[0], folder="Support")
    dovecot.append(mail("new after the change"), folder="Support")

    assert poller.poll_once() == 1
    poller.close()
    assert stored_subjects(store) == ["old 1", "old 2", "old 3", "new after the change"]
    assert store_raw_calls[3:] == ["imap:support/Support uid=1", "imap:support/Support uid=2"]
    assert seen(dovecot, "Support") == [True, True]
    assert any("event=uidvalidity_changed" in r.getMessage() for r in caplog.records)


# --- credentials -----------------------------------------------------------------


def test_password_from_an_environment_variable(dovecot: Dovecot, store: Store, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTAKE_TEST_IMAP_PASSWORD", dovecot.password)
    mailbox = replace(mailbox_for(dovecot, tmp_path), password_file=None, password_env="INTAKE_TEST_IMAP_PASSWORD")
    dovecot.append(mail("via env"))
    poller = ImapPoller(mailbox, store, **FAST)
    assert poller.poll_once() == 1
    poller.close()


def test_a_wrong_password_is_logged_and_retried_with_backoff(dovecot: Dovecot, store: Store, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="intake.mailin.imap")
    mailbox = mailbox_for(dovecot, tmp_path)
    assert mailbox.password_file is not None
    mailbox.password_file.write_text("not the password\n")
    dovecot.append(mail("behind a login"))
    poller = ImapPoller(mailbox, store, **FAST)

    def refusals() -> list[str]:
        return [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]

    with polling(poller):
        wait_until(lambda: len(refusals()) >= 3, "three refused logins")
        mailbox.password_file.write_text(dovecot.password)  # re-read at the next attempt
        wait_until(lambda: stored_subjects(store) == ["behind a login"], "the message after the fix")
    assert refusals()[0] == logfmt(event="reconnecting", mailbox="support", folder="INBOX",
                                   error=f"login as {dovecot.user} with password refused by {dovecot.host}: "
                                         "[AUTHENTICATIONFAILED] Authentication failed.", retry_in="0.05s")
    assert all(r.levelno == logging.ERROR for r in caplog.records if "refused" in r.getMessage())
    delays = [float(m.rsplit(" retry_in=", 1)[1].rstrip("s")) for m in refusals()[:3]]
    assert delays == [0.05, 0.1, 0.2]


@pytest.mark.parametrize("source", ["file", "command"])
def test_xoauth2_with_a_token_from_a_file_or_a_command(source: str, dovecot: Dovecot, store: Store,
                                                       tmp_path: Path) -> None:
    # Dovecot's XOAUTH2 checks the bearer token against the passdb as if it
    # were a password, so the static passdb stands in for a token issuer.
    token_file = tmp_path / "token"
    token_file.write_text(dovecot.password + "\n")
    secret = ({"oauth2_token_file": token_file} if source == "file"
              else {"oauth2_token_command": f"cat '{token_file}'"})
    mailbox = replace(mailbox_for(dovecot, tmp_path), password_file=None, **secret)
    dovecot.append(mail("with a token"))
    poller = ImapPoller(mailbox, store, **FAST)
    assert poller.poll_once() == 1
    poller.close()
    assert "method=XOAUTH2" in dovecot.log_text()


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_starttls_and_implicit_tls(security: str, store: Store, tmp_path: Path) -> None:
    with running_dovecot(tls=True) as server:
        port = server.port if security == "starttls" else server.tls_port
        mailbox = mailbox_for(server, tmp_path, security=security, port=port)
        server.append(mail("encrypted"))
        poller = ImapPoller(mailbox, store, ssl_context=server.ssl_context(), **FAST)
        assert poller.poll_once() == 1
        assert poller.client is not None and isinstance(poller.client.socket(), ssl.SSLSocket)
        poller.close()


# --- one message, two ways in ---------------------------------------------------


def test_a_message_already_received_by_smtp_is_not_stored_again(dovecot: Dovecot, store: Store,
                                                                tmp_path: Path) -> None:
    raw = mail("sent to both")
    envelope = filing_headers(raw)
    first = store_raw(store, raw, message_id=envelope.message_id, sender=envelope.sender,
                      subject=envelope.subject, source="smtp:127.0.0.1")
    dovecot.append(b"Received: from mx.district.example by imap.intake.example\r\n" + raw)
    poller = ImapPoller(mailbox_for(dovecot, tmp_path), store, **FAST)
    assert poller.poll_once() == 0
    poller.close()
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(InboundMessage)) == 1
        assert session.get(InboundMessage, first.id).source == "smtp:127.0.0.1"  # type: ignore[union-attr]
    assert seen(dovecot) == [True]
