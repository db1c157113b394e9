"""Small pure rules. Each answers one question and says why, in words a person can read.

Message rules look at a parsed message (is it an auto-reply? too large?);
case rules look at the typed fields of a case type (required, dates, the
seed's rules on priority, data restore and SQL Server access).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Mapping

import authres

from parsers.message import ParsedMessage
from routing.contacts import ContactView
from routing.outcomes import Problem
from routing.schema import (DEFAULT_PRIORITY, SQL_SERVER_ACCESS, CaseType, CaseTypeSpec, Field, FieldKind)

DATA_RETENTION_DAYS = 30
OUTAGE_ONLY_PRIORITY = "Critical"
PRIORITY_INSTEAD_OF_CRITICAL = "High"

_BULK_PRECEDENCE = {"bulk", "junk", "list"}
_AUTO_REPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress")
_DAEMON_SENDERS = ("mailer-daemon", "postmaster")


def auto_reply_reason(message: ParsedMessage, own_addresses: frozenset[str]) -> str | None:
    """Why this message must never be answered (auto-reply, bounce, list, our own), or None."""
    sender = message.from_address or ""
    if sender in own_addresses:
        return f"sent from our own address {sender}"
    looped = [value for value in message.header_all("X-Loop") if value.strip().lower() in own_addresses]
    if looped:
        return f"our own mail came back (X-Loop: {looped[0].strip()})"
    auto_submitted = (message.header("Auto-Submitted") or "no").strip().lower()
    if not auto_submitted.startswith("no"):
        return f"automatic message (Auto-Submitted: {auto_submitted})"
    precedence = (message.header("Precedence") or "").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return f"bulk or list mail (Precedence: {precedence})"
    if message.header("List-Id"):
        return "mailing-list mail (List-Id present)"
    for name in _AUTO_REPLY_HEADERS:
        if message.header(name):
            return f"automatic reply ({name} present)"
    content_type = (message.header("Content-Type") or "").lower()
    if "multipart/report" in content_type:
        return "delivery status notification (multipart/report)"
    if message.return_path == "":
        return "bounce or notification (empty return path)"
    if sender.split("@")[0] in _DAEMON_SENDERS or (message.return_path or "").lower().startswith("mailer-daemon"):
        return f"bounce from a mail server ({sender or message.return_path})"
    return None


def forged_sender_reason(message: ParsedMessage, trusted_authserv_ids: frozenset[str]) -> str | None:
    """Why the From address is not to be believed, by our own MTA's Authentication-Results; else None.

    Only headers added by a server we trust count: anyone can write an
    Authentication-Results header into the mail they send. A DMARC failure, or
    an SPF failure with no passing DKIM signature, marks the sender as forged.
    """
    for value in message.header_all("Authentication-Results"):
        try:
            header = authres.AuthenticationResultsHeader.parse("Authentication-Results: " + " ".join(value.split()))
        except Exception:  # a header we cannot read tells us nothing
            continue
        if str(header.authserv_id).lower() not in trusted_authserv_ids:
            continue
        results = {str(r.method).lower(): str(r.result).lower() for r in header.results}
        if results.get("dmarc") == "fail":
            return f"DMARC failed for the sender's domain ({header.authserv_id})"
        if results.get("spf") == "fail" and results.get("dkim") != "pass":
            return f"SPF failed and no DKIM signature passed ({header.authserv_id})"
    return None


def size_problem(size: int, limit: int) -> Problem | None:
    if size <= limit:
        return None
    return Problem(f"Your message is {_readable(size)}, larger than the {_readable(limit)} we accept. "
                   f"Please send it again with smaller attachments, or share large files by link.", refuse=True)


def _readable(size: int) -> str:
    megabytes = size / (1024 * 1024)
    if megabytes >= 1:
        return f"{megabytes:.1f} MB".replace(".0 MB", " MB")
    return f"{size / 1024:.0f} KB"


# --- case rules -------------------------------------------------------------


@dataclass(frozen=True)
class TypedFields:
    """The fields of one case, typed: label → value, and label → text as written."""

    values: Mapping[str, Any]
    written: Mapping[str, str]


def missing_required(spec: CaseTypeSpec, fields: TypedFields) -> list[Problem]:
    required = set(spec.required)
    for label, value, labels in spec.required_when:
        if fields.values.get(label) == value:
            required.update(labels)
    return [Problem(f"{label} is required for {spec.case_type.value} cases{_hint(spec.field(label))}.", label)
            for f in spec.all_fields if (label := f.label) in required and _empty(fields, label)]


def _empty(fields: TypedFields, label: str) -> bool:
    return fields.values.get(label) in (None, "", []) and not fields.written.get(label, "").strip()


def _hint(field: Field | None) -> str:
    return f" ({field.hint})" if field and field.hint else ""


def dates_in_future(spec: CaseTypeSpec, fields: TypedFields, today: dt.date) -> list[Problem]:
    return [Problem(f"{f.label} must be a date after today ({today:%m/%d/%Y}); "
                    f"'{fields.written[f.label]}' is not.", f.label)
            for f in spec.all_fields
            if f.kind is FieldKind.DATE and f.future_only
            and isinstance(fields.values.get(f.label), dt.date) and fields.values[f.label] <= today]


def data_restore_window(spec: CaseTypeSpec, fields: TypedFields, today: dt.date) -> list[Problem]:
    """Data is backed up nightly and kept for 30 days: a loss must fall inside that window."""
    if spec.case_type is not CaseType.DATA_RESTORE:
        return []
    lost = fields.values.get("Approximate Date of Loss")
    if not isinstance(lost, dt.date):
        return []
    if lost > today:
        return [Problem(f"Approximate Date of Loss ({lost:%m/%d/%Y}) is in the future.", "Approximate Date of Loss")]
    age = (today - lost).days
    if age > DATA_RETENTION_DAYS:
        oldest = today - dt.timedelta(days=DATA_RETENTION_DAYS)
        return [Problem(f"Data is retained for {DATA_RETENTION_DAYS} days, so data lost on {lost:%m/%d/%Y} "
                        f"({age} days ago) can no longer be restored; the oldest restorable date is "
                        f"{oldest:%m/%d/%Y}.", "Approximate Date of Loss", refuse=True)]
    return []


def sql_server_needs_bootcamp(spec: CaseTypeSpec, fields: TypedFields, contact: ContactView) -> list[Problem]:
    """Schema Bootcamp training is required for SQL Server access."""
    if spec.case_type is not CaseType.SERVER_ACCESS or fields.values.get("Request Type") != SQL_SERVER_ACCESS:
        return []
    if contact.schema_bootcamp is not None:
        return []
    return [Problem(f"SQL Server access requires Infinite Campus Schema Bootcamp training, and our records show "
                    f"{contact.full_name} has not completed it. Once the training is complete, send the request "
                    f"again; Server and SSRS access do not need it.", "Request Type", refuse=True)]


@dataclass(frozen=True)
class PriorityDecision:
    priority: str
    note: str | None


def decide_priority(spec: CaseTypeSpec, written: str | None) -> PriorityDecision:
    """Medium by default; Critical is limited to outages, elsewhere the case is made at High."""
    if not written:
        return PriorityDecision(DEFAULT_PRIORITY, None)
    if written == OUTAGE_ONLY_PRIORITY and spec.case_type is not CaseType.REPORT_AN_OUTAGE:
        return PriorityDecision(
            PRIORITY_INSTEAD_OF_CRITICAL,
            f"Priority Critical is reserved for Report an Outage cases (Campus not operational), so this "
            f"{spec.case_type.value} case was made at {PRIORITY_INSTEAD_OF_CRITICAL}. If Campus is down for "
            f"all or most users, please report an outage instead.")
    return PriorityDecision(written, None)
