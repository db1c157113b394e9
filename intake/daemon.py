"""`intake serve`: the daemon that runs the whole flow in one asyncio process.

Where it sits: around everything else. The edges (the SMTP/LMTP listener of
`intake.mailin.smtp`, the IMAP pollers of `intake.mailin.imap`) store raw mail and wake the
worker; the worker claims stored messages that have no outcome and runs
`intake.act.worker.process_message` in a thread, then hands queued replies to
`intake.mailout.delivery.deliver_pending`. A periodic sweep finds whatever a wake-up
missed, including what an earlier run stored but never processed.

Shutdown (SIGTERM or SIGINT) follows uvicorn's order: stop accepting, let the
messages in flight get their reply, close the remaining connections, stop the
pollers, then let the worker process what was accepted before exiting 0.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from dataclasses import dataclass
from typing import Any, Callable, Coroutine

from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from intake.config import Config, ImapMailbox
from intake.store.models import InboundMessage, utcnow
from intake.mailout.delivery import deliver_pending, next_due
from intake.logs import logfmt
from intake.mailin.smtp import IntakeHandler, start_listener
from intake.store.database import SQLITE_BUSY_TIMEOUT_MS, Store, open_store
from intake.act.worker import process_message

log = logging.getLogger("intake.daemon")

SWEEP_SECONDS = 30.0  # how often the worker looks for work nobody woke it for
BATCH = 100
SHUTDOWN_GRACE_SECONDS = 20.0  # for in-flight work at SIGTERM; what is left waits for the next start
ERROR_BACKOFF_SECONDS = 5.0
MIN_WAIT_SECONDS = 1.0  # between passes when a delivery retry is already due (a lease not yet run out)
EXIT_OK, EXIT_FAILED = 0, 1


class StartupError(Exception):
    """The daemon cannot start: a port taken, a module missing; the message says which."""


# --- the daemon ---------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    id: int
    message_id: str | None
    sender: str | None


def pending_after(store: Store, after: int, limit: int = BATCH) -> list[Pending]:
    """Stored messages without an outcome, oldest first, after the id already seen."""
    with store.session() as session:
        rows = session.execute(select(InboundMessage.id, InboundMessage.message_id, InboundMessage.sender)
                               .where(InboundMessage.outcome.is_(None), InboundMessage.id > after)
                               .order_by(InboundMessage.id).limit(limit)).all()
    return [Pending(*row) for row in rows]


def open_edge_store(url: str) -> Store:
    """The store the edges write through: on PostgreSQL a lock waits a bounded time, as on SQLite.

    Without it a table lock held elsewhere would hold an SMTP client past its
    own timeout; with it the client gets 451 and retries.
    """
    store = open_store(url)
    if store.engine.dialect.name == "postgresql":
        event.listen(store.engine, "connect", _bounded_lock_wait)
        store.engine.dispose()  # the connection that created the schema was made before the listener
    return store


def _bounded_lock_wait(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"SET lock_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()
    dbapi_connection.commit()  # a SET inside a rolled-back transaction would be undone


ImapPoller = Callable[[ImapMailbox, Store, Callable[[], None], asyncio.Event], Coroutine[Any, Any, None]]


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.store: Store | None = None
        self.edge_store: Store | None = None

    async def run(self) -> int:
        self.wake = asyncio.Event()  # set after each store
        self.stopping = asyncio.Event()  # a signal arrived
        self.edges_closed = asyncio.Event()  # nothing more will be stored by this process
        self._stop_deadline = float("inf")
        pollers = self._imap_poller()  # fail before binding anything when IMAP cannot run
        try:
            self.store = await asyncio.to_thread(open_store, self.config.database_url)
            self.edge_store = await asyncio.to_thread(open_edge_store, self.config.database_url)
        except Exception as exc:
            shown = make_url(self.config.database_url).render_as_string(hide_password=True)
            raise StartupError(f"cannot open the database {shown}: {type(exc).__name__}: {exc}") from exc
        try:
            return await self._serve(pollers)
        finally:
            self.store.engine.dispose()
            self.edge_store.engine.dispose()

    async def _serve(self, run_imap_poller: ImapPoller | None) -> int:
        assert self.edge_store is not None
        handler = IntakeHandler(self.config, self.edge_store, self.wake.set)
        server = await self._listen(handler)
        self._install_signal_handlers()
        worker = asyncio.create_task(self.work(), name="worker")
        pollers = self._start_pollers(run_imap_poller) if run_imap_poller else []
        if server is None and not pollers:
            log.warning(logfmt(event="no_edges", detail="SMTP is disabled and no IMAP mailbox is configured; "
                                                        "only processing what is already stored"))
        log.info(logfmt(event="started", smtp=server is not None, imap=len(pollers), pid=os.getpid()))
        failed = await self._until_stopped([worker, *pollers])
        await self._close_edges(server, handler, pollers)
        self.edges_closed.set()
        worker_failed = await self._finish(worker)
        log.info(logfmt(event="stopped", failed=failed or worker_failed))
        return EXIT_FAILED if failed or worker_failed else EXIT_OK

    def _start_pollers(self, run_imap_poller: ImapPoller) -> list[asyncio.Task[None]]:
        assert self.edge_store is not None
        return [asyncio.create_task(run_imap_poller(mailbox, self.edge_store, self.wake.set, self.stopping),
                                    name=f"imap:{mailbox.name}") for mailbox in self.config.imap]

    def _imap_poller(self) -> ImapPoller | None:
        if not self.config.imap:
            return None
        try:
            from intake.mailin.imap import run_imap_poller
        except ImportError as exc:
            names = ", ".join(m.name for m in self.config.imap)
            raise StartupError(f"IMAP mailboxes are configured ({names}) but IMAP polling is not available: "
                               f"{exc}") from exc
        return run_imap_poller  # type: ignore[no-any-return]

    async def _listen(self, handler: IntakeHandler) -> asyncio.base_events.Server | None:
        if not self.config.smtp.enabled:
            return None
        smtp = self.config.smtp
        try:
            return await start_listener(self.config, handler)
        except OSError as exc:
            raise StartupError(f"cannot listen on {smtp.host}:{smtp.port}: {exc.strerror or exc}") from exc

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop, signum)

    def stop(self, signum: int | None = None) -> None:
        if self.stopping.is_set():
            return
        name = signal.Signals(signum).name if signum else "request"
        log.info(logfmt(event="stopping", signal=name))
        self._stop_deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
        self.stopping.set()

    async def _until_stopped(self, tasks: list[asyncio.Task[None]]) -> bool:
        """Wait for a signal; True when a component ended on its own instead (a bug or a fatal error)."""
        stopped = asyncio.create_task(self.stopping.wait())
        done, _ = await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
        early = [t for t in done if t is not stopped]
        for task in early:
            error = task.exception() if not task.cancelled() else None
            log.error(logfmt(event="component_ended", component=task.get_name(),
                             error=f"{type(error).__name__}: {error}" if error else "returned"),
                      exc_info=error)
        if early:
            self.stop()
        stopped.cancel()
        return bool(early)

    async def _close_edges(self, server: asyncio.base_events.Server | None, handler: IntakeHandler,
                           pollers: list[asyncio.Task[None]]) -> None:
        if server is not None:
            server.close()  # no new connections
            await handler.finish_storing()  # a message being stored gets its commit and its 250
            handler.close_connections()
            await handler.finish_storing()
        if pollers:
            _, late = await asyncio.wait(pollers, timeout=SHUTDOWN_GRACE_SECONDS)
            for task in late:
                task.cancel()
            await asyncio.gather(*pollers, return_exceptions=True)

    async def _finish(self, worker: asyncio.Task[None]) -> bool:
        try:
            await worker
        except Exception:
            log.exception(logfmt(event="worker_failed"))
            return True
        return False

    # --- the worker -----------------------------------------------------------

    async def work(self) -> None:
        """Process stored messages until the edges are closed and the last of them is done."""
        while True:
            final = self.edges_closed.is_set()
            self.wake.clear()
            try:
                await self.process_stored()
                await self.deliver()
                pause = await self._until_next_delivery()
            except Exception as exc:  # the database or the mail sink is away; keep going, try again later
                log.error(logfmt(event="worker_error", error=f"{type(exc).__name__}: {exc}"), exc_info=exc)
                pause = ERROR_BACKOFF_SECONDS
            if final:
                return
            await self._wait_for_work(pause)

    async def _wait_for_work(self, timeout: float) -> None:
        waits = [asyncio.create_task(self.wake.wait()), asyncio.create_task(self.edges_closed.wait())]
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()

    async def process_stored(self) -> int:
        """Process every stored message without an outcome; how many were processed."""
        assert self.store is not None
        done, after = 0, 0
        while batch := await asyncio.to_thread(pending_after, self.store, after):
            for pending in batch:
                if self.stopping.is_set() and time.monotonic() > self._stop_deadline:
                    log.warning(logfmt(event="shutdown_grace_over", detail="unprocessed messages wait for the "
                                                                           "next start"))
                    return done
                done += await self.process_one(pending)
                after = pending.id
        return done

    async def process_one(self, pending: Pending) -> int:
        assert self.store is not None
        started = time.monotonic()
        processed = await asyncio.to_thread(process_message, self.store, self.config, pending.id)
        if processed is None:
            return 0  # another worker has it, or it was done meanwhile
        log.info(logfmt(message_id=pending.message_id, sender=pending.sender, outcome=processed.outcome.value,
                        case=processed.case_number, ms=round((time.monotonic() - started) * 1000),
                        inbound=pending.id))
        return 1

    async def _until_next_delivery(self) -> float:
        """Seconds to sleep: the sweep interval, or less when a delivery retry falls due sooner."""
        assert self.store is not None
        due = await asyncio.to_thread(next_due, self.store)
        if due is None:
            return SWEEP_SECONDS
        seconds = (due - utcnow()).total_seconds()
        return min(SWEEP_SECONDS, max(MIN_WAIT_SECONDS, seconds))

    async def deliver(self) -> int:
        assert self.store is not None
        delivered = await asyncio.to_thread(deliver_pending, self.store, self.config)
        if delivered:
            sink = f"relay:{self.config.relay.host}" if self.config.relay else f"maildir:{self.config.outgoing_maildir}"
            log.info(logfmt(event="delivered", count=delivered, sink=sink))
        return delivered
