"""Small pure rules about a message. Each answers one question and says why, in words a person can read.

Is it an auto-reply? Can we read it at all? Which priority
does the case get? The checks of a case's fields are in `routing.checks`.
"""
from __future__ import annotations

from dataclasses import dataclass

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


def encrypted_problem(encryption: str | None) -> Problem | None:
    """Encrypted mail cannot be read here; the answer says so and quotes nothing of it."""
    if encryption is None:
        return None
    return Problem(f"We cannot read encrypted mail. Your message arrived encrypted ({encryption}), so nobody "
                   f"here can read it; it has been kept, unopened. Please send it again without encryption. "
                   f"If it must hold something confidential, say so in a short unencrypted message and we will "
                   f"arrange a safe way to receive it.", refuse=True)


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
