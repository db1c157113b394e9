"""Which case a reply belongs to, and whether its sender may add to it.

A reply is matched, in this order, by its `In-Reply-To`/`References` against
the Message-IDs stored for a case, by the `[Case #N]` tag of its subject, and
by a plus address `support+N-TOKEN@…`. Our own Message-IDs and plus addresses
carry an HMAC of the case number, so a reference to case N cannot be made up
by someone who never received mail about it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from parsers.message import ParsedMessage
from parsers.subject import SubjectParts
from routing.contacts import ContactView

TOKEN_LENGTH = 12
_TOKEN = f"(?P<token>[0-9a-f]{{{TOKEN_LENGTH}}})"
_OUR_MESSAGE_ID = re.compile(r"^intake\.(?P<case>\d+)\." + _TOKEN + r"\.")
_PLUS_ADDRESS = re.compile(r"^(?P<local>[^+@]+)\+(?P<case>\d+)-" + _TOKEN + r"@(?P<domain>.+)$")


def thread_token(secret: str, case_number: int) -> str:
    digest = hmac.new(secret.encode(), f"case:{case_number}".encode(), hashlib.sha256).hexdigest()
    return digest[:TOKEN_LENGTH]


def case_message_id_prefix(secret: str, case_number: int) -> str:
    """The start of the local part of every Message-ID intake sends about a case."""
    return f"intake.{case_number}.{thread_token(secret, case_number)}."


def plus_address(support_address: str, secret: str, case_number: int) -> str:
    local, _, domain = support_address.partition("@")
    return f"{local}+{case_number}-{thread_token(secret, case_number)}@{domain}"


def _verified(secret: str, case: str, token: str) -> int | None:
    number = int(case)
    return number if hmac.compare_digest(thread_token(secret, number), token) else None


def case_from_our_message_id(message_id: str, secret: str) -> int | None:
    found = _OUR_MESSAGE_ID.match(message_id)
    return _verified(secret, found["case"], found["token"]) if found else None


def case_from_plus_address(address: str, support_addresses: Iterable[str], secret: str) -> int | None:
    found = _PLUS_ADDRESS.match(address.lower())
    if not found or f"{found['local']}@{found['domain']}" not in set(support_addresses):
        return None
    return _verified(secret, found["case"], found["token"])


@dataclass(frozen=True)
class CaseView:
    """What the decision needs to know of an existing case."""

    number: int
    subject: str
    case_type: str
    status: str
    account_id: int
    account_name: str
    contact_id: int
    contact_email: str
    submitted_by_id: int
    closed: dt.datetime | None


class Threads(Protocol):
    """Read-only look-ups of existing cases."""

    def case(self, number: int) -> CaseView | None: ...

    def case_of_message_id(self, message_id: str) -> CaseView | None: ...


@dataclass(frozen=True)
class ThreadMatch:
    case: CaseView
    how: str  # for the decision log


def match_thread(message: ParsedMessage, subject: SubjectParts, threads: Threads, secret: str,
                 support_addresses: Iterable[str], plus_addressing: bool) -> ThreadMatch | None:
    """The case this message replies to, or None for a new conversation. Forwarding is not replying."""
    if subject.is_forward:
        return None
    for reference in (message.in_reply_to, *reversed(message.references)):
        if not reference:
            continue
        number = case_from_our_message_id(reference, secret)
        case = threads.case(number) if number is not None else threads.case_of_message_id(reference)
        if case is not None:
            return ThreadMatch(case, f"replies to <{reference}> of case #{case.number}")
    tagged = subject.case_number
    if tagged is not None and (case := threads.case(tagged)) is not None:
        return ThreadMatch(case, f"subject carries [Case #{tagged}]")
    if plus_addressing:
        for address in message.to:
            number = case_from_plus_address(address, support_addresses, secret)
            if number is not None and (case := threads.case(number)) is not None:
                return ThreadMatch(case, f"sent to the case address {address}")
    return None


def may_comment(sender: ContactView | None, address: str, case: CaseView, staff: Iterable[str]) -> str | None:
    """None when the sender may add to the case; else the reason they may not."""
    if address in set(staff):
        return None
    if sender is None or not sender.active:
        return (f"{address} is not an active contact of the district of case #{case.number}, "
                f"so the reply was not added to it.")
    if sender.id in (case.contact_id, case.submitted_by_id) or any(a.id == case.account_id for a in sender.accounts):
        return None
    return (f"{address} is not a contact of the district of case #{case.number}, "
            f"so the reply was not added to it.")
