"""Stored groups processed in other processes, for `intake ingest`: worker processes, or a parse ahead.

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

Where the command processes the groups itself (SQLite; PostgreSQL with one
process or few groups), with more than one group and more than one core,
the next group is parsed in a process of its own (pure work, no database)
while the command processes the one before; the command then decides and
acts on what that process parsed of the very bytes it stored. A message
over `PARSE_AHEAD_MAX_BYTES` is not sent there (it is parsed from its stored
copy, as before, so it is never held twice), and should that process fail,
the group is parsed in the command: the parse ahead only saves time.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager

from intake.act.handlers import Processed
from intake.act.parsing import PARSE_AHEAD_MAX_BYTES, parse_in_worker, start_parser
from intake.act.worker import process_messages
from intake.config import Config, load_config
from intake.logs import logfmt
from intake.store.database import Store, open_store
from parsers.submission import Submission

__all__ = ["GroupProcessing", "group_processing"]

log = logging.getLogger(__name__)


class GroupProcessing:
    """Hands stored groups to be processed; each hand-in is a future of its outcomes (message id → outcome)."""

    def __init__(self, store: Store, config: Config, executor: Executor | None = None, processes: int = 1,
                 parser: Executor | None = None) -> None:
        self._store, self._config, self._executor, self._parser = store, config, executor, parser
        self.processes = processes
        # Groups handed in and not yet finished: one for each process, and one more waiting its turn.
        self.in_flight = processes + 1 if executor is not None else 1

    @property
    def parses_ahead(self) -> bool:
        return self._parser is not None

    def parse_ahead(self, raws: Sequence[bytes]) -> Future[list[Submission | None]] | None:
        """Have these messages parsed meanwhile (None for one too large to send); None: no process for it."""
        if self._parser is None:
            return None
        return self._parser.submit(parse_in_worker, [raw if len(raw) <= PARSE_AHEAD_MAX_BYTES else None
                                                      for raw in raws])

    def parsed(self, future: Future[list[Submission | None]] | None, count: int) -> list[Submission | None]:
        """What `parse_ahead` gave, one entry a message; all None if that process failed (parsed here instead)."""
        if future is not None:
            try:
                return future.result()
            except Exception as exc:  # the process died, or a parse raised: the command's own parse records it
                log.warning(logfmt(event="parse_ahead_failed", error=exc))
                self._parser = None  # a broken pool takes nothing more; the rest is parsed in the command
        return [None] * count

    def submit(self, inbound_ids: Sequence[int],
               parsed: Mapping[int, Submission] | None = None) -> Future[dict[int, Processed]]:
        """Process these stored messages; ``parsed``: those parsed ahead, from the bytes stored."""
        if self._executor is not None and inbound_ids:
            return self._executor.submit(_process_in_worker, list(inbound_ids))
        done: Future[dict[int, Processed]] = Future()
        done.set_result(process_messages(self._store, self._config, inbound_ids, parsed=parsed))
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
    """Worker processes on PostgreSQL when `messages` fill more groups than there are processes; else, with
    more than one group and more than one core, a process that parses ahead; else none."""
    postgresql = store.engine.dialect.name == "postgresql"
    processes = config.worker.processes_for(config.database_url) if postgresql else 1
    # "spawn": a child of its own, sharing no database connection with this process.
    context = multiprocessing.get_context("spawn")
    path = str(config.path) if config.path is not None else None
    if processes >= 2 and messages > group_size * processes:
        with ProcessPoolExecutor(max_workers=processes, mp_context=context, initializer=_start_worker,
                                 initargs=(path,)) as executor:
            yield GroupProcessing(store, config, executor, processes)
    elif messages > group_size and (os.cpu_count() or 1) > 1:
        with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=start_parser,
                                 initargs=(path,)) as parser:
            yield GroupProcessing(store, config, parser=parser)
    else:
        yield GroupProcessing(store, config)  # starting a process would cost more than it saves


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
