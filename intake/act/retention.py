"""Retention, since this is student data: the raw mail and files of cases closed long ago are purged.

With `[retention] purge_closed_after_days` set (0, the default, keeps
everything), the raw bytes of every message in and out of a case closed more
than that many days ago, and its attachments' contents, are emptied. The case
record, its fields, comments, the messages' headers as filed (sender,
subject, Message-ID) and every decision's reasons stay, so the history can
still be read. `intake purge --dry-run` shows what would go; `intake serve`
purges once an hour.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from intake.store.models import Attachment, Case, InboundMessage, InboundRaw, OutboundMessage
from routing.states import CaseStatus

__all__ = ["Purge", "purge"]


@dataclass(frozen=True)
class Purge:
    """What a purge emptied (or, in a dry run, would empty)."""

    cases: tuple[int, ...]
    inbound: int
    outbound: int
    attachments: int
    bytes: int
    dry_run: bool


def purge(session: Session, after_days: int, now: dt.datetime, *, dry_run: bool = False) -> Purge:
    """Empty the raw bytes of the cases closed more than ``after_days`` days before ``now``, in this transaction."""
    cutoff = now - dt.timedelta(days=after_days)
    cases = tuple(session.scalars(select(Case.number).where(Case.status == CaseStatus.CLOSED.value,
                                                             Case.closed.is_not(None), Case.closed < cutoff)
                                  .order_by(Case.number)))
    tables = ((InboundMessage, InboundMessage.raw), (OutboundMessage, OutboundMessage.raw),
              (Attachment, Attachment.content))
    counts: list[int] = []
    size = 0
    for model, column in tables:
        where = (model.case_number.in_(cases), model.purged.is_(None))
        found = session.execute(select(func.count(), func.coalesce(func.sum(func.length(column)), 0))
                                .where(*where)).one()
        counts.append(int(found[0]))
        size += int(found[1])
        if not dry_run and cases:
            emptied: dict[object, object] = {column: b""}
            if model is InboundMessage:  # its bytes are in a table of their own
                session.execute(update(InboundRaw).values(raw=b"").where(
                    InboundRaw.inbound_message_id.in_(select(InboundMessage.id).where(*where))))
                emptied = {}
            session.execute(update(model).where(*where).values({**emptied, model.purged: now})
                            .execution_options(synchronize_session=False))
    return Purge(cases, counts[0], counts[1], counts[2], size, dry_run)
