"""`intake health` for monitors, and `intake serve` telling systemd it is ready and alive.

A real `intake serve` is started with a real notify socket, as systemd
would give it (Type=notify, WatchdogSec); health is read back as a monitor
would run it, with Nagios's exit statuses.
"""
from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session

from intake.store.models import InboundMessage
from smtp_helpers import RunningIntake, case_message, make_intake, wait_until

__all__ = ["make_intake"]
Make = Callable[..., RunningIntake]


def health(intake: RunningIntake) -> tuple[int, dict]:  # type: ignore[type-arg]
    ran = intake.command("health", "--json")
    return ran.returncode, json.loads(ran.stdout)


def test_health_reports_queues_and_daemons_and_serve_speaks_sd_notify(make_intake: Make, tmp_path: Path) -> None:
    intake = make_intake()
    code, report = health(intake)
    assert code == 2 and report["status"] == "CRITICAL"
    assert any("no intake serve seen alive" in p for p in report["problems"])
    text = intake.command("health")
    assert text.returncode == 2 and text.stdout.startswith("CRITICAL - no intake serve seen alive")

    notify_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(30)
    try:
        intake.start(env={"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "2000000"})
        said: list[str] = []

        def heard(state: str) -> bool:
            said.extend(listener.recv(4096).decode().splitlines())
            return any(line == state for line in said)
        wait_until(lambda: heard("READY=1"), timeout=30, what="READY=1 from intake serve")
        wait_until(lambda: heard("WATCHDOG=1"), timeout=30, what="WATCHDOG=1 from intake serve")

        code, report = wait_until(lambda: (r := health(intake))[0] == 0 and r, timeout=30,
                                  what="intake health to be OK with the daemon alive")
        assert report["status"] == "OK" and [d["alive"] for d in report["daemons"]] == [True]

        intake.send(case_message())
        stored = intake.wait_until_processed(1)
        with Session(intake.engine) as session, session.begin():  # as if the worker had crashed on it
            session.execute(update(InboundMessage).where(InboundMessage.id == stored.inbound[0].id)
                            .values(outcome="failed"))
        code, report = health(intake)
        assert code == 1 and report["status"] == "WARNING" and report["queues"]["failed"] == 1
        assert "1 message(s) failed processing" in report["problems"][0]

        # Not read for a while, the socket's queue has filled: the daemon must not block on it.
        assert intake.stop() == 0
        wait_until(lambda: heard("STOPPING=1"), timeout=30, what="STOPPING=1 from intake serve")
    finally:
        listener.close()
    code, report = health(intake)
    assert code == 2 and report["daemons"] == []  # a daemon that stops cleanly takes its heartbeat with it
