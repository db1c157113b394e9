"""The one way in: every edge (SMTP/LMTP, IMAP, files) hands a message to `accept`.

store raw (commit) is the first step of the flow. A message is accepted once
its raw bytes are committed, filed under its Message-ID (or the hash of its
bytes) so that a redelivery is recognised and never makes a second case. Only
then may the edge say so: SMTP answers 250, IMAP flags or moves the message.
"""
from __future__ import annotations

from intake.store.database import Store, Stored, store_raw
from parsers.headers import filing_headers

__all__ = ["Stored", "accept"]


def accept(store: Store, raw: bytes, source: str, envelope_sender: str | None = None) -> Stored:
    """Commit `raw` as received from `source`, or find the earlier copy of the same message.

    `envelope_sender` is the SMTP/LMTP MAIL FROM ("" for the null sender <>); None for other ways in.
    """
    headers = filing_headers(raw)
    return store_raw(store, raw, message_id=headers.message_id, sender=headers.sender, subject=headers.subject,
                     source=source, envelope_sender=envelope_sender)
