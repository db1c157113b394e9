"""The contact registry as the decision sees it: read-only views over the database."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.models import Account, Contact
from routing.contacts import AccountView, ContactView
from routing.schema import ContactType


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
