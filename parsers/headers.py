"""The few header values needed to store a message before it is parsed in full.

Cheap and forgiving: used at the edge (ingest, SMTP, IMAP) to file the raw
bytes under their Message-ID; the full parse happens later, in the worker.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.parser import BytesHeaderParser

from mailparser.utils import decode_header_part

from parsers.message import bare_message_id
from parsers.sender import read_sender

# The blank line that ends the header section; the body after it is never read here.
_HEADER_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class FilingHeaders:
    """What a raw message is filed under before it is parsed."""

    message_id: str | None
    sender: str | None
    subject: str


def filing_headers(raw: bytes) -> FilingHeaders:
    try:
        # One parse of the header section, as the parse stage reads it later (compat32 values,
        # decoded the same way), so what a message is filed under matches what is decided on.
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(header_section(raw))
        message_id = bare_message_id(str(headers.get("Message-ID", "") or "").replace("\x00", "")) or None
        sender = read_sender([str(v) for v in headers.get_all("From", [])]).address
        # NUL, raw or encoded, is never stored: PostgreSQL's text columns refuse it.
        subject = " ".join(decode_header_part(str(headers.get("Subject", "") or "")).replace("\x00", "").split())
    except Exception:  # a file that is not mail at all still gets stored and an outcome
        return FilingHeaders(None, None, "")
    if message_id and (len(message_id) > 900 or any(ch.isspace() for ch in message_id)):
        message_id = None  # a broken Message-ID identifies nothing; fall back to the content hash
    return FilingHeaders(message_id, sender, subject[:1000])


def header_section(raw: bytes) -> bytes:
    """The header section of `raw` with the blank line that ends it; all of `raw` when there is none.

    The header parser reads its whole input even when it keeps only the headers (into one string,
    then a buffer four times that size), so a 30 MB message must not be handed to it whole.
    """
    end = _HEADER_END.search(raw)
    return raw[: end.end()] if end else raw
