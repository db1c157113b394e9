"""`intake health [--json]`: one check for monitors, with Nagios's exit statuses (0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN when the database cannot be read)."""
from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass
from typing import Any

from intake.cli.common import command, print_json
from intake.cli.text import out
from intake.config import Config, HealthThresholds
from intake.store.database import open_store
from intake.store.health import Health, read_health
from intake.store.models import utcnow

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}


def add_commands(commands: Any) -> None:
    health = command(commands, "health", _health,
                     "queue depths, the oldest waiting work and the daemons' heartbeats, for monitors "
                     "(exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)")
    health.add_argument("--json", action="store_true")


@dataclass(frozen=True)
class Finding:
    level: int
    what: str


def findings(health: Health, limits: HealthThresholds, now: dt.datetime) -> list[Finding]:
    """Each threshold the state is past, worst first."""
    found: list[Finding] = []

    def against(value: float, warn: float, critical: float, what: str) -> None:
        if value >= critical:
            found.append(Finding(CRITICAL, what))
        elif value >= warn:
            found.append(Finding(WARNING, what))

    def age(moment: dt.datetime | None) -> float:
        return (now - moment).total_seconds() if moment else 0.0

    unprocessed, outbox = age(health.oldest_unprocessed), age(health.oldest_outbox_due)
    against(unprocessed, limits.warn_unprocessed_seconds, limits.critical_unprocessed_seconds,
            f"the oldest unprocessed message waits for {unprocessed:.0f} s")
    against(outbox, limits.warn_outbox_seconds, limits.critical_outbox_seconds,
            f"the oldest outgoing message waits for {outbox:.0f} s")
    against(health.failed, limits.warn_failed, limits.critical_failed,
            f"{health.failed} message(s) failed processing (`intake messages --outcome failed`, `intake replay`)")
    against(health.outbox_failed, limits.warn_outbox_failed, limits.critical_outbox_failed,
            f"{health.outbox_failed} outgoing message(s) failed (`intake outbox`)")
    against(health.quarantined, limits.warn_quarantined, limits.critical_quarantined,
            f"{health.quarantined} message(s) wait in the quarantine (`intake quarantine list`)")
    alive = [d for d in health.daemons if age(d.last_seen) < limits.critical_daemon_seconds]
    if not alive:
        last = max((d.last_seen for d in health.daemons), default=None)
        found.append(Finding(CRITICAL, "no intake serve seen alive in the last "
                                       f"{limits.critical_daemon_seconds} s"
                                       + (f" (last: {last:%Y-%m-%d %H:%M:%S} UTC)" if last else "")))
    return sorted(found, key=lambda f: -f.level)


def _health(args: argparse.Namespace, config: Config) -> int:
    now = utcnow()
    try:
        store = open_store(config.database_url)
        with store.session() as session:
            health = read_health(session)
    except Exception as exc:  # the monitor must hear UNKNOWN, not a traceback
        out(f"UNKNOWN - the database cannot be read: {type(exc).__name__}: {exc}")
        return UNKNOWN
    found = findings(health, config.health, now)
    level = found[0].level if found else OK
    if args.json:
        print_json(_as_json(health, found, level, now, config.health))
        return level
    alive = sum(1 for d in health.daemons
                if (now - d.last_seen).total_seconds() < config.health.critical_daemon_seconds)
    summary = (f"{health.unprocessed} unprocessed, {health.failed} failed, {health.held} held, "
               f"{health.quarantined} quarantined, {health.outbox_due} outgoing due, {health.outbox_failed} "
               f"outgoing failed, {alive} daemon(s) alive")
    out(f"{_NAMES[level]} - " + ("; ".join(f.what for f in found) if found else "all well") + f" | {summary}")
    for daemon in health.daemons:
        out(f"  daemon {daemon.host} pid {daemon.pid}: since {daemon.started:%Y-%m-%d %H:%M:%S} UTC, "
            f"last seen {(now - daemon.last_seen).total_seconds():.0f} s ago")
    return level


def _as_json(health: Health, found: list[Finding], level: int, now: dt.datetime,
             limits: HealthThresholds) -> dict[str, Any]:
    def age(moment: dt.datetime | None) -> float | None:
        return round((now - moment).total_seconds(), 1) if moment else None

    return {
        "status": _NAMES[level], "exit": level, "problems": [f.what for f in found],
        "queues": {"unprocessed": health.unprocessed, "failed": health.failed, "held": health.held,
                   "quarantined": health.quarantined, "outbox_due": health.outbox_due,
                   "outbox_failed": health.outbox_failed},
        "oldest_unprocessed_seconds": age(health.oldest_unprocessed),
        "oldest_outbox_due_seconds": age(health.oldest_outbox_due),
        "daemons": [{"host": d.host, "pid": d.pid, "started": d.started.isoformat(),
                     "last_seen_seconds": age(d.last_seen),
                     "alive": (age(d.last_seen) or 0) < limits.critical_daemon_seconds} for d in health.daemons],
    }
