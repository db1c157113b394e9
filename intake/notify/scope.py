"""Which contacts a notice reaches: pure rules over plain values, and the one query that feeds them.

A contact is in scope when they are active, of a type that gets notices
(Authorized and Technical; Read Only too when configured), not suspended for
bouncing, one of their accounts is in the notice's accounts (or the notice is
for every account), and, when the notice names areas of responsibility, one of
their areas is named; a contact with no areas recorded gets every notice of
their account. Maintenance mail also skips contacts who unsubscribed from it.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.store.models import Account, Contact, account_contacts
from intake.store.notices import NoticeOptOut
from routing.schema import ContactType

__all__ = ["AREAS", "Audience", "ContactFacts", "Scope", "contacts_in_scope", "in_scope", "load_contact_facts"]

# The seed's areas of responsibility.
AREAS = ("SIS", "Food Service", "Human Resources", "Finance", "Online Payments", "Voice Messenger", "State Edition")
NOTIFIED_TYPES = frozenset({ContactType.AUTHORIZED.value, ContactType.TECHNICAL.value})


@dataclass(frozen=True)
class Scope:
    """What a notice covers: account names (empty: every account) and areas (empty: every area)."""

    accounts: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()


@dataclass(frozen=True)
class Audience:
    """Who, beyond the scope, gets mail: Read Only contacts when configured; not the unsubscribed."""

    include_read_only: bool = False
    maintenance: bool = False  # maintenance mail honours unsubscribing; incident mail does not


@dataclass(frozen=True)
class ContactFacts:
    """What the scope rules need to know of one contact."""

    id: int
    email: str
    name: str
    contact_type: str
    active: bool
    bouncing: bool
    areas: tuple[str, ...]
    accounts: tuple[str, ...]
    unsubscribed: bool = False


def in_scope(contact: ContactFacts, scope: Scope, audience: Audience) -> bool:
    """The one rule: is this contact mailed this notice?"""
    return (contact.active and not contact.bouncing and _type_notified(contact, audience)
            and not (audience.maintenance and contact.unsubscribed)
            and _account_in_scope(contact, scope) and _area_in_scope(contact, scope))


def _type_notified(contact: ContactFacts, audience: Audience) -> bool:
    return contact.contact_type in NOTIFIED_TYPES or (
        audience.include_read_only and contact.contact_type == ContactType.READ_ONLY.value)


def _account_in_scope(contact: ContactFacts, scope: Scope) -> bool:
    if not scope.accounts:
        return bool(contact.accounts)
    wanted = {name.casefold() for name in scope.accounts}
    return any(name.casefold() in wanted for name in contact.accounts)


def _area_in_scope(contact: ContactFacts, scope: Scope) -> bool:
    if not scope.areas or not contact.areas:
        return True
    wanted = {area.casefold() for area in scope.areas}
    return any(area.casefold() in wanted for area in contact.areas)


def contacts_in_scope(contacts: Iterable[ContactFacts], scope: Scope, audience: Audience) -> list[ContactFacts]:
    return [contact for contact in contacts if in_scope(contact, scope, audience)]


def load_contact_facts(session: Session) -> list[ContactFacts]:
    """Every contact with their account names and opt-out, in two queries (fast for tens of thousands)."""
    accounts: dict[int, list[str]] = {}
    for contact_id, name in session.execute(select(account_contacts.c.contact_id, Account.name)
                                            .join(Account, Account.id == account_contacts.c.account_id)):
        accounts.setdefault(contact_id, []).append(name)
    opted_out = set(session.scalars(select(NoticeOptOut.contact_id)))
    rows = session.execute(select(Contact.id, Contact.email, Contact.first_name, Contact.last_name,
                                  Contact.contact_type, Contact.active, Contact.bouncing, Contact.areas)
                           .order_by(Contact.id))
    return [ContactFacts(id=row.id, email=row.email, name=f"{row.first_name} {row.last_name}".strip() or row.email,
                         contact_type=row.contact_type, active=row.active, bouncing=row.bouncing,
                         areas=tuple(row.areas or ()), accounts=tuple(sorted(accounts.get(row.id, ()))),
                         unsubscribed=row.id in opted_out) for row in rows]


def unknown_names(given: Sequence[str], known: Iterable[str]) -> list[str]:
    """The names in `given` that match none of `known` (case aside)."""
    folded = {name.casefold() for name in known}
    return [name for name in given if name.casefold() not in folded]
