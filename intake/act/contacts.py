"""An approved Modify Support Contacts case, applied to the contact registry.

A staff action (`intake approve N`): the case's Request Type says what to do
(`ContactRequest`), and the fields whose schema entry names a
`contact_attribute` say what to set on the contact. It runs in the caller's
transaction, records who approved, resolves the case, and tells the
requester and every contact added or removed.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.act.cases import CaseActionError, add_comment, notify_case
from intake.config import Config
from intake.store.models import Account, Case, Contact, utcnow
from routing.schema import (
    CONTACT_EMAIL,
    CONTACT_FIRST_NAME,
    CONTACT_LAST_NAME,
    CONTACT_REPLACEMENT_NAME,
    CONTACT_REQUEST_TYPE,
    CONTACT_TYPE,
    CaseType,
    ContactRequest,
    ContactType,
    spec_for,
)
from routing.states import CaseStatus, Reply

__all__ = ["approve_contact_change"]

Told = list[tuple[Contact, str]]  # who else to tell, and what
Change = Callable[[Session, Case, Mapping[str, object]], tuple[list[str], Told]]


def approve_contact_change(session: Session, case: Case, approved_by: str, config: Config) -> list[str]:
    """Apply an approved Modify Support Contacts case to the registry; returns what changed."""
    if not spec_for(CaseType(case.case_type)).changes_contacts:
        raise CaseActionError(f"case #{case.number} is {case.case_type}; only cases that change support contacts "
                              f"are approved")
    if case.approved is not None:
        raise CaseActionError(f"case #{case.number} was already approved by {case.approved_by}")
    fields = case.fields
    request = fields.get(CONTACT_REQUEST_TYPE.label)
    try:
        apply = _CHANGES[ContactRequest(str(request))]
    except ValueError:
        raise CaseActionError(f"case #{case.number} has no {CONTACT_REQUEST_TYPE.label} to apply") from None
    changes, told = apply(session, case, fields)
    summary = "Approved. " + " ".join(changes)
    case.approved_by, case.approved = approved_by, utcnow()
    # The request is done once applied: the case is resolved, and a reply from the contact reopens it.
    case.status, case.resolution, case.resolved = CaseStatus.RESOLVED.value, summary, case.approved
    add_comment(session, case, approved_by, summary, public=False)
    values = {"request_type": request, "approved_by": approved_by, "details": changes}
    notify_case(session, case, Reply.CONTACT_CHANGE,
                {**values, "message": "Your request to change your district's support contacts has been applied."},
                config)
    for contact, message in told:
        notify_case(session, case, Reply.CONTACT_CHANGE, {**values, "message": message}, config,
                    recipients=[(contact.full_name, contact.email)])
    return changes


def _contact_in(case: Case, written: str | None) -> Contact:
    wanted = (written or "").strip().lower()
    for contact in case.account.contacts:
        if wanted in (contact.email, contact.full_name.lower()):
            return contact
    raise CaseActionError(f"'{written}' is not a contact of {case.account.name}")


def _set_details(case: Case, contact: Contact, fields: Mapping[str, object]) -> None:
    """Every field of the case whose schema entry names a contact attribute, and has a value."""
    for field in spec_for(CaseType(case.case_type)).fields:
        if field.contact_attribute and fields.get(field.label):
            setattr(contact, field.contact_attribute, fields[field.label])


def _add_contact(session: Session, case: Case, fields: Mapping[str, object]) -> tuple[list[str], Told]:
    email = str(fields[CONTACT_EMAIL.label]).lower()
    contact = session.scalars(select(Contact).where(Contact.email == email)).first()
    if contact is None:
        contact = Contact(email=email, contact_type=str(fields.get(CONTACT_TYPE.label) or ContactType.READ_ONLY.value),
                          areas=[])
        session.add(contact)
    _set_details(case, contact, fields)
    contact.active = True
    if case.account not in contact.accounts:
        contact.accounts.append(case.account)
    session.flush()
    added = f"Added {contact.full_name} <{email}> as a {contact.contact_type} contact of {case.account.name}."
    return [added], [(contact, f"You have been added as a {contact.contact_type} support contact of "
                               f"{case.account.name}.")]


def _modify_contact(session: Session, case: Case, fields: Mapping[str, object]) -> tuple[list[str], Told]:
    contact = _contact_in(case, str(fields.get(CONTACT_EMAIL.label) or ""))
    _set_details(case, contact, fields)
    return [f"Updated {contact.full_name} <{contact.email}>."], []


def _detach(contact: Contact, account: Account) -> str:
    contact.accounts.remove(account)
    if not contact.accounts:
        contact.active = False
    return f"Removed {contact.full_name} <{contact.email}> from the contacts of {account.name}."


def _replace_contact(session: Session, case: Case, fields: Mapping[str, object]) -> tuple[list[str], Told]:
    old = _contact_in(case, str(fields.get(CONTACT_REPLACEMENT_NAME.label) or ""))
    added, told = _add_contact(session, case, fields)
    removed = _detach(old, case.account)
    newcomer = f"{fields.get(CONTACT_FIRST_NAME.label)} {fields.get(CONTACT_LAST_NAME.label)}"
    return added + [removed], told + [(old, f"You are no longer a support contact of {case.account.name}; "
                                            f"{newcomer} replaces you.")]


def _remove_contact(session: Session, case: Case, fields: Mapping[str, object]) -> tuple[list[str], Told]:
    contact = _contact_in(case, str(fields.get(CONTACT_EMAIL.label) or ""))
    account = case.account
    return [_detach(contact, account)], [(contact, f"You are no longer a support contact of {account.name}.")]


_CHANGES: dict[ContactRequest, Change] = {
    ContactRequest.ADD: _add_contact,
    ContactRequest.MODIFY: _modify_contact,
    ContactRequest.REPLACE: _replace_contact,
    ContactRequest.REMOVE: _remove_contact,
}
