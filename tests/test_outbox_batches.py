"""The outbox is delivered in batches: claimed in one transaction, results recorded in one.

The Maildir takes many rows at a time (a message written again is skipped by
its name); a failing row in a batch is retried alone while the others are
sent; two deliverers at once never send a row twice; and the bytes stored
when a reply is queued are the bytes delivered.
"""
from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Set as AbstractSet
from pathlib import Path

import pytest
from sqlalchemy import event

from conftest import DATA, Intake, compose
from intake.mailout import delivery
from intake.mailout.delivery import deliver_pending
from intake.store.database import Store, open_store
from intake.store.models import OutboundMessage
from test_outbox import T0, RecordingRelay, intake_config, outbox_messages, queue_acknowledgement, running_relay


def _commits(store: Store) -> list[int]:
    seen: list[int] = []
    event.listen(store.engine, "commit", lambda conn: seen.append(1))
    return seen


def test_a_batch_is_claimed_in_one_transaction_and_recorded_in_one(store: Store, tmp_path: Path) -> None:
    queued = [queue_acknowledgement(store, f"contact{n}@bayside.example") for n in range(30)]
    commits = _commits(store)

    assert deliver_pending(store, intake_config(tmp_path), now=T0) == 30

    assert len(commits) == 3  # the claim, the results, and the look that finds nothing more due
    assert [(r.message_id, r.status, r.attempts) for r in outbox_messages(store)] == [(m, "sent", 1) for m in queued]
    assert len(list((tmp_path / "outgoing" / "new").iterdir())) == 30


def test_one_failing_row_in_a_batch_is_retried_alone(store: Store, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    queued = [queue_acknowledgement(store, f"contact{n}@bayside.example") for n in range(5)]
    real = delivery.deliver_to_maildir

    def full_for_the_third(raw: bytes, maildir: Path, message_id: str, *listed: AbstractSet[str]) -> str | None:
        if message_id == queued[2]:
            raise OSError(28, "No space left on device")
        return real(raw, maildir, message_id, *listed)

    config = intake_config(tmp_path)
    monkeypatch.setattr(delivery, "deliver_to_maildir", full_for_the_third)
    assert deliver_pending(store, config, now=T0) == 4
    monkeypatch.undo()

    rows = {r.message_id: r for r in outbox_messages(store)}
    assert [rows[m].status for m in queued] == ["sent", "sent", "retrying", "sent", "sent"]
    failed = rows[queued[2]]
    assert failed.attempts == 1 and failed.next_attempt == T0 + dt.timedelta(seconds=60)
    assert "No space left on device" in (failed.last_error or "")

    assert deliver_pending(store, config, now=T0 + dt.timedelta(seconds=30)) == 0  # not due yet
    assert deliver_pending(store, config, now=T0 + dt.timedelta(seconds=60)) == 1
    rows = {r.message_id: r for r in outbox_messages(store)}
    assert [(rows[m].status, rows[m].attempts) for m in queued] == [("sent", 1)] * 2 + [("sent", 2)] + [("sent", 1)] * 2


def test_a_row_whose_lease_is_half_gone_is_handed_back_unsent(store: Store, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    queued = [queue_acknowledgement(store, f"contact{n}@bayside.example") for n in range(3)]
    slow = T0 + delivery.LEASE * 0.6
    moments = iter([T0, T0, slow, slow])
    monkeypatch.setattr(delivery, "utcnow", lambda: next(moments))
    # Claimed at T0 and the first row sent then; by the second row's turn the pass has taken 0.6 of the
    # lease. The clock then runs out (StopIteration) at the next claim, to look at what the first batch left.
    with pytest.raises(StopIteration):
        deliver_pending(store, intake_config(tmp_path))
    rows = {r.message_id: r for r in outbox_messages(store)}
    assert [rows[m].status for m in queued] == ["sent", "queued", "queued"]
    assert rows[queued[1]].next_attempt is None and rows[queued[2]].next_attempt is None  # due again at once
    assert len(list((tmp_path / "outgoing" / "new").iterdir())) == 1


def test_two_deliverers_at_once_send_every_message_once(database_url: str, tmp_path: Path) -> None:
    from intake.store.migrate import upgrade
    upgrade(database_url)
    stores = [open_store(database_url) for _ in range(2)]
    try:
        queued = [queue_acknowledgement(stores[0], f"contact{n}@bayside.example") for n in range(40)]
        relay = RecordingRelay()
        with running_relay(relay) as port:
            config = intake_config(tmp_path, port)
            sent: list[int] = []
            threads = [threading.Thread(target=lambda s=s: sent.append(deliver_pending(s, config, now=T0)))
                       for s in stores]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert sum(sent) == 40
        assert relay.message_ids() == {m: 1 for m in queued}
        assert {(r.status, r.attempts) for r in outbox_messages(stores[0])} == {("sent", 1)}
    finally:
        for store in stores:
            store.engine.dispose()


def test_the_reply_bytes_queued_are_the_bytes_delivered(tmp_path: Path, database_url: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    intake = Intake(tmp_path, database_url, capsys)  # no relay: the Maildir sink keeps the bytes as handed to it
    assert intake.run("contacts", "import", str(DATA / "contacts.csv")).code == 0
    body = "Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n"
    intake.ingest(compose("Zack Morris <zack.morris@bayside.example>", "Household report", body))
    store = open_store(database_url)
    try:
        with store.session() as session:
            [queued] = [row.raw for row in session.query(OutboundMessage)]
    finally:
        store.engine.dispose()
    [delivered] = [f.read_bytes() for f in (intake.maildir / "new").iterdir()]
    assert queued == delivered
