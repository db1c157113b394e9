"""What `intake health` reports: queue depths, the age of the oldest waiting work, and the daemons' heartbeats.

Read-only counts over the database, and the daemons' own record of being
alive (`record_heartbeat`, written by each `intake serve` every few seconds).
"""
from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from intake.store.models import DaemonHeartbeat, HeldMessage, InboundMessage, OutboundMessage, QuarantinedMessage
from routing.states import HeldStatus, OutboxStatus, Outcome, QuarantineStatus

__all__ = ["Health", "daemon_name", "forget_daemon", "read_health", "record_heartbeat"]

# A daemon not seen for this long is gone (killed, or its host is down); its row is dropped by the next one.
GONE_AFTER = dt.timedelta(days=1)


@dataclass(frozen=True)
class DaemonSeen:
    name: str
    host: str
    pid: int
    started: dt.datetime
    last_seen: dt.datetime


@dataclass(frozen=True)
class Health:
    unprocessed: int
    failed: int
    held: int
    quarantined: int
    outbox_due: int
    outbox_failed: int
    oldest_unprocessed: dt.datetime | None  # when the oldest unprocessed message was received
    oldest_outbox_due: dt.datetime | None  # when the oldest due outgoing message was queued
    daemons: tuple[DaemonSeen, ...]


def read_health(session: Session) -> Health:
    def count(query: object) -> int:
        return int(session.scalar(query) or 0)  # type: ignore[call-overload]

    due = OutboundMessage.status.in_((OutboxStatus.QUEUED.value, OutboxStatus.RETRYING.value))
    return Health(
        unprocessed=count(select(func.count()).select_from(InboundMessage).where(InboundMessage.outcome.is_(None))),
        failed=count(select(func.count()).select_from(InboundMessage)
                     .where(InboundMessage.outcome == Outcome.FAILED.value)),
        held=count(select(func.count()).select_from(HeldMessage).where(HeldMessage.status == HeldStatus.HELD.value)),
        quarantined=count(select(func.count()).select_from(QuarantinedMessage)
                          .where(QuarantinedMessage.status == QuarantineStatus.HELD.value)),
        outbox_due=count(select(func.count()).select_from(OutboundMessage).where(due)),
        outbox_failed=count(select(func.count()).select_from(OutboundMessage)
                            .where(OutboundMessage.status == OutboxStatus.FAILED.value)),
        oldest_unprocessed=session.scalar(select(func.min(InboundMessage.received))
                                          .where(InboundMessage.outcome.is_(None))),
        oldest_outbox_due=session.scalar(select(func.min(OutboundMessage.created)).where(due)),
        daemons=tuple(DaemonSeen(d.name, d.host, d.pid, d.started, d.last_seen) for d in session.scalars(
            select(DaemonHeartbeat).order_by(DaemonHeartbeat.started))),
    )


def daemon_name(started: dt.datetime) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{started:%Y%m%dT%H%M%S}"


def record_heartbeat(session: Session, name: str, started: dt.datetime, now: dt.datetime) -> None:
    """This daemon is alive now; daemons not seen for a day are forgotten."""
    row = session.get(DaemonHeartbeat, name)
    if row is None:
        session.add(DaemonHeartbeat(name=name, host=socket.gethostname(), pid=os.getpid(), started=started,
                                    last_seen=now))
    else:
        row.last_seen = now
    session.execute(delete(DaemonHeartbeat).where(DaemonHeartbeat.last_seen < now - GONE_AFTER))


def forget_daemon(session: Session, name: str) -> None:
    """A daemon that stops cleanly takes its row with it."""
    session.execute(delete(DaemonHeartbeat).where(DaemonHeartbeat.name == name))
