"""A daemon killed with SIGKILL in the middle of a burst loses nothing and does nothing twice.

Several client threads send 500 messages, each with its own Message-ID, as
MTAs would: a message is done when it got 250, and anything else (a refused
connection, a reset, no answer) is sent again once the server is back. Part
way through, the daemon is killed with SIGKILL and started again. In the end
every 250'd message is stored exactly once, has exactly one outcome, and each
case-making message made exactly one case and at most one acknowledgement.
"""
from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Callable

from conftest import SUPPORT
from smtp_helpers import ZACK_ADDRESS, RunningIntake, auto_reply, case_message, make_intake, wait_until

__all__ = ["make_intake"]

Make = Callable[..., RunningIntake]
MESSAGES = 500
CLIENTS = 4
PER_CONNECTION = 25
KILL_AFTER = 150  # acknowledged messages
CASE_EVERY = 2  # every other message makes a case; the rest are auto-replies, stored and ignored
DEADLINE_SECONDS = 120.0


def message(n: int) -> tuple[str, bytes]:
    message_id = f"crash-{n:04d}@bayside.example"
    raw = case_message(f"Burst {n}", message_id=f"<{message_id}>") if n % CASE_EVERY == 0 \
        else auto_reply(f"<{message_id}>")
    return message_id, raw


class Burst:
    """Client threads sending their share of the messages, retrying until each has a 250."""

    def __init__(self, intake: RunningIntake) -> None:
        self.intake = intake
        self.acknowledged: list[str] = []
        self.failed_attempts = 0
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._deadline = time.monotonic() + DEADLINE_SECONDS
        self.threads = [threading.Thread(target=self._client, args=(range(c, MESSAGES, CLIENTS),), daemon=True)
                        for c in range(CLIENTS)]

    def start(self) -> Burst:
        for thread in self.threads:
            thread.start()
        return self

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=max(1.0, self._deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "clients did not finish in time"
        assert not self.errors, self.errors

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def _client(self, numbers: range) -> None:
        pending = [message(n) for n in numbers]
        try:
            while pending:
                assert time.monotonic() < self._deadline, "burst deadline passed"
                pending = self._session(pending)
        except BaseException as exc:  # reported by join()
            self.errors.append(exc)

    def _session(self, pending: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        """Send up to PER_CONNECTION messages on one connection; return what is still unacknowledged."""
        try:
            with smtplib.SMTP("127.0.0.1", self.intake.port, timeout=30) as client:
                for message_id, raw in pending[:PER_CONNECTION]:
                    client.sendmail(ZACK_ADDRESS, [SUPPORT], raw)  # raises unless 250
                    with self._lock:
                        self.acknowledged.append(message_id)
                    pending = pending[1:]
        except (OSError, smtplib.SMTPException):
            with self._lock:
                self.failed_attempts += 1
            time.sleep(0.05)  # the server is down or restarting; an MTA would wait longer
        return pending


def test_sigkill_during_a_burst_loses_nothing_and_processes_nothing_twice(make_intake: Make) -> None:
    # 250 new cases from one contact in a minute: far past the default rate of new cases, which would hold them.
    intake = make_intake(extra_config="[limits]\ncases_per_hour_per_sender = 1000\n"
                                      "cases_per_hour_per_account = 1000\n").start()
    burst = Burst(intake).start()
    wait_until(lambda: burst.count() >= KILL_AFTER, timeout=60, what=f"{KILL_AFTER} messages acknowledged")
    intake.kill()
    assert burst.count() < MESSAGES
    print(f"killed with {burst.count()} acknowledged, {intake.unprocessed()} stored but not processed")
    intake.start()
    burst.join()

    stored = intake.wait_until_processed(MESSAGES, timeout=DEADLINE_SECONDS)
    ids = stored.message_ids()
    assert len(ids) == len(set(ids)) == MESSAGES  # each stored once
    assert set(burst.acknowledged) <= set(ids)
    assert len(burst.acknowledged) == len(set(burst.acknowledged)) == MESSAGES
    assert all(m.outcome in ("case_created", "ignored") for m in stored.inbound), \
        {m.message_id: (m.outcome, m.reasons) for m in stored.inbound if m.outcome not in ("case_created", "ignored")}

    case_making = {f"crash-{n:04d}@bayside.example" for n in range(0, MESSAGES, CASE_EVERY)}
    assert {m.message_id for m in stored.inbound if m.outcome == "case_created"} == case_making
    assert len(stored.cases) == len(case_making)
    case_numbers = [m.case_number for m in stored.inbound if m.case_number is not None]
    assert sorted(case_numbers) == sorted(c.number for c in stored.cases)  # one case each, none shared
    # At most one acknowledgement per message (the loop guard caps how many one
    # sender gets per hour, so not every case is acknowledged), and only for cases.
    acknowledged = [o.inbound_message_id for o in stored.outbox]
    assert acknowledged and len(acknowledged) == len(set(acknowledged))
    assert {m.message_id for m in stored.inbound if m.id in set(acknowledged)} <= case_making
    assert burst.failed_attempts > 0, "the kill did not interrupt any client"
