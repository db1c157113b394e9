"""`routing.notices.NoticeLookup` over an open session: what the decision may know of a notice."""
from __future__ import annotations

from sqlalchemy.orm import Session

from intake.store.notices import Notice
from routing.notices import NoticeView

__all__ = ["DatabaseNotices", "to_notice_view"]


def to_notice_view(notice: Notice) -> NoticeView:
    return NoticeView(notice.id, notice.kind, notice.title, notice.status, tuple(notice.accounts or ()))


class DatabaseNotices:
    def __init__(self, session: Session) -> None:
        self._session = session

    def notice(self, notice_id: int) -> NoticeView | None:
        notice = self._session.get(Notice, notice_id)
        return to_notice_view(notice) if notice is not None and notice.published is not None else None
