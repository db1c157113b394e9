"""Routing reaches a person: a department's address is told of its new cases and of contact replies.

Part of the act stage. A case is routed to a department (`routing.schema`,
`[departments]`); when the department has an address in config.toml, the
handler that made the case, or added a contact's reply to it, queues a short
notice here, in the same transaction, on the case's thread. Notices go only
to department addresses, never to the contacts of the case; they are
auto-generated mail (RFC 3834), so nothing answers them automatically.
"""
from __future__ import annotations

import enum

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.config import Config
from intake.mailout.compose import CaseThread, compose_case_mail, display_value
from intake.mailout.outbox import case_thread, enqueue
from intake.store.models import Case, Comment, Contact
from routing.schema import CaseType
from routing.states import Reply

__all__ = ["DepartmentEvent", "tell_department"]


class DepartmentEvent(enum.StrEnum):
    NEW_CASE = "new_case"
    CONTACT_REPLY = "contact_reply"


def tell_department(session: Session, case: Case, event: DepartmentEvent, config: Config, *,
                    started_by: str | None = None, comment: Comment | None = None) -> str | None:
    """Queue the notice of `event` to the address of the case's department.

    Returns a reason for the message's record when the notice could not be
    sent; None when it was queued (the outbox shows it) or the department has
    no address.

    ``started_by`` is the Message-ID of the contact's message that made the
    case, so that the first notice is already on the case's thread. An
    address that is a contact's is not written to: notices never go to
    contacts, whatever the configuration says.
    """
    address = config.department_address(case.department)
    if address is None:
        return None
    if session.scalar(select(Contact.id).where(Contact.email == address)) is not None:
        return (f"no notice to {case.department}: its address {address} is a contact's, and department "
                f"notices never go to contacts")
    recipients = ((case.department, address),)
    message = compose_case_mail(Reply.DEPARTMENT_NOTICE, _thread(case, started_by), recipients,
                                _values(case, event, comment, config), config)
    enqueue(session, message, Reply.DEPARTMENT_NOTICE, [address], case=case)
    return None


def _thread(case: Case, started_by: str | None) -> CaseThread:
    thread = case_thread(case)
    if thread.in_reply_to is None and started_by:
        return CaseThread(thread.number, thread.subject, started_by, (started_by,))
    return thread


def _values(case: Case, event: DepartmentEvent, comment: Comment | None, config: Config) -> dict[str, object]:
    spec = config.case_types.spec_for(CaseType(case.case_type))
    fields = [(f.label, display_value(f, case.fields.get(f.label), (case.fields_as_written or {}).get(f.label)))
              for f in spec.fields if case.fields.get(f.label) not in (None, "", [])]
    submitted_by = case.submitted_by.full_name if case.submitted_by_id != case.contact_id else ""
    return {"event": event.value, "department": case.department, "case_type": case.case_type,
            "priority": case.priority, "status": case.status, "account": case.account.name,
            "contact": case.contact.full_name, "contact_email": case.contact.email, "submitted_by": submitted_by,
            "description": case.description, "fields": fields,
            "author": comment.author if comment is not None else "",
            "body": comment.body if comment is not None else "",
            "attachments": [a.filename for a in case.attachments]}
