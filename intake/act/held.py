"""Held mail: messages over the rate of new cases, which wait for time (`intake held`).

The worker releases a held message by itself when its time comes
(`intake.act.worker.release_due`); a person can release one at once, and it is
then processed as if within the rate, in one transaction with the release.
"""
from __future__ import annotations

import datetime as dt

from intake.act.handlers import Processed
from intake.act.worker import decide_and_act
from intake.config import Config
from intake.store.database import Store
from intake.store.models import HeldMessage, utcnow
from routing.states import HeldStatus, Outcome

__all__ = ["HeldError", "release_now"]


class HeldError(ValueError):
    """The held message cannot be released as asked; the message says why."""


def release_now(store: Store, config: Config, entry_id: int, by: str, now: dt.datetime | None = None) -> Processed:
    now = now or utcnow()
    with store.session() as session, session.begin():
        entry = session.get(HeldMessage, entry_id, with_for_update=True)  # one release wins
        if entry is None:
            raise HeldError(f"no held message {entry_id}; `intake held list` shows them")
        row = entry.inbound_message
        if entry.status != HeldStatus.HELD.value or row.outcome != Outcome.HELD.value:
            raise HeldError(f"held message {entry_id} was already released"
                            + (f" by {entry.released_by}" if entry.released_by else " (its time came)")
                            + f"; the message's outcome is {row.outcome or 'pending'}")
        before = list(row.reasons)
        processed = decide_and_act(session, row, config, now, ignore_case_rate=True)
        row.reasons = [*before, f"released from the held mail by {by}", *row.reasons]
        entry.status, entry.released, entry.released_by = HeldStatus.RELEASED.value, now, by
        return processed
