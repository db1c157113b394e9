"""Small pure rules about a message. Each answers one question and says why, in words a person can read.

Is it an auto-reply? Is the sender forged? Is it too large? Which priority
does the case get? The checks of a case's fields are in `routing.checks`.
"""
from __future__ import annotations

from dataclasses import dataclass

import authres

from parsers.message import ParsedMessage
from routing.problems import Problem
from routing.schema import DEFAULT_PRIORITY, CaseTypeSpec

OUTAGE_ONLY_PRIORITY = "Critical"
PRIORITY_INSTEAD_OF_CRITICAL = "High"



def auto_reply_reason(message: ParsedMessage, own_addresses: frozenset[str], automatic: str | None) -> str | None:
    """Why this message must never be answered (our own mail, or a program's), or None.

    ``automatic`` is the parse stage's reading of whether a program sent it
    (`parsers.robots.automatic_reason`); our own addresses are policy, so they are read here.
    """
    sender = message.from_address or ""
    if sender in own_addresses:
        return f"sent from our own address {sender}"
    looped = [value for value in message.header_all("X-Loop") if value.strip().lower() in own_addresses]
    if looped:
        return f"our own mail came back (X-Loop: {looped[0].strip()})"
    return automatic


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


# --- priority -------------------------------------------------------------------


@dataclass(frozen=True)
class PriorityDecision:
    priority: str
    note: str | None


def decide_priority(spec: CaseTypeSpec, written: str | None) -> PriorityDecision:
    """Medium by default; Critical is limited to outages, elsewhere the case is made at High."""
    if not written:
        return PriorityDecision(DEFAULT_PRIORITY, None)
    if written == OUTAGE_ONLY_PRIORITY and not spec.allows_critical:
        return PriorityDecision(
            PRIORITY_INSTEAD_OF_CRITICAL,
            f"Priority Critical is reserved for Report an Outage cases (Campus not operational), so this "
            f"{spec.case_type.value} case was made at {PRIORITY_INSTEAD_OF_CRITICAL}. If Campus is down for "
            f"all or most users, please report an outage instead.")
    return PriorityDecision(written, None)
