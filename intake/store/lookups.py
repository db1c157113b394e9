"""Read-only look-ups over the database, as the decision and the answers see them.

The contact registry (`routing.contacts.Directory`), the case threads
(`routing.threads.Threads`) and the count of automatic replies an address had
(`routing.decide.ReplyLog`), each over an open session; and the listing of a
contact's cases that a `status` answer shows. Nothing here writes.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from intake.mailout.compose import STATUS_CLOSED_DAYS, StatusListing
from intake.notify.lookup import DatabaseNotices
from intake.store.models import Account, Case, Contact, HeldMessage, InboundMessage, OutboundMessage
from parsers.message import bare_message_id
from routing.contacts import AccountView, ContactView
from routing.decide import Views
from routing.schema import ContactType
from routing.states import CaseStatus, HeldStatus, Reply
from routing.threads import CaseView

_AUTOMATIC_KINDS = tuple(kind.value for kind in Reply if kind.automatic)


def views_over(session: Session) -> Views:
    return Views(DatabaseDirectory(session), DatabaseThreads(session), DatabaseReplyLog(session),
                 DatabaseCaseLog(session), DatabaseNotices(session))


def to_contact_view(contact: Contact) -> ContactView:
    return ContactView(
        id=contact.id, email=contact.email, first_name=contact.first_name, last_name=contact.last_name,
        contact_type=ContactType(contact.contact_type), active=contact.active,
        schema_bootcamp=contact.schema_bootcamp,
        accounts=tuple(AccountView(a.id, a.name) for a in contact.accounts))


class DatabaseDirectory:
    """`routing.contacts.Directory` over an open session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def contact_by_email(self, email: str) -> ContactView | None:
        contact = self._session.scalars(select(Contact).where(Contact.email == email.lower())).first()
        return to_contact_view(contact) if contact else None

    def contacts_of(self, account: AccountView) -> list[ContactView]:
        row = self._session.get(Account, account.id)
        return [to_contact_view(c) for c in row.contacts] if row else []


def to_case_view(case: Case) -> CaseView:
    return CaseView(number=case.number, subject=case.subject, case_type=case.case_type, status=case.status,
                    account_id=case.account_id, account_name=case.account.name, contact_id=case.contact_id,
                    contact_email=case.contact.email, submitted_by_id=case.submitted_by_id, closed=case.closed)


class DatabaseThreads:
    """`routing.threads.Threads` over an open session: every Message-ID stored for a case finds it."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def case(self, number: int) -> CaseView | None:
        case = self._session.get(Case, number)
        return to_case_view(case) if case else None

    def case_of_message_id(self, message_id: str) -> CaseView | None:
        wanted = bare_message_id(message_id)
        for model in (InboundMessage, OutboundMessage):
            number = self._session.scalars(select(model.case_number).where(
                model.message_id == wanted, model.case_number.is_not(None)).limit(1)).first()
            if number is not None:
                return self.case(number)
        return None


class DatabaseReplyLog:
    """`routing.decide.ReplyLog` over an open session: the answers mail from an address was sent."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def automatic_replies_since(self, address: str, since: dt.datetime) -> int:
        return self._answers_since(address, since, _AUTOMATIC_KINDS)

    def refusals_since(self, address: str, since: dt.datetime) -> int:
        return self._answers_since(address, since, (Reply.REFUSAL.value,))

    def held_notices_since(self, address: str, since: dt.datetime) -> int:
        return self._answers_since(address, since, (Reply.HELD_NOTICE.value,))

    def _answers_since(self, address: str, since: dt.datetime, kinds: tuple[str, ...]) -> int:
        """Outbox rows of these kinds, since then, answering mail that came from `address`."""
        sent = self._session.scalar(
            select(func.count()).select_from(OutboundMessage)
            .join(InboundMessage, OutboundMessage.inbound_message_id == InboundMessage.id)
            .where(InboundMessage.sender == address, OutboundMessage.created >= since,
                   OutboundMessage.kind.in_(kinds)))
        return sent or 0


class DatabaseCaseLog:
    """`routing.decide.CaseLog` over an open session: recent new cases, and mail waiting for the rate."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def cases_created_since(self, contact_id: int, account_id: int, since: dt.datetime
                            ) -> tuple[tuple[dt.datetime, ...], tuple[dt.datetime, ...]]:
        def created(*where: ColumnElement[bool]) -> tuple[dt.datetime, ...]:
            return tuple(self._session.scalars(select(Case.created).where(Case.created >= since, *where)
                                               .order_by(Case.created)))
        return created(Case.submitted_by_id == contact_id), created(Case.account_id == account_id)

    def held_from(self, address: str) -> tuple[dt.datetime, ...]:
        return tuple(self._session.scalars(select(HeldMessage.until).where(
            HeldMessage.sender == address, HeldMessage.status == HeldStatus.HELD.value).order_by(HeldMessage.until)))


def status_listing(session: Session, contact_id: int, timezone: dt.tzinfo, now: dt.datetime) -> StatusListing:
    """The cases of a contact (theirs or sent by them): open ones, and those closed in the last 90 days."""
    mine = session.scalars(select(Case).where((Case.contact_id == contact_id) | (Case.submitted_by_id == contact_id))
                           .order_by(Case.number)).all()
    since = now - dt.timedelta(days=STATUS_CLOSED_DAYS)

    def when(moment: dt.datetime | None) -> str:
        return moment.astimezone(timezone).strftime("%m/%d/%Y") if moment else ""

    open_cases = tuple({"number": c.number, "status": c.status, "priority": c.priority, "subject": c.subject,
                        "case_type": c.case_type, "account": c.account.name, "last_activity": when(c.modified)}
                       for c in mine if c.status != CaseStatus.CLOSED)
    closed_cases = tuple({"number": c.number, "subject": c.subject, "closed": when(c.closed)}
                         for c in mine if c.status == CaseStatus.CLOSED and c.closed and c.closed >= since)
    return StatusListing(open_cases, closed_cases, STATUS_CLOSED_DAYS)


class _NoContacts:
    """The directory of a database that does not exist yet (a dry run never creates it)."""

    def contact_by_email(self, email: str) -> ContactView | None:
        return None

    def contacts_of(self, account: AccountView) -> list[ContactView]:
        return []


class _NoCases:
    def case(self, number: int) -> CaseView | None:
        return None

    def case_of_message_id(self, message_id: str) -> CaseView | None:
        return None


class _NoReplies:
    def automatic_replies_since(self, address: str, since: dt.datetime) -> int:
        return 0

    def refusals_since(self, address: str, since: dt.datetime) -> int:
        return 0

    def held_notices_since(self, address: str, since: dt.datetime) -> int:
        return 0


class _NoCaseLog:
    def cases_created_since(self, contact_id: int, account_id: int, since: dt.datetime
                            ) -> tuple[tuple[dt.datetime, ...], tuple[dt.datetime, ...]]:
        return (), ()

    def held_from(self, address: str) -> tuple[dt.datetime, ...]:
        return ()


EMPTY_VIEWS = Views(_NoContacts(), _NoCases(), _NoReplies(), _NoCaseLog())
