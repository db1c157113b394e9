"""Stored groups processed in worker processes, for `intake ingest` on PostgreSQL.

`intake ingest` stores its messages a group at a time (one commit) and then
processes the group (`process_messages`). On PostgreSQL, where claims skip
each other's rows, the groups go to `[worker] processes` processes of their
own, as `intake serve`'s do, while the command stores the next; the outcomes
come back in the order the messages were read. On SQLite, one writer, or
with one process, a group is processed in the command's own process, as it
is handed in.

A reply whose parent is in a group another process still has waits
(`process_messages` leaves it out of its result); it is processed once the
groups before it are done, in the command's process.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager

from intake.act.handlers import Processed
from intake.act.worker import process_messages
from intake.config import Config, load_config
from intake.store.database import Store, open_store

__all__ = ["GroupProcessing", "group_processing"]


class GroupProcessing:
    """Hands stored groups to be processed; each hand-in is a future of its outcomes (message id → outcome)."""

    def __init__(self, store: Store, config: Config, executor: Executor | None = None, processes: int = 1) -> None:
        self._store, self._config, self._executor = store, config, executor
        self.processes = processes
        # Groups handed in and not yet finished: one for each process, and one more waiting its turn.
        self.in_flight = processes + 1 if executor is not None else 1

    def submit(self, inbound_ids: Sequence[int]) -> Future[dict[int, Processed]]:
        if self._executor is not None and inbound_ids:
            return self._executor.submit(_process_in_worker, list(inbound_ids))
        done: Future[dict[int, Processed]] = Future()
        done.set_result(process_messages(self._store, self._config, inbound_ids))
        return done

    def finish(self, inbound_ids: Sequence[int], future: Future[dict[int, Processed]]) -> dict[int, Processed]:
        """The group's outcomes, once every group handed in before it is finished (the caller's order).

        What the worker left out (a reply waiting for its parent in an earlier
        group, processed meanwhile) is processed here, now that the earlier
        groups are done.
        """
        results = future.result()
        left = [i for i in inbound_ids if i not in results]
        if left and self._executor is not None:
            results = {**results, **process_messages(self._store, self._config, left)}
        return results


@contextmanager
def group_processing(store: Store, config: Config, messages: int, group_size: int) -> Iterator[GroupProcessing]:
    """Worker processes on PostgreSQL when `messages` fill more groups than there are processes; else none."""
    postgresql = store.engine.dialect.name == "postgresql"
    processes = config.worker.processes_for(config.database_url) if postgresql else 1
    if processes < 2 or messages <= group_size * processes:
        yield GroupProcessing(store, config)  # starting processes would cost more than it saves
        return
    # "spawn": a child of its own, sharing no database connection with this process.
    context = multiprocessing.get_context("spawn")
    path = str(config.path) if config.path is not None else None
    with ProcessPoolExecutor(max_workers=processes, mp_context=context, initializer=_start_worker,
                             initargs=(path,)) as executor:
        yield GroupProcessing(store, config, executor, processes)


# --- in the worker process ------------------------------------------------------------

_worker: tuple[Store, Config] | None = None


def _start_worker(config_path: str | None) -> None:
    global _worker
    config = load_config(config_path)
    _worker = (open_store(config.database_url, create=False), config)


def _process_in_worker(inbound_ids: list[int]) -> dict[int, Processed]:
    assert _worker is not None, "the pool's initializer opens the store"
    store, config = _worker
    return process_messages(store, config, inbound_ids)
