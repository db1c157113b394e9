"""The contact registry and the case threads as the decision sees them: read-only views over the database."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.store.models import Account, Case, Contact, InboundMessage, OutboundMessage
from routing.contacts import AccountView, ContactView
from routing.schema import ContactType
from routing.threads import CaseView


def contact_view(contact: Contact) -> ContactView:
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
        return contact_view(contact) if contact else None

    def contacts_of(self, account: AccountView) -> list[ContactView]:
        row = self._session.get(Account, account.id)
        return [contact_view(c) for c in row.contacts] if row else []


def case_view(case: Case) -> CaseView:
    return CaseView(number=case.number, subject=case.subject, case_type=case.case_type, status=case.status,
                    account_id=case.account_id, account_name=case.account.name, contact_id=case.contact_id,
                    contact_email=case.contact.email, submitted_by_id=case.submitted_by_id, closed=case.closed)


class DatabaseThreads:
    """`routing.threads.Threads` over an open session: every Message-ID stored for a case finds it."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def case(self, number: int) -> CaseView | None:
        case = self._session.get(Case, number)
        return case_view(case) if case else None

    def case_of_message_id(self, message_id: str) -> CaseView | None:
        wanted = message_id.strip().strip("<>")
        for model in (InboundMessage, OutboundMessage):
            number = self._session.scalars(select(model.case_number).where(
                model.message_id == wanted, model.case_number.is_not(None)).limit(1)).first()
            if number is not None:
                return self.case(number)
        return None
