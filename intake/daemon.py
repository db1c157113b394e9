"""`intake serve`: the daemon that runs the whole flow in one asyncio process.

Where it sits: around everything else. Start-up, tasks and shutdown, and
nothing else. The edges (the SMTP/LMTP listener of `intake.mailin.smtp`, the
IMAP pollers of `intake.mailin.imap`) store raw mail and wake processing;
processing runs in worker processes of its own (`intake.act.processes`,
`[worker] processes` of them), never in the listener's interpreter, and
wakes delivery, which hands the outbox on
(`intake.mailout.delivery.deliver_pending`). Processing and delivery are
separate, so a slow relay never stalls intake. A periodic sweep finds
whatever a wake-up missed, including what an earlier run stored but never
processed.

Shutdown (SIGTERM or SIGINT) follows uvicorn's order: stop accepting, let the
messages in flight get their reply, close the remaining connections, stop the
pollers, let the workers finish what was accepted (each makes a last pass),
deliver what they queued, then exit 0.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url

from intake import systemd
from intake.act.processes import WorkerPool
from intake.act.retention import purge
from intake.config import Config
from intake.logs import logfmt
from intake.mailin.imap import run_imap_poller
from intake.mailin.smtp import IntakeHandler, start_listener
from intake.mailout.delivery import deliver_pending, next_due
from intake.notify.daemon_work import run_scheduled_work
from intake.store.database import SQLITE_BUSY_TIMEOUT_MS, Store, open_store
from intake.store.health import daemon_name, forget_daemon, record_heartbeat
from intake.store.migrate import SchemaError
from intake.store.models import utcnow

log = logging.getLogger("intake.daemon")

SWEEP_SECONDS = 30.0  # how often processing and delivery look for work nobody woke them for
# How often scheduled work looks for jobs and notice changes made by other processes (`intake notify`).
SCHEDULE_SECONDS = 5.0
HEARTBEAT_SECONDS = 10.0  # how often a daemon records that it is alive (`intake health`)
PURGE_SECONDS = 3600.0  # how often, with [retention] set, old cases' raw mail is purged
SHUTDOWN_GRACE_SECONDS = 20.0  # for in-flight work at SIGTERM; what is left waits for the next start
ERROR_BACKOFF_SECONDS = 5.0
MIN_WAIT_SECONDS = 1.0  # between passes when a delivery retry is already due (a lease not yet run out)
EXIT_OK, EXIT_FAILED = 0, 1


class StartupError(Exception):
    """The daemon cannot start: a port taken, a module missing; the message says which."""


def shared_secret_problem(config: Config) -> str | None:
    """Why this configuration may not serve a shared database, or None.

    On PostgreSQL several daemons, on several hosts, answer one set of
    threads: a token one of them writes into a Message-ID must verify on every
    other. A secret generated into this machine's data_dir would not, and
    replies would become new cases; so the secret must be configured.
    """
    if make_url(config.database_url).get_backend_name() != "postgresql" or config.conversations.secret_configured:
        return None
    return ("on PostgreSQL every intake serve must share one thread secret: set [conversations] secret_env or "
            "secret_file to the same secret on every host (the generated "
            f"{config.data_dir / 'secret'} is this machine's alone)")


# --- the daemon ---------------------------------------------------------------


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


class Daemon:
    def __init__(self, config: Config, log_format: str = "logfmt") -> None:
        self.config = config
        self.log_format = log_format  # the worker processes log as the daemon does
        self.store: Store | None = None
        self.edge_store: Store | None = None

    async def run(self) -> int:
        self.wake = asyncio.Event()  # set after each store
        self.stopping = asyncio.Event()  # a signal arrived
        self.edges_closed = asyncio.Event()  # nothing more will be stored by this process
        self.queued = asyncio.Event()  # set after processing queued mail for delivery
        self.processing_done = asyncio.Event()  # the last accepted message has been processed
        self._stop_deadline = float("inf")
        # Before anything listens: a signal that arrives while intake starts stops it cleanly
        # (once the port answers, a client or a supervisor may signal at any moment).
        self._install_signal_handlers()
        if problem := shared_secret_problem(self.config):
            raise StartupError(problem)
        try:
            self.store = await asyncio.to_thread(open_store, self.config.database_url)
            self.edge_store = await asyncio.to_thread(open_edge_store, self.config.database_url)
        except SchemaError as exc:  # behind or ahead of the code: the message names the database and the fix
            raise StartupError(str(exc)) from exc
        except Exception as exc:
            shown = make_url(self.config.database_url).render_as_string(hide_password=True)
            raise StartupError(f"cannot open the database {shown}: {type(exc).__name__}: {exc}") from exc
        try:
            return await self._serve()
        finally:
            self.store.engine.dispose()
            self.edge_store.engine.dispose()

    async def _serve(self) -> int:
        assert self.edge_store is not None and self.store is not None
        handler = IntakeHandler(self.config, self.edge_store, self.wake.set)
        server = await self._listen(handler)
        # Processing and delivery are separate tasks, so a slow relay never stalls intake.
        processing = asyncio.create_task(self.process(), name="processing")
        delivery = asyncio.create_task(self.deliver_queued(), name="delivery")
        # Due jobs (maintenance reminders and state changes, closing resolved cases) and the status page.
        scheduled = asyncio.create_task(run_scheduled_work(self.store, self.config, self.edges_closed,
                                                           self.queued.set, utcnow, SCHEDULE_SECONDS),
                                        name="scheduled work")
        heartbeat = asyncio.create_task(self.heartbeat(), name="heartbeat")
        workers = [processing, delivery, scheduled, heartbeat]
        pollers = self._start_pollers()
        if server is None and not pollers:
            log.warning(logfmt(event="no_edges", detail="SMTP is disabled and no IMAP mailbox is configured; "
                                                        "only processing what is already stored"))
        log.info(logfmt(event="started", smtp=server is not None, imap=len(pollers), pid=os.getpid()))
        systemd.notify(f"READY=1\nSTATUS=serving (smtp={server is not None}, imap={len(pollers)})")
        failed = await self._until_stopped([*workers, *pollers])
        systemd.notify("STOPPING=1")
        await self._close_edges(server, handler, pollers)
        self.edges_closed.set()
        workers_failed = [await self._finish(task) for task in workers]
        log.info(logfmt(event="stopped", failed=failed or any(workers_failed)))
        return EXIT_FAILED if failed or any(workers_failed) else EXIT_OK

    def _start_pollers(self) -> list[asyncio.Task[None]]:
        assert self.edge_store is not None
        return [asyncio.create_task(run_imap_poller(mailbox, self.edge_store, self.wake.set, self.stopping),
                                    name=f"imap:{mailbox.name}") for mailbox in self.config.imap]

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

    async def _finish(self, task: asyncio.Task[None]) -> bool:
        try:
            await task
        except Exception:
            log.exception(logfmt(event="worker_failed", component=task.get_name()))
            return True
        return False

    # --- processing -------------------------------------------------------------

    async def process(self) -> None:
        """Run the worker processes until the edges are closed and they have processed the last message."""
        pool = WorkerPool(self.config, self.config.worker.processes_for(self.config.database_url),
                          self.log_format, self.queued.set)
        running = asyncio.create_task(pool.run(), name="worker processes")
        wakes = asyncio.create_task(self._pass_wakes_on(pool), name="wake-ups")
        try:
            await asyncio.wait([running, asyncio.create_task(self.edges_closed.wait())],
                               return_when=asyncio.FIRST_COMPLETED)
            if running.done():  # the pool ended on its own: a bug; the daemon stops
                running.result()
                return
            await pool.finish()  # a last pass each over what was accepted, then exit
            remaining = self._stop_deadline - time.monotonic()
            _, late = await asyncio.wait([running], timeout=max(0.0, remaining))
            if late:
                log.warning(logfmt(event="shutdown_grace_over", detail="unprocessed messages wait for the next start"))
                pool.kill()
                await running
        finally:
            wakes.cancel()
            self.processing_done.set()

    async def _pass_wakes_on(self, pool: WorkerPool) -> None:
        """Each store sets `wake`; the workers hear of it at once (a busy one on finishing its pass)."""
        while True:
            await self.wake.wait()
            self.wake.clear()
            pool.wake()

    # --- alive ------------------------------------------------------------------

    async def heartbeat(self) -> None:
        """Record that this daemon is alive (`intake health`), and tell systemd's watchdog, until the end."""
        assert self.store is not None
        store, started = self.store, utcnow()
        name = daemon_name(started)
        interval = min(HEARTBEAT_SECONDS, systemd.watchdog_seconds() or HEARTBEAT_SECONDS)

        last_purge = 0.0

        def beat() -> None:
            nonlocal last_purge
            with store.session() as session, session.begin():
                record_heartbeat(session, name, started, utcnow())
            days = self.config.purge_closed_after_days
            if days and time.monotonic() - last_purge >= PURGE_SECONDS:  # [retention], once an hour
                with store.session() as session, session.begin():
                    done = purge(session, days, utcnow())
                last_purge = time.monotonic()
                if done.inbound or done.outbound or done.attachments:
                    log.info(logfmt(event="purged", cases=len(done.cases), inbound=done.inbound,
                                    outbound=done.outbound, attachments=done.attachments, bytes=done.bytes))

        while not self.processing_done.is_set():
            try:
                await asyncio.to_thread(beat)
            except Exception as exc:  # the database is away: health will show this daemon as not seen
                log.warning(logfmt(event="heartbeat_failed", error=f"{type(exc).__name__}: {exc}"))
            systemd.notify("WATCHDOG=1")
            await _first_of([self.processing_done], interval)
        try:
            await asyncio.to_thread(lambda: _forget(store, name))
        except Exception as exc:
            log.warning(logfmt(event="heartbeat_failed", error=f"{type(exc).__name__}: {exc}"))

    # --- delivery ---------------------------------------------------------------

    async def deliver_queued(self) -> None:
        """Deliver the outbox whenever processing queued mail or a retry falls due, until processing is done."""
        while True:
            final = self.processing_done.is_set()
            self.queued.clear()
            try:
                await self.deliver()
                pause = await self._until_next_delivery()
            except Exception as exc:  # the database or the mail sink is away; keep going, try again later
                log.error(logfmt(event="delivery_error", error=f"{type(exc).__name__}: {exc}"), exc_info=exc)
                pause = ERROR_BACKOFF_SECONDS
            if final:
                return
            await _first_of([self.queued, self.processing_done], pause)

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


def _forget(store: Store, name: str) -> None:
    with store.session() as session, session.begin():
        forget_daemon(session, name)


async def _first_of(events: list[asyncio.Event], timeout: float) -> None:
    """Wait until one of `events` is set, or `timeout` seconds."""
    waits = [asyncio.create_task(e.wait()) for e in events]
    await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for task in waits:
        task.cancel()
