"""Who may file what: the sender's standing, the account and the contact of a case.

Works on read-only views of the contact registry (`Directory`), so the rules
are pure and the same in a dry run as in the worker.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rapidfuzz import fuzz, process

from routing.schema import CaseTypeSpec, ContactType


@dataclass(frozen=True)
class AccountView:
    id: int
    name: str


@dataclass(frozen=True)
class ContactView:
    id: int
    email: str
    first_name: str
    last_name: str
    contact_type: ContactType
    active: bool
    schema_bootcamp: dt.date | None
    accounts: tuple[AccountView, ...]

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email

    def belongs_to(self, account: AccountView) -> bool:
        return any(a.id == account.id for a in self.accounts)


class Directory(Protocol):
    """Read-only look-ups of the contact registry."""

    def contact_by_email(self, email: str) -> ContactView | None: ...

    def contacts_of(self, account: AccountView) -> Sequence[ContactView]: ...


@dataclass(frozen=True)
class Refusal:
    reason: str


HOW_TO_BECOME_AUTHORIZED = (
    "Support cases are accepted from the Authorized and Technical contacts of a district. "
    "To become one, ask an Authorized contact of your district to send a Modify Support Contacts "
    "case that adds you (Request Type: Add)."
)


def sender_standing(sender: ContactView | None, address: str) -> Refusal | None:
    """Refuse unknown, inactive and Read Only senders; None when they may file cases."""
    if sender is None:
        return Refusal(f"{address} is not a support contact of any district. {HOW_TO_BECOME_AUTHORIZED}")
    if not sender.active:
        return Refusal(f"{address} is no longer an active support contact. {HOW_TO_BECOME_AUTHORIZED}")
    if sender.contact_type is ContactType.READ_ONLY:
        return Refusal(f"{address} is a Read Only contact, who may read cases but not submit them. "
                       f"{HOW_TO_BECOME_AUTHORIZED}")
    return None


def may_file(sender: ContactView, spec: CaseTypeSpec) -> Refusal | None:
    if sender.contact_type in spec.filed_by:
        return None
    allowed = " or ".join(t.value for t in sorted(spec.filed_by, key=lambda t: t.value))
    why = " because it may be billable" if spec.may_be_billable else ""
    return Refusal(f"{sender.contact_type.value} contacts may not submit {spec.case_type.value} cases{why}; "
                   f"only {allowed} contacts may. Please ask an Authorized contact of your district to send it.")


@dataclass(frozen=True)
class Choice:
    """A resolved value, or a problem a person can fix, with the options to pick from."""

    value: AccountView | ContactView | None
    problem: str | None = None


def choose_account(sender: ContactView, written: str | None) -> Choice:
    """The account a case is for: the only one, or the one the `Account:` field names."""
    accounts = sender.accounts
    names = ", ".join(a.name for a in accounts)
    if not written:
        if len(accounts) == 1:
            return Choice(accounts[0])
        return Choice(None, f"You are a contact of several districts ({names}); "
                            f"add an 'Account:' line naming the one this case is for.")
    found = _best(written, {a.name: a for a in accounts})
    if found is None:
        return Choice(None, f"'{written}' is not one of your districts. Use one of: {names}.")
    return Choice(found)


def choose_contact(sender: ContactView, account: AccountView, written: str | None,
                   directory: Directory) -> Choice:
    """The case's contact: the sender, or another active contact of the account named by name or email."""
    if not written or written.strip().lower() in (sender.email, sender.full_name.lower()):
        return Choice(sender)
    colleagues = [c for c in directory.contacts_of(account) if c.active]
    by_email = {c.email: c for c in colleagues}
    text = written.strip()
    if "@" in text:
        address = text.strip("<>").lower()
        if address in by_email:
            return Choice(by_email[address])
    else:
        found = _best(text, {c.full_name: c for c in colleagues})
        if found is not None:
            return Choice(found)
    names = ", ".join(f"{c.full_name} <{c.email}>" for c in colleagues)
    return Choice(None, f"'{written}' is not an active contact of {account.name}. "
                        f"You may submit on behalf of: {names}.")


def _best(text: str, options: dict[str, AccountView | ContactView]) -> AccountView | ContactView | None:
    """Forgiving match of a written name (case, spacing, a suffix like '(TESTING)', a typo)."""
    if not options:
        return None
    wanted = text.strip().lower()
    for name, value in options.items():
        if name.lower() == wanted:
            return value
    match = process.extractOne(wanted, {n: n.lower() for n in options}, scorer=fuzz.token_set_ratio,
                               score_cutoff=88)
    return options[match[2]] if match else None
