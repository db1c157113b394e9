"""Group commit at the SMTP edge: the messages that arrive together are made durable together.

Each DATA command waits for its message's commit before its 250, as ever;
what changes is that the sessions arriving while one commit is in progress
share the next one. A writer task takes whatever is waiting (up to
`MAX_GROUP` messages), reads their filing headers and commits them in one
transaction in a thread, off the event loop, then answers each. With one
session at a time a group is one message and nothing waits longer than
before; under load one transaction carries many.
"""
from __future__ import annotations

import asyncio

from intake.mailin.accept import Stored, accept_many, arrival
from intake.store.database import Store
from intake.store.turns import EDGE_POLL_SECONDS, turn

MAX_GROUP = 64  # messages in one transaction at most: bounds its memory and its time


class GroupCommit:
    """Stores messages for the SMTP/LMTP edge, in groups; `store` returns once the message is committed."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._waiting: list[tuple[bytes, str, str | None, asyncio.Future[Stored]]] = []
        self._writer: asyncio.Task[None] | None = None

    def store_message(self, raw: bytes, source: str, envelope_sender: str | None) -> asyncio.Future[Stored]:
        """A future that completes when `raw` is committed (or with the error that kept it from being)."""
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._waiting.append((raw, source, envelope_sender, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="group commit")
        return future

    async def _write(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            messages = [(raw, source, sender) for raw, source, sender, _ in group]
            try:
                stored = await asyncio.to_thread(self._commit, messages)
            except Exception as exc:  # nothing of the group is committed: every session answers 451
                for *_, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (*_, future), result in zip(group, stored, strict=True):
                if not future.done():
                    future.set_result(result)

    def _commit(self, messages: list[tuple[bytes, str, str | None]]) -> list[Stored]:
        arrivals = [arrival(raw, source, sender) for raw, source, sender in messages]
        with turn(self.store.engine, poll=EDGE_POLL_SECONDS):  # SQLite: next after the worker's write
            return accept_many(self.store, arrivals)
