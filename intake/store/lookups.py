"""Read-only look-ups over the database, as the decision and the answers see them.

The contact registry (`routing.contacts.Directory`), the case threads
(`routing.threads.Threads`) and the count of automatic replies an address had
(`routing.decide.ReplyLog`), each over an open session; and the listing of a
contact's cases that a `status` answer shows. Nothing here writes.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, bindparam, func, literal, select, union_all
from sqlalchemy.orm import Session, joinedload

from intake.mailout.compose import STATUS_CLOSED_DAYS, StatusListing
from intake.notify.lookup import DatabaseNotices
from intake.store.database import plain_connection
from intake.store.models import (
    Account,
    Case,
    Contact,
    HeldMessage,
    InboundMessage,
    OutboundMessage,
    account_contacts,
)
from parsers.message import bare_message_id
from routing.contacts import AccountView, ContactView
from routing.decide import RecentCases, Views
from routing.schema import ContactType
from routing.states import CaseStatus, HeldStatus, Reply
from routing.threads import CaseView

_AUTOMATIC_KINDS = tuple(kind.value for kind in Reply if kind.automatic)


def _keep(session: Session, *loaded: object) -> None:
    """Hold what a look-up loaded for as long as the session lasts (the message's transaction).

    The session's identity map holds objects weakly: a case or an account read
    for a view would be gone once the view is made, and the act stage would
    read it again. Held in `Session.info`, they are found there without a query.
    """
    session.info.setdefault("intake.looked_up", []).extend(loaded)


def views_over(session: Session) -> Views:
    return Views(DatabaseDirectory(session), DatabaseThreads(session), DatabaseReplyLog(session),
                 DatabaseCaseLog(session), DatabaseNotices(session))


def to_contact_view(contact: Contact, accounts: tuple[AccountView, ...] | None = None) -> ContactView:
    """The view of a contact; ``accounts`` when the caller read them already (else they are loaded)."""
    if accounts is None:
        accounts = tuple(AccountView(a.id, a.name) for a in contact.accounts)
    return ContactView(
        id=contact.id, email=contact.email, first_name=contact.first_name, last_name=contact.last_name,
        contact_type=ContactType(contact.contact_type), active=contact.active,
        schema_bootcamp=contact.schema_bootcamp, accounts=accounts)


# The look-ups of every message are built once, here, not per call (building one costs more than running it).

# One statement, each join on an index: the contact and its accounts, which are then in the
# session too, so the case made for one of them finds its account without another query.
_CONTACT_BY_EMAIL = (select(Contact, Account).outerjoin(account_contacts, account_contacts.c.contact_id == Contact.id)
                     .outerjoin(Account, Account.id == account_contacts.c.account_id)
                     .where(Contact.email == bindparam("email")).order_by(Account.name))

# The case of a Message-ID we received (first) or sent, in one statement over both indexes.
_CASE_OF_MESSAGE_ID = union_all(
    select(InboundMessage.case_number, literal(0).label("source")).where(
        InboundMessage.message_id == bindparam("wanted"), InboundMessage.case_number.is_not(None)),
    select(OutboundMessage.case_number, literal(1).label("source")).where(
        OutboundMessage.message_id == bindparam("wanted"), OutboundMessage.case_number.is_not(None)),
).order_by("source").limit(1)

# Outbox rows of these kinds, since then, answering mail that came from an address.
_ANSWERS_SINCE = (select(func.count()).select_from(OutboundMessage)
                  .join(InboundMessage, OutboundMessage.inbound_message_id == InboundMessage.id)
                  .where(InboundMessage.sender == bindparam("address"), OutboundMessage.created >= bindparam("since"),
                         OutboundMessage.kind.in_(bindparam("kinds", expanding=True))))


# One statement for both sides, each part a range of its own (column, created) index: how many
# cases since then, and when the limit-th newest was made. The database counts; no rows come back,
# however many cases the window holds.
def _recent(column: Any, key: str, offset: str) -> tuple[Any, Any]:
    window = and_(column == bindparam(key), Case.created >= bindparam("since"))
    count = select(func.count()).select_from(Case).where(window).scalar_subquery()
    limit_th = (select(Case.created).where(window).order_by(Case.created.desc())
                .limit(1).offset(bindparam(offset)).scalar_subquery())
    return count, limit_th


_SENDER_COUNT, _SENDER_LIMIT_TH = _recent(Case.submitted_by_id, "contact_id", "sender_offset")
_ACCOUNT_COUNT, _ACCOUNT_LIMIT_TH = _recent(Case.account_id, "account_id", "account_offset")
_CASES_CREATED_SINCE = select(_SENDER_COUNT.label("sender_count"), _SENDER_LIMIT_TH.label("sender_limit_th"),
                              _ACCOUNT_COUNT.label("account_count"), _ACCOUNT_LIMIT_TH.label("account_limit_th"))

_HELD_FROM = (select(HeldMessage.until).where(HeldMessage.sender == bindparam("address"),
                                              HeldMessage.status == HeldStatus.HELD.value)
              .order_by(HeldMessage.until))


class DatabaseDirectory:
    """`routing.contacts.Directory` over an open session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def contact_by_email(self, email: str) -> ContactView | None:
        rows = self._session.execute(_CONTACT_BY_EMAIL, {"email": email.lower()}).all()
        if not rows:
            return None
        _keep(self._session, *(entity for row in rows for entity in row if entity is not None))
        accounts = tuple(AccountView(account.id, account.name) for _, account in rows if account is not None)
        return to_contact_view(rows[0][0], accounts)

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
        # Account and contact joined in: one statement, and the case stays in the session for the act stage.
        case = self._session.get(Case, number, options=[joinedload(Case.account), joinedload(Case.contact)])
        if case is None:
            return None
        _keep(self._session, case)
        return to_case_view(case)

    def case_of_message_id(self, message_id: str) -> CaseView | None:
        """The case of a Message-ID we received (first) or sent."""
        number = plain_connection(self._session).execute(_CASE_OF_MESSAGE_ID,
                                                         {"wanted": bare_message_id(message_id)}).scalar()
        return self.case(number) if number is not None else None


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
        sent = plain_connection(self._session).scalar(_ANSWERS_SINCE,
                                                      {"address": address, "since": since, "kinds": list(kinds)})
        return sent or 0


class DatabaseCaseLog:
    """`routing.decide.CaseLog` over an open session: recent new cases, and mail waiting for the rate."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def cases_created_since(self, contact_id: int, account_id: int, since: dt.datetime, sender_limit: int,
                            account_limit: int) -> tuple[RecentCases, RecentCases]:
        row = plain_connection(self._session).execute(
            _CASES_CREATED_SINCE, {"contact_id": contact_id, "account_id": account_id, "since": since,
                                   "sender_offset": sender_limit - 1, "account_offset": account_limit - 1}).one()
        return (RecentCases(row.sender_count, row.sender_limit_th),
                RecentCases(row.account_count, row.account_limit_th))

    def held_from(self, address: str) -> tuple[dt.datetime, ...]:
        return tuple(plain_connection(self._session).execute(_HELD_FROM, {"address": address}).scalars())


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
    def cases_created_since(self, contact_id: int, account_id: int, since: dt.datetime, sender_limit: int,
                            account_limit: int) -> tuple[RecentCases, RecentCases]:
        return RecentCases(0, None), RecentCases(0, None)

    def held_from(self, address: str) -> tuple[dt.datetime, ...]:
        return ()


EMPTY_VIEWS = Views(_NoContacts(), _NoCases(), _NoReplies(), _NoCaseLog())
