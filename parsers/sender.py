"""Who sent a message: exactly one From mailbox, read strictly, once. Part of the parse stage.

The address read here is the one stored with the message, decided on,
answered and counted by the reply cap; nothing else (Reply-To, Sender, a
lenient parser's guess) decides who the sender is. The standard library's
header registry (`email.policy.default`) does the parsing. A From that can be
read more than one way is not guessed at: two From headers, several mailboxes,
a header the parser finds invalid, a name that shows another address, or a
name that holds line breaks or control characters once decoded make the
sender *ambiguous*, and such mail is recorded and never answered.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from email.errors import InvalidHeaderDefect
from email.headerregistry import AddressHeader, HeaderRegistry
from functools import lru_cache

__all__ = ["Sender", "read_sender"]

_REGISTRY = HeaderRegistry()
_ADDRESS_IN_NAME = re.compile(r"[^\s<>\"'(),;:@]+@[^\s<>\"'(),;:@]+\.[^\s<>\"'(),;:@]+")


@dataclass(frozen=True)
class Sender:
    address: str | None  # lowercased addr-spec; None when there is none
    name: str  # the display name, decoded
    problem: str | None = None  # why the sender is ambiguous, in words for the decision log


def read_sender(values: Sequence[str]) -> Sender:
    """The sender named by the raw values of a message's From headers (RFC 2047 words not yet decoded)."""
    return _read_sender(tuple(values))


# The same From is read when a message is filed and again when it is parsed, and a
# contact writes with the same From every time: each is parsed once (it is a pure function).
@lru_cache(maxsize=4096)
def _read_sender(values: tuple[str, ...]) -> Sender:
    if not values:
        return Sender(None, "")
    if len(values) > 1:
        return Sender(None, "", f"the message has {len(values)} From headers")
    try:
        header = _REGISTRY("From", _unfolded(_as_text(values[0])))
    except (ValueError, IndexError, TypeError) as exc:  # e.g. an encoded word that decodes to CR/LF
        return Sender(None, "", f"the From header cannot be read as one address: {exc}")
    assert isinstance(header, AddressHeader)  # the registry's class for From
    return _one_mailbox(header, header.defects)


def _one_mailbox(header: AddressHeader, defects: Sequence[object]) -> Sender:
    addresses = header.addresses
    if len(addresses) != 1 or not addresses[0].addr_spec or "@" not in addresses[0].addr_spec:
        return Sender(None, "", f"the From header names {len(addresses)} mailboxes, not one")
    mailbox = addresses[0]
    address, name = mailbox.addr_spec.strip().lower(), mailbox.display_name
    if any(isinstance(defect, InvalidHeaderDefect) for defect in defects):
        return Sender(address, "", "the From header is malformed and can be read as more than one address")
    if any(unicodedata.category(ch)[0] == "C" for ch in name):
        return Sender(address, "", "the sender's name holds line breaks or control characters")
    shown = {found.lower() for found in _ADDRESS_IN_NAME.findall(name)}
    if shown - {address}:
        return Sender(address, "", f"the sender's name shows another address ({', '.join(sorted(shown))})")
    return Sender(address, " ".join(name.split()))


_FOLD = re.compile(r"\r?\n(?=[ \t])")


def _unfolded(value: str) -> str:
    """RFC 5322 unfolding: a line break followed by a space or tab is only where a long header was folded.

    Any other CR or LF stays, and makes the header unreadable (ambiguous).
    """
    return _FOLD.sub("", value)


def _as_text(value: str) -> str:
    """Raw 8-bit bytes in a header (sent without encoding) come as surrogates; read them as UTF-8."""
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        return value.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    return value
