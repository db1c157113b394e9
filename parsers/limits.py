"""The limits a stored message must keep to be read whole: size, headers, MIME structure, attachments.

Mail arrives huge and strange: a thousand nested multiparts, ten thousand
parts, a megabyte of headers. Such a message is kept, and never read into the
MIME parser: `measure` takes its size, header count, header bytes, MIME depth
and number of parts in one pass over the raw bytes, without recursion, so a
limit is known before anything costly is done. What only the parse can tell
(how many attachments, the largest decoded part) is checked after it by
`content_excess`. Each limit that is passed is an `Excess`: which limit, and
a sentence for the contact in plain words.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Excess", "Limits", "Measure", "content_excess", "measure", "structural_excess"]

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """`[limits]` (and `[intake] max_message_bytes`): what a message may hold to be read and acted on."""

    max_message_bytes: int = 25 * MIB
    max_headers: int = 1000
    max_header_bytes: int = 1 * MIB
    max_mime_depth: int = 20
    max_mime_parts: int = 500
    max_attachments: int = 100
    max_attachment_bytes: int = 25 * MIB


@dataclass(frozen=True)
class Measure:
    size: int
    headers: int
    header_bytes: int
    mime_depth: int
    mime_parts: int


@dataclass(frozen=True)
class Excess:
    """One limit a message is over: ``limit`` names the setting, ``reason`` is for the log, ``message``
    for the person."""

    limit: str
    reason: str
    message: str


_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIELD_START = re.compile(rb"^[^ \t\r\n]", re.M)
_BOUNDARY = re.compile(rb"""boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))""", re.I)
_DELIMITER = re.compile(rb"^--([^\r\n]{1,202}?)[ \t]*\r?$", re.M)


def measure(raw: bytes) -> Measure:
    """Size, headers and MIME shape of ``raw``, in one pass and without parsing it."""
    end = _HEADER_END.search(raw)
    header = raw[: end.start()] if end else raw
    declared = {m.group(1) or m.group(2) for m in _BOUNDARY.finditer(raw)}
    stack: list[bytes] = []
    depth = parts = 0
    if declared:
        for match in _DELIMITER.finditer(raw):
            line = match.group(1)
            closing = line.endswith(b"--") and line[:-2] in declared
            boundary = line[:-2] if closing else line
            if boundary not in declared:
                continue
            if boundary in stack:
                del stack[stack.index(boundary) + (0 if closing else 1):]
            elif not closing:
                stack.append(boundary)
            if not closing:
                parts += 1
            depth = max(depth, len(stack))
    return Measure(size=len(raw), headers=len(_FIELD_START.findall(header)), header_bytes=len(header),
                   mime_depth=depth, mime_parts=parts)


def structural_excess(found: Measure, limits: Limits) -> Excess | None:
    """The first limit ``found`` is over that is known before the MIME parse, or None."""
    if found.size > limits.max_message_bytes:
        return Excess("max_message_bytes", f"{found.size} bytes is over the limit of {limits.max_message_bytes}",
                      f"Your message is {_readable(found.size)}, larger than the {_readable(limits.max_message_bytes)}"
                      f" we accept. Please send it again with smaller attachments, or share large files by link.")
    if found.headers > limits.max_headers or found.header_bytes > limits.max_header_bytes:
        return Excess("max_headers" if found.headers > limits.max_headers else "max_header_bytes",
                      f"{found.headers} header fields, {found.header_bytes} bytes of headers (limits "
                      f"{limits.max_headers} and {limits.max_header_bytes})",
                      "Your message has more header lines than we can read. Please send it again as a new "
                      "message from your mail program, not forwarded or redirected many times.")
    if found.mime_depth > limits.max_mime_depth:
        return Excess("max_mime_depth", f"MIME parts nested {found.mime_depth} deep (limit {limits.max_mime_depth})",
                      f"Your message has parts nested {found.mime_depth} levels deep; we read at most "
                      f"{limits.max_mime_depth}. Please send your request again as a plain new message, "
                      f"with files attached directly rather than inside forwarded messages.")
    if found.mime_parts > limits.max_mime_parts:
        return Excess("max_mime_parts", f"{found.mime_parts} MIME parts (limit {limits.max_mime_parts})",
                      f"Your message has {found.mime_parts} parts; we read at most {limits.max_mime_parts}. "
                      f"Please send fewer files in one message, or put them in one zip file.")
    return None


def content_excess(attachment_sizes: list[int], limits: Limits) -> Excess | None:
    """The first limit the parsed attachments are over (how many, the largest decoded), or None."""
    if len(attachment_sizes) > limits.max_attachments:
        return Excess("max_attachments", f"{len(attachment_sizes)} attachments (limit {limits.max_attachments})",
                      f"Your message has {len(attachment_sizes)} attachments; we accept at most "
                      f"{limits.max_attachments} in one message. Please send fewer files, or put them in one "
                      f"zip file.")
    largest = max(attachment_sizes, default=0)
    if largest > limits.max_attachment_bytes:
        return Excess("max_attachment_bytes", f"an attachment of {largest} bytes (limit {limits.max_attachment_bytes})",
                      f"One of your attachments is {_readable(largest)}; we accept files up to "
                      f"{_readable(limits.max_attachment_bytes)}. Please share larger files by link.")
    return None


def _readable(size: int) -> str:
    megabytes = size / MIB
    if megabytes >= 1:
        return f"{megabytes:.1f} MB".replace(".0 MB", " MB")
    return f"{size / 1024:.0f} KB"
