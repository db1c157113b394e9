"""Mail from mail systems: delivery reports, bounces and the signs of a mail daemon. Part of the parse stage.

One detector for the whole flow. `mail_system_reason` says why a message was
sent by a mail system rather than a person (a delivery report, the null
sender, a MAILER-DAEMON or postmaster address); routing never answers such
mail. `read_report` goes further for those messages: the recipients a bounce
reports as failed or delayed, with their diagnostics, and the Message-IDs of
the returned original, so the act stage can count the bounce against the
contact it was about.

flufl.bounce (GNU Mailman's bounce detectors) finds the failed recipients, in
RFC 3464 reports and in the non-standard forms of qmail, Exchange, Yahoo and
others, and tells delayed from failed. The per-recipient Status and
Diagnostic-Code of an RFC 3464 report are read here, for the decision log.
Heuristic detectors also match people's own words ("did not reach the
following recipient"), and a customer who forwards a bounce to support has a
case, so only mail shaped like a mail system's is scanned. Pure functions.
"""
from __future__ import annotations

import email.message
import re
from dataclasses import dataclass
from email.iterators import typed_subpart_iterator
from email.parser import HeaderParser

from flufl.bounce import all_failures

from parsers.message import ParsedMessage

__all__ = ["DeliveryReport", "Failure", "mail_system_reason", "read_report"]

_DAEMON_LOCAL_PARTS = ("mailer-daemon", "postmaster", "mail-daemon")
_MSGID = re.compile(r"<([^<>\s]+)>")
_MESSAGE_ID_LINE = re.compile(r"^\s*Message-ID:\s*<([^<>\s]+)>", re.IGNORECASE | re.MULTILINE)
_ENHANCED_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
# The code prefixes of the second and later lines of a multi-line SMTP reply
# ("550-5.1.1 ..."), which a Diagnostic-Code quotes verbatim.
_MULTILINE_REPLY = re.compile(r"^(\d{3})-")
_CONTINUATION = re.compile(r"(?<=\s)\d{3}[ -]\d\.\d{1,3}\.\d{1,3}\s+")
_MAX_DIAGNOSTIC = 300

# RFC 3463 meanings of the codes that come up most, for reports that give no text.
_STATUS_TEXT = {
    "5.1.1": "bad destination mailbox address (user unknown)",
    "5.1.2": "bad destination system address (no such domain)",
    "5.1.10": "recipient not found",
    "5.2.1": "mailbox disabled",
    "5.2.2": "mailbox full",
    "5.4.4": "unable to route",
    "5.7.1": "delivery not authorized, message refused",
    "4.2.2": "mailbox full",
    "4.4.1": "no answer from host",
    "4.4.7": "delivery time expired",
}


@dataclass(frozen=True)
class Failure:
    """One recipient a bounce reports, and what it says about them."""

    recipient: str
    permanent: bool
    diagnostic: str


@dataclass(frozen=True)
class DeliveryReport:
    """What a mail system's report says: who failed, and which of our messages it returns."""

    failures: tuple[Failure, ...]
    returned_message_ids: tuple[str, ...]
    is_delivery_status: bool  # an RFC 3464 report (message/delivery-status), even one naming nobody


def mail_system_reason(message: ParsedMessage, structure: email.message.Message,
                       envelope_sender: str | None = None) -> str | None:
    """Why this message comes from a mail system rather than a person, or None.

    `envelope_sender` is the SMTP MAIL FROM it arrived with ("" for the null
    sender <>), when it came by SMTP/LMTP: delivery adds no Return-Path header.
    """
    content_type = (message.header("Content-Type") or "").lower()
    if "multipart/report" in content_type or _delivery_status_parts(structure):
        return "delivery status notification (multipart/report)"
    if envelope_sender == "":
        return "bounce or notification (null envelope sender <>)"
    if message.return_path == "":
        return "bounce or notification (empty return path)"
    sender = message.from_address or ""
    local = sender.partition("@")[0]
    if local in _DAEMON_LOCAL_PARTS or local.startswith("microsoftexchange") \
            or (message.return_path or "").startswith("mailer-daemon"):
        return f"bounce from a mail server ({sender or message.return_path})"
    if message.header("X-Failed-Recipients") is not None:
        return "bounce from a mail server (X-Failed-Recipients present)"
    return None


def read_report(message: ParsedMessage, structure: email.message.Message,
                envelope_sender: str | None = None) -> DeliveryReport | None:
    """The report of a message shaped like a mail system's; None for anything else."""
    if mail_system_reason(message, structure, envelope_sender) is None:
        return None
    failures = tuple(failures_in(structure))
    is_status = bool(_delivery_status_parts(structure))
    if not failures and not is_status:
        return None
    returned = returned_message_ids(structure) + [m for m in (message.in_reply_to, *message.references) if m]
    return DeliveryReport(failures, tuple(returned), is_status)


def failures_in(report: email.message.Message) -> list[Failure]:
    """The recipients the bounce reports as failed or delayed, with the diagnostic for each."""
    try:
        temporary, permanent = all_failures(report)
    except Exception:  # a detector's own bug on broken mail (Yale's on a missing From): no recipients read
        temporary = permanent = frozenset()
    details = _delivery_status_details(report)
    failures = []
    for permanent_failure, addresses in ((True, permanent), (False, temporary - permanent)):
        for address in sorted(a.decode("ascii").lower() for a in addresses):
            diagnostic = details.get(address) or _diagnostic_from_text(report, permanent_failure)
            failures.append(Failure(address, permanent_failure, diagnostic))
    return failures


def returned_message_ids(report: email.message.Message) -> list[str]:
    """Message-IDs of the returned original: its attached message or headers, else quoted in the text."""
    found: list[str] = []
    for part in report.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            found += [m for returned in _subparts(part) for m in _message_ids(str(returned.get("Message-ID", "")))]
        elif content_type == "text/rfc822-headers":
            found += _message_ids(str(HeaderParser().parsestr(_text_of(part)).get("Message-ID", "")))
    if found:
        return found
    own = _message_ids(str(report.get("Message-ID", "")))
    quoted = [m for part in typed_subpart_iterator(report, "text") for m in _MESSAGE_ID_LINE.findall(_text_of(part))]
    return [m for m in quoted if m not in own]


def _delivery_status_parts(report: email.message.Message) -> list[email.message.Message]:
    return [part for part in report.walk() if part.get_content_type() == "message/delivery-status"]


def _delivery_status_details(report: email.message.Message) -> dict[str, str]:
    """Per-recipient "status diagnostic" from every message/delivery-status part, by address."""
    details: dict[str, str] = {}
    for part in _delivery_status_parts(report):
        for block in _subparts(part):
            text = _status_text(str(block.get("Status", "")).strip(), str(block.get("Diagnostic-Code", "")))
            for header in ("Original-Recipient", "Final-Recipient", "X-Actual-Recipient"):
                address = _typed_address(str(block.get(header, "")))
                if address and text:
                    details.setdefault(address, text)
    return details


def _typed_address(value: str) -> str:
    """`rfc822; kelly@example.org` → `kelly@example.org`."""
    address = value.rpartition(";")[2].strip().strip("<>").strip()
    return address.lower() if "@" in address else ""


def _status_text(status: str, diagnostic_code: str) -> str:
    diagnostic = " ".join(diagnostic_code.partition(";")[2].split()) if ";" in diagnostic_code \
        else " ".join(diagnostic_code.split())
    if not diagnostic:
        return f"{status} {_STATUS_TEXT.get(status, '')}".strip()
    if _MULTILINE_REPLY.match(diagnostic):
        diagnostic = " ".join(_CONTINUATION.sub(" ", _MULTILINE_REPLY.sub(r"\1 ", diagnostic)).split())
    if status and status not in diagnostic:
        diagnostic = f"{status} {diagnostic}"
    return _shorten(diagnostic)


def _diagnostic_from_text(report: email.message.Message, permanent: bool) -> str:
    """For non-standard bounces: the first line of the explanation that carries a status code."""
    for part in typed_subpart_iterator(report, "text", "plain"):
        for line in _text_of(part).splitlines():
            if _ENHANCED_STATUS.search(line):
                return _shorten(" ".join(line.split()))
    return "permanent failure (no diagnostic given)" if permanent else "delivery delayed (no diagnostic given)"


def _subparts(part: email.message.Message) -> list[email.message.Message]:
    """The parts inside a multipart, a message/rfc822 or a message/delivery-status (its header blocks)."""
    payload = part.get_payload() if part.is_multipart() else []
    return [item for item in payload if isinstance(item, email.message.Message)]


def _text_of(part: email.message.Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return str(part.get_payload())


def _message_ids(value: str) -> list[str]:
    return [m.strip() for m in _MSGID.findall(value)]


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_DIAGNOSTIC else text[:_MAX_DIAGNOSTIC - 1] + "…"
