"""Which notice a reply answers, and whose unsubscribe request a message is: HMAC-carrying tokens.

Notice mail carries Message-IDs `intake-notice.N.TOKEN.STEP.CONTACT@domain`
and maintenance mail a List-Unsubscribe address `support+unsubscribe-C-TOKEN@…`;
each token is an HMAC keyed by the conversations secret, so neither can be
made up by someone who never received the mail.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

__all__ = ["contact_from_unsubscribe_address", "notice_from_message_id", "notice_message_id", "notice_token",
           "unsubscribe_address"]

TOKEN_LENGTH = 12
_TOKEN = f"(?P<token>[0-9a-f]{{{TOKEN_LENGTH}}})"
_NOTICE_MESSAGE_ID = re.compile(r"^<?intake-notice\.(?P<notice>\d+)\." + _TOKEN + r"\.")
_UNSUBSCRIBE = re.compile(r"^(?P<local>[^+@]+)\+unsubscribe-(?P<contact>\d+)-" + _TOKEN + r"@(?P<domain>.+)$")


def _token(secret: str, what: str) -> str:
    return hmac.new(secret.encode(), what.encode(), hashlib.sha256).hexdigest()[:TOKEN_LENGTH]


def notice_token(secret: str, notice_id: int) -> str:
    return _token(secret, f"notice:{notice_id}")


def notice_message_id(secret: str, notice_id: int, step_id: int, contact_id: int, domain: str) -> str:
    """The Message-ID (without brackets) of one step of a notice as mailed to one contact."""
    return f"intake-notice.{notice_id}.{notice_token(secret, notice_id)}.{step_id}.{contact_id}@{domain}"


def notice_from_message_id(message_id: str, secret: str) -> int | None:
    found = _NOTICE_MESSAGE_ID.match(message_id.strip())
    if not found:
        return None
    number = int(found["notice"])
    return number if hmac.compare_digest(notice_token(secret, number), found["token"]) else None


def unsubscribe_address(support_address: str, secret: str, contact_id: int) -> str:
    local, _, domain = support_address.partition("@")
    return f"{local}+unsubscribe-{contact_id}-{_token(secret, f'unsubscribe:{contact_id}')}@{domain}"


def contact_from_unsubscribe_address(address: str, support_addresses: Iterable[str], secret: str) -> int | None:
    found = _UNSUBSCRIBE.match(address.strip().lower())
    if not found or f"{found['local']}@{found['domain']}" not in set(support_addresses):
        return None
    contact = int(found["contact"])
    return contact if hmac.compare_digest(_token(secret, f"unsubscribe:{contact}"), found["token"]) else None
