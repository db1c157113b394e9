"""DKIM signatures on outgoing mail (`[outgoing] dkim_key_file`, `dkim_selector`), made just before delivery."""
from __future__ import annotations

import dkim  # type: ignore[import-untyped]  # dkimpy ships no type information

from intake.config import DkimSigning

__all__ = ["SIGNED_HEADERS", "dkim_signed"]

# What a reader sees and what threads the mail; a header missing from a message is simply not signed.
SIGNED_HEADERS = (b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to", b"in-reply-to",
                  b"references", b"mime-version", b"content-type", b"auto-submitted")


def dkim_signed(raw: bytes, signing: DkimSigning | None) -> bytes:
    """``raw`` with a DKIM-Signature header on top (relaxed/relaxed, rsa-sha256), or as it is without signing."""
    if signing is None:
        return raw
    message = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    present = {line.split(b":", 1)[0].strip().lower()
               for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n") if line[:1] not in (b" ", b"\t")}
    signature = dkim.sign(message, signing.selector.encode("ascii"), signing.domain.encode("ascii"), signing.key,
                          canonicalize=(b"relaxed", b"relaxed"),
                          include_headers=[name for name in SIGNED_HEADERS if name in present])
    return bytes(signature) + message
