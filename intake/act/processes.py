"""Worker processes: processing runs beside the listener, never in its interpreter.

`intake serve` starts `[worker] processes` children (`python -m
intake.act.processes`); each runs the one worker loop
(`intake.act.worker.process_pass`) over the shared database. The parent
(`WorkerPool`) wakes them through their stdin, one byte per wake-up, and
hears from their stdout when a pass queued mail, so delivery starts at once.
When the parent closes a child's stdin, the child makes one last pass and
exits: that is how shutdown ends processing, and how a child whose parent
died (even by SIGKILL) stops. A child that dies is started again.

On PostgreSQL the children's claims skip each other's rows; on SQLite, one
writer, there is one child.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import selectors
import signal
import sys
import time
from collections.abc import Callable, Sequence

from intake.act.handlers import Processed
from intake.act.worker import process_pass
from intake.config import Config, load_config
from intake.logs import LOG_FORMATS, configure_logging, logfmt
from intake.store.database import Store, open_store

log = logging.getLogger("intake.worker")

SWEEP_SECONDS = 30.0  # a pass even when nobody woke the worker: what a wake-up missed, held mail now due
WAITING_SECONDS = 1.0  # the next pass, when a reply waits for a message another worker holds
ERROR_BACKOFF_SECONDS = 5.0
RESTART_SECONDS = 2.0  # before a child that died is started again
# Workers yield the CPU to the listener: a client waiting for its 250 comes before a message already
# stored, which can wait a moment for its case (as nice(1) would have it; 10 is its default).
NICENESS = 10
QUEUED = b"queued\n"  # a child's line on stdout: a pass committed outcomes (and maybe mail to deliver)


# --- the child --------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m intake.act.processes",
                                     description="an intake worker process (started by intake serve)")
    parser.add_argument("--config", help="the configuration file intake serve read")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="logfmt")
    parser.add_argument("--name", default="worker")
    args = parser.parse_args(argv)
    # The parent orchestrates shutdown (it closes stdin); a terminal's ^C or systemd's SIGTERM
    # to the whole group must not interrupt a message half-way.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.nice(NICENESS)
    configure_logging(format=args.log_format)
    config = load_config(args.config)
    store = open_store(config.database_url)
    try:
        run_worker(store, config, args.name, sys.stdin.fileno(), sys.stdout.buffer)
    finally:
        store.engine.dispose()
    return 0


def run_worker(store: Store, config: Config, name: str, wakes: int, out: object) -> None:
    """Pass after pass until `wakes` (a pipe) reaches its end; then one last pass."""
    os.set_blocking(wakes, False)
    selector = selectors.DefaultSelector()
    selector.register(wakes, selectors.EVENT_READ)
    closed = False
    log.info(logfmt(event="worker_started", worker=name, pid=os.getpid()))
    while True:
        final = closed
        pause = SWEEP_SECONDS
        try:
            done = process_pass(store, config, on_processed=_logged)
            if done.processed:
                _tell(out, QUEUED)
            if done.waiting:
                pause = WAITING_SECONDS
        except Exception as exc:  # the database is away; keep going, try again later
            log.error(logfmt(event="processing_error", worker=name, error=f"{type(exc).__name__}: {exc}"),
                      exc_info=exc)
            pause = ERROR_BACKOFF_SECONDS
        if final:
            break
        if selector.select(timeout=pause):
            closed = _drain(wakes)
    log.info(logfmt(event="worker_stopped", worker=name))


def _drain(fd: int) -> bool:
    """Read every wake-up byte waiting; True when the parent closed the pipe."""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return False
        if not chunk:
            return True


def _tell(out: object, line: bytes) -> None:
    try:
        out.write(line)  # type: ignore[attr-defined]
        out.flush()  # type: ignore[attr-defined]
    except BrokenPipeError:  # the parent is gone; stdin's end will stop this worker
        pass


def _logged(processed: Processed) -> None:
    log.info(logfmt(message_id=processed.message_id, sender=processed.sender, outcome=processed.outcome.value,
                    case=processed.case_number, ms=processed.ms, inbound=processed.inbound_id))


# --- the parent ---------------------------------------------------------------------


class WorkerPool:
    """The daemon's worker processes: started, woken, restarted when they die, and stopped last."""

    def __init__(self, config: Config, count: int, log_format: str, on_queued: Callable[[], None]) -> None:
        self.config = config
        self.count = count
        self.log_format = log_format
        self.on_queued = on_queued
        self._children: dict[int, asyncio.subprocess.Process] = {}
        self._finishing = False

    async def run(self) -> None:
        """Keep `count` workers running until `finish`; returns when every one has exited."""
        await asyncio.gather(*(self._keep_running(n) for n in range(1, self.count + 1)))

    def wake(self) -> None:
        """Tell every worker there is new mail (a byte each; a busy worker reads them all at once)."""
        for child in self._children.values():
            if child.stdin is not None and not child.stdin.is_closing():
                child.stdin.write(b"w")

    async def finish(self) -> None:
        """Close every worker's stdin: each makes a last pass and exits; `run` then returns."""
        self._finishing = True
        for child in self._children.values():
            if child.stdin is not None and not child.stdin.is_closing():
                child.stdin.close()

    def kill(self) -> None:
        """The grace time is over: what the workers have not committed waits for the next start."""
        for child in self._children.values():
            if child.returncode is None:
                child.kill()

    async def _keep_running(self, number: int) -> None:
        name = f"worker-{number}"
        while not self._finishing:
            started = time.monotonic()
            child = await self._start(name)
            self._children[number] = child
            if self._finishing:  # shutdown began while it started
                await self.finish()
            await self._listen(child)
            code = await child.wait()
            if self._finishing:
                log.info(logfmt(event="worker_exited", worker=name, code=code))
                return
            log.error(logfmt(event="worker_died", worker=name, code=code, detail="starting it again"))
            await asyncio.sleep(max(0.0, RESTART_SECONDS - (time.monotonic() - started)))

    async def _start(self, name: str) -> asyncio.subprocess.Process:
        command = [sys.executable, "-m", "intake.act.processes", "--log-format", self.log_format, "--name", name]
        if self.config.path is not None:
            command += ["--config", str(self.config.path)]
        # stderr is the daemon's own: the workers' log lines go where its lines go.
        return await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE)

    async def _listen(self, child: asyncio.subprocess.Process) -> None:
        assert child.stdout is not None
        while line := await child.stdout.readline():
            if line == QUEUED:
                self.on_queued()


if __name__ == "__main__":
    raise SystemExit(main())
