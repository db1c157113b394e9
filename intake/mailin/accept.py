"""The one way in: every edge (SMTP/LMTP, IMAP, files) hands a message to `accept`.

store raw (commit) is the first step of the flow. A message is accepted once
its raw bytes are committed, filed under its Message-ID (or the hash of its
bytes) so that a redelivery is recognised and never makes a second case. Only
then may the edge say so: SMTP answers 250, IMAP flags or moves the message.
"""
from __future__ import annotations

from collections.abc import Sequence

from intake.store.database import Arrival, Store, Stored, store_raw, store_raw_many
from parsers.headers import filing_headers

__all__ = ["Arrival", "Stored", "accept", "accept_many", "arrival"]


def accept(store: Store, raw: bytes, source: str, envelope_sender: str | None = None) -> Stored:
    """Commit `raw` as received from `source`, or find the earlier copy of the same message.

    `envelope_sender` is the SMTP/LMTP MAIL FROM ("" for the null sender <>); None for other ways in.
    """
    headers = filing_headers(raw)
    return store_raw(store, raw, message_id=headers.message_id, sender=headers.sender, subject=headers.subject,
                     source=source, envelope_sender=envelope_sender)


def arrival(raw: bytes, source: str, envelope_sender: str | None = None) -> Arrival:
    """A message as received, with the few headers it is filed under (one cheap read of its header section)."""
    headers = filing_headers(raw)
    return Arrival(raw, headers.message_id, headers.sender, headers.subject, source, envelope_sender)


def accept_many(store: Store, arrivals: Sequence[Arrival]) -> list[Stored]:
    """Commit several messages that arrived together in one transaction (group commit), in order."""
    return store_raw_many(store, arrivals)
