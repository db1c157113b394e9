"""Raw message bytes to a parsed, immutable message: the first step of the parse stage.

The worker claims a stored raw message and hands its bytes here before any
decision is made (store raw → **parse** → decide → act). mail-parser does the
MIME work (transfer encodings, charsets, RFC 2047/2231 words, defects) and
inscriptis turns an HTML-only body into text that keeps its line structure, so
the template parser downstream sees one ``Field: value`` per line whatever the
sender's mail client wrote. Nothing here touches a database or the network.
"""
from __future__ import annotations

import base64
import binascii
import email
import email.message
import email.parser
import email.utils
import mimetypes
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import datetime

import inscriptis
import mailparser
from mailparser.utils import decode_header_part

from parsers.attachments import decoded_filename, is_tnef, sanitise_filename, sniff, split_uuencoded, unpack_tnef
from parsers.crypto import PGP_SIGNATURE_NAME, encryption_of, opaque_signed_entity, split_cleartext_signed
from parsers.flowed import unflow
from parsers.large_parts import SetAside, set_aside
from parsers.sender import read_sender

__all__ = ["Attachment", "NotAnEmail", "ParsedMessage", "bare_message_id", "parse_message"]

MAX_TNEF_PER_MESSAGE = 3  # winmail.dat files unpacked in one message; the rest are kept as they came

# Headers of which at least one must be present for bytes to count as mail.
_TELLTALE_HEADERS = frozenset({"from", "subject", "date", "message-id", "to"})
# An RFC 5322 field name is printable ASCII except the colon.
_HEADER_LINE = re.compile(rb"^[!-9;-~]+[ \t]*:")
_MBOX_FROM_LINE = re.compile(rb"^From \S")
# Control bytes that never appear in a header section of real mail. ESC is
# allowed: old Japanese clients put raw ISO-2022-JP escapes in headers.
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]")
# These read a message of any size without copying it (`bytes.strip` and `splitlines` copy all of it).
_NOT_SPACE = re.compile(rb"[^ \t\n\r\x0b\x0c]")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIRST_LINE = re.compile(rb"[^\r\n]*")
_MSGID = re.compile(r"<([^<>]*)>")
_WHITESPACE = re.compile(r"\s+")
# mail-parser names an unnamed attachment with ten random lowercase letters.
_SYNTHESISED_NAME = re.compile(r"[a-z]{10}\.(?:txt|rtf)")


class NotAnEmail(ValueError):
    """The bytes are not an email message at all; ``reason`` says why in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Attachment:
    """One attached file, decoded, with a filename safe to show or store.

    ``content_type`` is what the mail said; ``sniffed_type`` what the bytes are by their signature
    (None when they carry none), and ``type_mismatch`` whether the two disagree (a program sent as a PDF).
    """

    filename: str
    content_type: str
    content: bytes
    sniffed_type: str | None = None
    type_mismatch: bool = False

    @classmethod
    def of(cls, filename: str, content_type: str, content: bytes) -> Attachment:
        """An attachment whose type is sniffed from `content`; `filename` must be sanitised already."""
        sniffed = sniff(content, content_type)
        return cls(filename, content_type, content, sniffed.content_type, sniffed.mismatch)


@dataclass(frozen=True)
class ParsedMessage:
    """Everything later stages read from one inbound message."""

    message_id: str | None
    from_address: str | None  # the one From mailbox, read strictly (see `parsers.sender`)
    from_name: str
    sender_problem: str | None  # why the From header names no single sender; such mail is never answered
    to: tuple[str, ...]
    subject: str
    date: datetime | None
    in_reply_to: str | None
    references: tuple[str, ...]
    return_path: str | None
    headers: tuple[tuple[str, str], ...]
    text: str
    html: str | None
    attachments: tuple[Attachment, ...]
    is_mime: bool
    defects: tuple[str, ...]
    # The MIME tree as the standard library parsed it, for readers that need the
    # structure itself (delivery reports); never shown or stored. The payload of a
    # large base64 file in it is a placeholder (`parsers.large_parts`): its bytes are in `attachments`.
    structure: email.message.Message = field(repr=False, compare=False)
    # How the message is encrypted ("S/MIME", "PGP/MIME", "inline PGP"; `parsers.crypto`), or None.
    # An encrypted message has no text: nobody here can read it, and nothing may quote it.
    encryption: str | None = None

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name: str) -> tuple[str, ...]:
        """Every value of header ``name`` (case-insensitive), in order."""
        wanted = name.lower()
        return tuple(value for key, value in self.headers if key.lower() == wanted)


def parse_message(raw: bytes, *, headers_only: str | None = None) -> ParsedMessage:
    """Parse raw RFC 5322 bytes; raise NotAnEmail when they are not mail at all.

    With ``headers_only`` (why, e.g. a limit it is over), only the header
    section is read: the body is never handed to a MIME parser.
    """
    raw, cleaned = _without_nul_in_header(raw)
    _check_looks_like_mail(raw)
    if headers_only is not None:
        reading = _read_headers_only(raw, headers_only)
    else:
        reading = _signed_content(raw, _read(raw))
    headers = _decoded_headers(reading.structure)  # without NUL, as every text read from mail
    if not any(name.lower() in _TELLTALE_HEADERS for name, _ in headers):
        raise NotAnEmail("no email headers found (no From, To, Subject, Date or Message-ID)")
    sender = read_sender(_raw_values(reading.structure, "From"))
    plain = _unflowed(_body_plain_parts(reading.plain, reading.attachments), reading.structure)
    # Nothing of an encrypted message is read as text, so nothing downstream can quote its ciphertext.
    encryption = encryption_of(reading.structure, plain)
    attachments, unpack_problems = _unpacked(reading.attachments)
    plain, files_in_text = _files_in_text(plain, len(attachments))
    # NUL is no text: a decoded part may hold it, and PostgreSQL's text columns refuse it.
    html = None if encryption else "\n".join(reading.html).replace("\x00", "") or None
    return ParsedMessage(
        message_id=_message_id(_first(headers, "Message-ID")),
        from_address=sender.address,
        from_name=sender.name,
        sender_problem=sender.problem,
        to=reading.to,
        subject=_collapse(_first(headers, "Subject") or ""),
        date=reading.date,
        in_reply_to=_message_id(_first(headers, "In-Reply-To")),
        references=tuple(_message_ids(" ".join(v for k, v in headers if k.lower() == "references"))),
        return_path=_return_path(_first(headers, "Return-Path")),
        headers=headers,
        text="" if encryption else _body_text(plain, html).replace("\x00", ""),
        html=html,
        attachments=(*attachments, *files_in_text),
        is_mime=_first(headers, "MIME-Version") is not None,
        defects=(*cleaned, *reading.defects, *unpack_problems),
        structure=reading.structure,
        encryption=encryption,
    )


def _read(raw: bytes) -> _Reading:
    aside = set_aside(raw)  # large base64 files are decoded from `raw` itself, never held as text
    try:
        return _read_with_mail_parser(aside)
    except Exception as exc:  # mail-parser's own bugs on broken MIME must not leave a message unread
        return _read_with_standard_library(aside, f"{type(exc).__name__}: {exc}")


def _tree(aside: SetAside) -> email.message.Message:
    """The MIME tree of the message, its large base64 files set aside wherever nothing reads them as text."""
    structure = email.message_from_bytes(aside.message)
    aside.restore_where_read(structure)
    return structure


def _signed_content(raw: bytes, reading: _Reading) -> _Reading:
    """An opaque S/MIME signed message read as the entity it signed, under its own headers; the signature kept.

    (A ``multipart/signed`` message needs nothing: its first part is the message, its signature an attachment.)
    """
    entity = opaque_signed_entity(reading.structure)
    if entity is None:
        return reading
    inner = _read(_without_content_headers(raw) + entity)
    return replace(inner, attachments=(*inner.attachments, *reading.attachments),
                   defects=(*reading.defects, *inner.defects))


def _without_content_headers(raw: bytes) -> bytes:
    """The header section of `raw` without its Content-* fields, ready to be followed by another entity."""
    end = _HEADER_END.search(raw)
    header_section = raw[: end.start()] if end else raw
    fields = re.split(rb"\r?\n(?![ \t])", header_section)
    return b"".join(field + b"\r\n" for field in fields if not field.lower().startswith(b"content-"))


@dataclass(frozen=True)
class _Reading:
    """What a MIME parser made of a message: its tree, recipients, date, text and HTML parts, files."""

    structure: email.message.Message
    to: tuple[str, ...]
    date: datetime | None
    plain: list[str]
    html: list[str]
    attachments: tuple[Attachment, ...]
    defects: tuple[str, ...]


def _read_with_mail_parser(aside: SetAside) -> _Reading:
    mail = mailparser.MailParser(_tree(aside))
    return _Reading(mail.message, _addresses(mail.to) + _addresses(mail.cc), _aware(mail.date),
                    list(mail.text_plain), list(mail.text_html), _attachments(mail.attachments, aside),
                    _defects(mail.defects))


def _read_with_standard_library(aside: SetAside, why: str) -> _Reading:
    """The same reading from the standard library alone, for mail that mail-parser cannot read."""
    structure = _tree(aside)
    plain: list[str] = []
    html: list[str] = []
    found: list[dict[str, object]] = []
    for part in structure.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        payload = _decoded_payload(part, aside)
        content = payload if isinstance(payload, bytes) else b""
        is_file = part.get_filename() or part.get_content_disposition() == "attachment"
        if is_file or not content_type.startswith("text/"):
            found.append({"filename": part.get_filename() or "", "mail_content_type": content_type,
                          "payload": content, "content-disposition": part.get("Content-Disposition", "")})
        elif content_type in ("text/plain", "text/html"):
            text = _decoded(content, part.get_content_charset())
            (html if content_type == "text/html" else plain).append(text)
    written = [*structure.get_all("To", []), *structure.get_all("Cc", [])]
    recipients = email.utils.getaddresses([str(value) for value in written])
    defects = tuple(f"{part.get_content_type()}: {type(defect).__name__}" for part in structure.walk()
                    for defect in part.defects)
    return _Reading(structure, tuple(address.lower() for _, address in recipients if address), _date(structure),
                    plain, html, _attachments(found, aside),
                    (f"read with the standard library alone: mail-parser failed ({why})", *defects))


def _decoded_payload(part: email.message.Message, aside: SetAside) -> object:
    """``part.get_payload(decode=True)``, for a part whose base64 is set aside as well."""
    payload = part.get_payload()
    if isinstance(payload, str) and aside.holds(payload):
        try:
            return aside.decoded_base64(payload)
        except (binascii.Error, ValueError):  # the standard library mends some broken base64: let it
            part.set_payload(aside.expanded(payload))
    return part.get_payload(decode=True)


def _decoded(content: bytes, charset: str | None) -> str:
    """Text in its declared charset; in UTF-8 when the charset is one Python does not know."""
    try:
        return content.decode(charset or "utf-8", "replace")
    except LookupError:
        return content.decode("utf-8", "replace")


def _read_headers_only(raw: bytes, why: str) -> _Reading:
    """The headers alone (for a message over a limit): the body is not parsed, nor even copied."""
    end = _HEADER_END.search(raw)
    structure = email.parser.BytesHeaderParser().parsebytes(raw[: end.start()] if end else raw)
    written = [*structure.get_all("To", []), *structure.get_all("Cc", [])]
    recipients = email.utils.getaddresses([str(value) for value in written])
    return _Reading(structure, tuple(address.lower() for _, address in recipients if address), _date(structure),
                    [], [], (), (f"only the headers were read: {why}",))


def _date(structure: email.message.Message) -> datetime | None:
    try:
        return _aware(email.utils.parsedate_to_datetime(str(structure.get("Date", ""))))
    except (TypeError, ValueError, IndexError):
        return None


# --- is it mail at all? ------------------------------------------------------

def _without_nul_in_header(raw: bytes) -> tuple[bytes, tuple[str, ...]]:
    """NUL bytes in the header section removed (the stored message keeps them), and a note that they were."""
    end = _HEADER_END.search(raw)
    cut = end.start() if end else len(raw)
    count = raw.count(b"\x00", 0, cut)
    if not count:
        return raw, ()
    return raw[:cut].replace(b"\x00", b"") + raw[cut:], (f"{count} NUL byte(s) in the header removed",)


def _check_looks_like_mail(raw: bytes) -> None:
    """Refuse bytes that cannot be a message, with a reason a person can read."""
    if not _NOT_SPACE.search(raw):
        raise NotAnEmail("empty file")
    end = _HEADER_END.search(raw)
    if _BINARY_BYTES.search(raw, 0, end.start() if end else len(raw)):
        raise NotAnEmail("the file is binary data (control bytes in the header), not an email message")
    first_line = _FIRST_LINE.match(raw).group().removeprefix(b"\xef\xbb\xbf")  # type: ignore[union-attr]
    if not (_HEADER_LINE.match(first_line) or _MBOX_FROM_LINE.match(first_line)):
        raise NotAnEmail("no email headers found (the first line is not a 'Name: value' header)")


# --- headers -------------------------------------------------------------------

# Headers intake would write itself: from outside they are forgeries, dropped before anything reads them.
OUR_HEADER_PREFIX = "x-intake-"


def _decoded_headers(message: object) -> tuple[tuple[str, str], ...]:
    """Every header, decoded and unfolded, in order; without any `X-Intake-*` header the sender wrote."""
    if message is None:
        return ()
    return tuple((name, _unfold(decode_header_part(value)).replace("\x00", ""))
                 for name, value in message.items()  # type: ignore[attr-defined]
                 if not name.lower().startswith(OUR_HEADER_PREFIX))


def _first(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers if key.lower() == wanted), None)


def _aware(value: object) -> datetime | None:
    """mail-parser gives the Date header in UTC, or None when it was missing or unreadable."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    return None


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", value).strip()


def _collapse(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def bare_message_id(value: str) -> str:
    """A Message-ID as intake stores and compares it: no angle brackets, no surrounding space."""
    return value.strip().strip("<>").strip()


def _message_id(value: str | None) -> str | None:
    ids = _message_ids(value or "")
    return ids[0] if ids else None


def _message_ids(value: str) -> list[str]:
    """Message-IDs without angle brackets; bare tokens when nobody used brackets."""
    bracketed = [m.strip() for m in _MSGID.findall(value) if m.strip()]
    return bracketed if bracketed else value.split()


def _return_path(value: str | None) -> str | None:
    if value is None:
        return None
    found = _MSGID.search(value)
    address = found.group(1) if found else value
    return address.strip().lower()


def _raw_values(message: object, name: str) -> list[str]:
    """Every value of header `name` as it came, encoded words and all (`message` is compat32)."""
    if message is None:
        return []
    return [str(value) for value in message.get_all(name, [])]  # type: ignore[attr-defined]


def _addresses(pairs: object) -> tuple[str, ...]:
    return tuple(address.strip().lower() for _, address in pairs or [] if address)  # type: ignore[attr-defined]


def _defects(defects: list[dict[str, list[str]]]) -> tuple[str, ...]:
    """Flatten mail-parser's ``[{where: [description, ...]}, ...]`` into readable lines."""
    return tuple(f"{where}: {description}"
                 for group in defects for where, descriptions in group.items()
                 for description in descriptions)


# --- body ----------------------------------------------------------------------

def _body_plain_parts(text_plain: list[str], attachments: tuple[Attachment, ...]) -> list[str]:
    """text/plain body parts, less named inline text files.

    mail-parser reports a text part with ``inline; filename=...`` both as body
    and as attachment. Apple Mail attaches .txt files that way; their content
    is a file the person sent, not what they typed, so it must not run into
    the last field of the template.
    """
    parts = list(text_plain)
    for attachment in attachments:
        if attachment.content_type != "text/plain":
            continue
        for index, part in enumerate(parts):
            if _same_text(part, attachment.content):
                del parts[index]
                break
    return parts


def _unflowed(plain_parts: list[str], structure: email.message.Message) -> list[str]:
    """The text parts sent as format=flowed (RFC 3676) with their soft line breaks re-joined.

    mail-parser hands over the decoded text without the part's parameters, so
    each flowed part of the tree is found again by its text.
    """
    flowed = [(_part_text(part), part.get_param("delsp", "no") == "yes") for part in structure.walk()
              if part.get_content_type() == "text/plain" and str(part.get_param("format", "")).lower() == "flowed"
              and part.get_content_disposition() != "attachment"]
    if not flowed:
        return plain_parts
    return [next((unflow(_normalise_newlines(part), delsp=bool(delsp)) for text, delsp in flowed
                  if _normalise_newlines(text).strip() == _normalise_newlines(part).strip()), part)
            for part in plain_parts]


def _part_text(part: email.message.Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    try:
        return payload.decode(part.get_content_charset() or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        return payload.decode("utf-8", "replace")


def _same_text(part: str, content: bytes) -> bool:
    decoded = content.decode("utf-8", "replace")
    return unicodedata.normalize("NFC", decoded).strip() == unicodedata.normalize("NFC", part).strip()


def _body_text(plain_parts: list[str], html: str | None) -> str:
    if plain_parts:
        return "\n".join(_normalise_newlines(p).rstrip("\n") for p in plain_parts)
    if html:
        return html_to_text(html)
    return ""


def html_to_text(html: str) -> str:
    """HTML to text whose paragraphs, ``<br>`` and table rows are lines."""
    text = _normalise_newlines(inscriptis.get_text(html))
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n")


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- attachments ---------------------------------------------------------------

def _attachments(found: list[dict[str, object]], aside: SetAside) -> tuple[Attachment, ...]:
    return tuple(_attachment(number, item, aside) for number, item in enumerate(found, start=1))


def _attachment(number: int, item: dict[str, object], aside: SetAside) -> Attachment:
    content_type = str(item.get("mail_content_type") or "application/octet-stream").lower()
    name = decoded_filename(str(item.get("filename") or ""))
    if _is_synthesised_name(name, item):
        name = ""
    return Attachment.of(sanitise_filename(name, number, content_type), content_type, _attachment_bytes(item, aside))


def _unpacked(attachments: tuple[Attachment, ...]) -> tuple[tuple[Attachment, ...], tuple[str, ...]]:
    """Every attachment, each winmail.dat followed by the files it held; and why any could not be unpacked.

    The winmail.dat itself is kept: what tnefparse does not understand is still there for a person.
    Outlook sends one; past `MAX_TNEF_PER_MESSAGE` they are kept whole, so a message of many hostile
    ones costs at most that many timeouts.
    """
    found: list[Attachment] = []
    problems: list[str] = []
    tnef_seen = 0
    for attachment in attachments:
        found.append(attachment)
        if not is_tnef(attachment.filename, attachment.content_type):
            continue
        tnef_seen += 1
        if tnef_seen > MAX_TNEF_PER_MESSAGE:
            problems.append(f"winmail.dat number {tnef_seen} not unpacked: at most {MAX_TNEF_PER_MESSAGE} are; "
                            f"kept whole")
            continue
        unpacked = unpack_tnef(attachment.content)
        problems += [unpacked.problem] if unpacked.problem else []
        found += [_file_of(name, content, len(found) + 1) for name, content in unpacked.files]
    return tuple(found), tuple(problems)


def _files_in_text(parts: list[str], attached: int) -> tuple[list[str], tuple[Attachment, ...]]:
    """The text parts as their sender wrote them, and the files found in them, numbered after `attached`.

    An inline PGP signature leaves the text it signed and is kept as a file;
    uuencoded files are taken out of the text and decoded.
    """
    texts: list[str] = []
    files: list[Attachment] = []
    for part in parts:
        text, signatures = split_cleartext_signed(part)
        files += [Attachment.of(PGP_SIGNATURE_NAME, "application/pgp-signature", signature.encode("utf-8"))
                  for signature in signatures]
        text, found = split_uuencoded(text)
        texts.append(text)
        files += [_file_of(name, content, attached + len(files) + 1) for name, content in found]
    return texts, tuple(files)


def _file_of(name: str, content: bytes, number: int) -> Attachment:
    """An attachment found inside another: its type guessed from its name, then checked against its bytes."""
    content_type = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
    return Attachment.of(sanitise_filename(name, number, content_type), content_type, content)


def _is_synthesised_name(name: str, item: dict[str, object]) -> bool:
    """True when mail-parser made the name up (from a Content-ID or at random)."""
    if name and name == item.get("content-id"):
        return True
    disposition = str(item.get("content-disposition") or "").lower()
    return bool(_SYNTHESISED_NAME.fullmatch(name)) and "name" not in disposition


def _attachment_bytes(item: dict[str, object], aside: SetAside) -> bytes:
    payload = item.get("payload") or ""
    if isinstance(payload, bytes):
        return payload
    text = str(payload)
    if aside.holds(text):
        return _set_aside_bytes(text, bool(item.get("binary")), aside)
    if item.get("binary"):
        try:
            return base64.b64decode(text)
        except (binascii.Error, ValueError):
            return text.encode("utf-8", "surrogateescape")
    return text.encode("utf-8", "surrogateescape")


def _set_aside_bytes(text: str, binary: bool, aside: SetAside) -> bytes:
    """What `_attachment_bytes` makes of a payload holding set-aside base64, decoded from the raw message."""
    if binary:
        try:
            return aside.decoded_base64(text)
        except (binascii.Error, ValueError):
            pass
    return aside.expanded(text).encode("utf-8", "surrogateescape")
