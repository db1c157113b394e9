"""JSON-ready views of notices: the shapes `intake notify --json` prints and status.json is built from."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from intake.notify.present import NoticeCard
from intake.notify.scope import ContactFacts
from intake.store.models import OutboundMessage
from intake.store.notices import Notice, NoticeRecipient, NoticeStep

__all__ = ["card_view", "notice_detail", "notice_summary", "timestamp"]


def timestamp(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value is not None else None


def notice_summary(notice: Notice) -> dict[str, Any]:
    return {"id": notice.id, "kind": notice.kind, "title": notice.title, "status": notice.status,
            "draft": notice.published is None or any(s.sent is None for s in notice.steps),
            "accounts": list(notice.accounts or []), "areas": list(notice.areas or []),
            "starts": timestamp(notice.starts), "ends": timestamp(notice.ends), "created": timestamp(notice.created),
            "published": timestamp(notice.published), "closed": timestamp(notice.closed), "origin": notice.origin}


def _delivery_counts(session: Session, step: NoticeStep) -> dict[str, int]:
    rows = session.execute(select(OutboundMessage.status, func.count()).join(
        NoticeRecipient, NoticeRecipient.message_id == OutboundMessage.message_id)
        .where(NoticeRecipient.step_id == step.id).group_by(OutboundMessage.status))
    return {status: int(count) for status, count in rows}


def _step(session: Session, step: NoticeStep) -> dict[str, Any]:
    return {"id": step.id, "kind": step.kind, "body": step.body, "created": timestamp(step.created),
            "sent": timestamp(step.sent), "draft": step.sent is None, "recipients": step.recipients,
            "mail": _delivery_counts(session, step)}


def notice_detail(session: Session, notice: Notice, reached: Sequence[ContactFacts]) -> dict[str, Any]:
    """The notice, its steps with the mail each sent, notes, linked cases and the accounts affected."""
    wanted = {name.casefold() for name in notice.accounts or []}
    affected = sorted({name for contact in reached for name in contact.accounts
                       if not wanted or name.casefold() in wanted})
    return {**notice_summary(notice), "body": notice.body, "sequence": notice.sequence,
            "steps": [_step(session, s) for s in notice.steps],
            "notes": [{"id": n.id, "author": n.author, "body": n.body, "created": timestamp(n.created)}
                      for n in notice.notes],
            "cases": [link.case_number for link in notice.cases],
            "accounts_affected": affected, "contacts_in_scope": len(reached)}


def card_view(card: NoticeCard, zone: ZoneInfo) -> dict[str, Any]:
    """A notice as status.json shows it (published steps only; no contacts, no notes)."""
    return {"id": card.id, "kind": card.kind, "title": card.title, "status": card.status,
            "status_label": card.status_label, "open": card.is_open, "times": card.times, "body": card.body,
            "starts": timestamp(card.starts), "ends": timestamp(card.ends), "published": timestamp(card.published),
            "closed": timestamp(card.closed), "accounts": list(card.accounts), "areas": list(card.areas),
            "updates": [{"label": u.label, "body": u.body, "at": timestamp(u.at)} for u in card.updates]}
