"""Attached files as people really send them: names made safe, types sniffed, winmail.dat and uuencode unpacked.

Part of the parse stage (store raw → **parse** → decide → act). A name from
mail is hostile before and after it is decoded; what leaves here is a bare
file name, never a path. Nothing here touches a database, the network or the
file system.
"""
from __future__ import annotations

import binascii
import email.errors
import email.header
import mimetypes
import re
import struct
import subprocess
import sys
import unicodedata
from dataclasses import dataclass

import puremagic

from parsers import tnef_child

__all__ = ["MAX_FILENAME_BYTES", "MAX_FILENAME_LENGTH", "TNEF_SECONDS", "SniffedType", "Unpacked", "decoded_filename",
           "is_tnef", "sanitise_filename", "sniff", "split_uuencoded", "unpack_tnef"]

MAX_FILENAME_LENGTH = 200  # characters
MAX_FILENAME_BYTES = 255  # in UTF-8: what one name may take on common file systems, and the column's width
_MAX_EXTENSION_LENGTH = 10

_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
# Characters that look like a path separator to a person reading the name, though no file system splits on them.
_SLASH_LOOKALIKES = str.maketrans(dict.fromkeys("\u2044\u2215\u29f8\u29f9\uff0f\uff3c", "_"))
# What Windows refuses in a name; harmless elsewhere, but a name is stored once and saved anywhere.
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
# Windows' device names, whatever the extension after them: `con.txt` opens the console.
_RESERVED_STEM = re.compile(r"(?i)(?:con|prn|aux|nul|(?:com|lpt)[0-9\u00b9\u00b2\u00b3]|conin\$|conout\$|clock\$)")


def decoded_filename(written: str) -> str:
    """A file name as the sender meant it: RFC 2047 encoded words decoded.

    RFC 2231 parameters (``filename*0*=UTF-8''...``) are joined and decoded by
    the MIME parser; Outlook and others put encoded words inside a quoted
    ``filename="=?UTF-8?B?...?="``, which RFC 2047 forbids and every client reads.
    """
    if not _ENCODED_WORD.search(written):
        return written
    try:
        return str(email.header.make_header(email.header.decode_header(written)))
    except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
        return written  # an unknown charset or broken word: the name as written, sanitised like any other


def sanitise_filename(name: str, number: int, content_type: str) -> str:
    """A bare file name safe to show, store and save: never a path, never empty.

    No directories (the last component of a Windows or POSIX path is kept),
    no control, format or bidirectional-override characters (U+202E makes
    ``cod.exe`` read as ``exe.doc``), no character Windows refuses, no
    leading or trailing dots and spaces (``..``, hidden files, Windows'
    silent trimming), no device name (``con.txt`` becomes ``_con.txt``), and
    at most `MAX_FILENAME_LENGTH` characters and `MAX_FILENAME_BYTES` bytes
    with the extension kept. What is left empty is ``attachment-N.ext``.
    """
    name = _visible(unicodedata.normalize("NFC", name))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _WINDOWS_FORBIDDEN.sub("_", name).strip(" .")
    if _RESERVED_STEM.fullmatch(name.split(".", 1)[0].rstrip(" ")):
        name = "_" + name
    if not name:
        name = f"attachment-{number}{mimetypes.guess_extension(content_type) or ''}"
    return _truncate(name)


def _visible(name: str) -> str:
    """Without control, format, private-use and unassigned characters; any run of spaces as one space."""
    kept = "".join(" " if unicodedata.category(ch)[0] == "Z" else ch for ch in name
                   if unicodedata.category(ch)[0] != "C")
    return re.sub(" +", " ", kept.translate(_SLASH_LOOKALIKES))


def _truncate(name: str) -> str:
    if _fits(name):
        return name
    stem, dot, extension = name.rpartition(".")
    if not (dot and stem and 0 < len(extension) <= _MAX_EXTENSION_LENGTH):
        stem, extension = name, ""
    suffix = "." + extension if extension else ""
    stem = stem[:MAX_FILENAME_LENGTH - len(suffix)]  # a megabyte of name is cut at once, not a character at a time
    while stem and not _fits(stem + suffix):
        stem = stem[:-1]
    return stem.rstrip(" .") + suffix


def _fits(name: str) -> bool:
    return len(name) <= MAX_FILENAME_LENGTH and len(name.encode("utf-8")) <= MAX_FILENAME_BYTES


# --- what the bytes are ------------------------------------------------------------

# Types that say only "some bytes": never a mismatch, whatever the bytes are.
_GENERIC_TYPES = frozenset({"application/octet-stream", "binary/octet-stream", "application/binary",
                            "application/unknown", "application/x-unknown", "application/download",
                            "application/x-download", "application/force-download"})
# Formats that many others are built on (OOXML and ODF are zip files, old Office files OLE storage):
# when the signature alone cannot tell which, the sniffed type is the container.
_CONTAINERS = ("application/zip", "application/x-ole-storage")
# Names mail clients and puremagic's table use for one type, to one spelling.
_ALIASES = {
    "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png",
    "application/x-pdf": "application/pdf", "application/x-zip-compressed": "application/zip",
    "application/x-zip": "application/zip", "application/x-gzip": "application/gzip",
    "application/excel": "application/vnd.ms-excel", "application/x-excel": "application/vnd.ms-excel",
    "application/mspowerpoint": "application/vnd.ms-powerpoint",
    "application/x-msdownload": "application/vnd.microsoft.portable-executable",
    "application/x-dosexec": "application/vnd.microsoft.portable-executable",
    "text/rtf": "application/rtf", "text/xml": "application/xml",
}


# puremagic's confidence below which a match is too weak to contradict the mail: a two-byte signature
# (a DER SEQUENCE, which every S/MIME signature starts with, "matches" a Windows catalogue file).
_MIN_CONFIDENCE = 0.3


@dataclass(frozen=True)
class SniffedType:
    """What the bytes of a file are, by their signature, and whether that contradicts the type the mail gave.

    ``content_type`` is None when the bytes carry no signature puremagic knows (plain text, most CSV).
    """

    content_type: str | None
    mismatch: bool


def sniff(content: bytes, declared: str) -> SniffedType:
    """The type of `content` by its signature, checked against `declared`, the Content-Type of its part."""
    candidates = _signature_candidates(content)
    if not candidates:
        return SniffedType(None, False)
    declared = _normal_type(declared)
    best = _most_likely(candidates)
    if declared in _GENERIC_TYPES:
        return SniffedType(best, False)
    if declared in {mime for mime, _ in candidates} or _extensions(declared) & {ext for _, ext in candidates}:
        return SniffedType(declared, False)
    # One kind of text for another (an .html sent as text/plain) is no disguise worth showing.
    return SniffedType(best, not (declared.startswith("text/") and best.startswith("text/")))


def _signature_candidates(content: bytes) -> list[tuple[str, str]]:
    """(type, extension) of every signature that matches, most confident first; unnamed, generic and weak ones
    left out."""
    try:
        matches = puremagic.magic_string(content)
    except (LookupError, ValueError):  # puremagic.PureError is a LookupError: no signature matched
        return []
    ranked = sorted(matches, key=lambda match: -match.confidence)
    return [(_normal_type(match.mime_type), match.extension.lower()) for match in ranked
            if match.mime_type and _normal_type(match.mime_type) not in _GENERIC_TYPES
            and match.confidence >= _MIN_CONFIDENCE]


def _most_likely(candidates: list[tuple[str, str]]) -> str:
    first = candidates[0][0]
    if all(mime == first for mime, _ in candidates):
        return first
    container = next((mime for mime in _CONTAINERS if mime in {m for m, _ in candidates}), None)
    return container or first


def _normal_type(content_type: str) -> str:
    bare = content_type.split(";", 1)[0].strip().lower()
    return _ALIASES.get(bare, bare)


def _extensions(content_type: str) -> set[str]:
    return set(mimetypes.guess_all_extensions(content_type, strict=False))


# --- winmail.dat ------------------------------------------------------------------------

TNEF_SECONDS = 10.0  # for tnefparse to read one winmail.dat: a 25 MB one takes a second or two
# Outlook's Transport Neutral Encapsulation Format: the real attachments, wrapped in one file.
_TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})


@dataclass(frozen=True)
class Unpacked:
    """What a container held: its files, by the names it gave them (not yet cleaned), or why it could not be read."""

    files: tuple[tuple[str, bytes], ...] = ()
    problem: str | None = None


def is_tnef(filename: str, content_type: str) -> bool:
    return content_type.lower() in _TNEF_TYPES or filename.lower() == "winmail.dat"


def unpack_tnef(content: bytes, timeout: float = TNEF_SECONDS) -> Unpacked:
    """The files inside a winmail.dat, read by tnefparse in a process of its own; a corrupt one gives none
    and says why.

    tnefparse trusts the counts in the file, and a corrupt one can make it loop
    for hours or fill memory (`parsers.tnef_child`): the child has a memory
    limit and `timeout` seconds, and whatever becomes of it, the message goes on.
    """
    try:
        done = subprocess.run([sys.executable, "-I", "-m", "parsers.tnef_child"], input=content,
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return _not_unpacked(f"tnefparse took longer than {timeout:g} s")
    if done.returncode == tnef_child.OUT_OF_MEMORY:
        return _not_unpacked(f"tnefparse needed more than {tnef_child.MEMORY_LIMIT // 2**20} MB")
    if done.returncode != 0:
        error = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return _not_unpacked(error[-1] if error else f"tnefparse exited with {done.returncode}")
    return Unpacked(_files_written(done.stdout))


def _not_unpacked(why: str) -> Unpacked:
    return Unpacked(problem=f"winmail.dat could not be unpacked ({why}); kept whole")


def _files_written(stream: bytes) -> tuple[tuple[str, bytes], ...]:
    """The (name, data) records `parsers.tnef_child` writes."""
    files = []
    at = 0
    while at + 8 <= len(stream):
        name_length, data_length = struct.unpack_from(">II", stream, at)
        at += 8
        name = stream[at:at + name_length].decode("utf-8", "replace")
        files.append((name, stream[at + name_length:at + name_length + data_length]))
        at += name_length + data_length
    return tuple(files)


# --- uuencoded files in a text body --------------------------------------------------

_UU_BEGIN = re.compile(r"begin [0-7]{3,4} (?P<name>\S.*?)[ \t]*")


def split_uuencoded(text: str) -> tuple[str, tuple[tuple[str, bytes], ...]]:
    """`text` without its uuencoded files (``begin 644 name`` … ``end``), and those files, decoded.

    Old clients and scripts still paste files into the body this way. A block
    that does not decode, or has no ``end``, is left as text: it may be someone's prose.
    """
    lines = text.split("\n")
    kept: list[str] = []
    files: list[tuple[str, bytes]] = []
    at = 0
    while at < len(lines):
        begin = _UU_BEGIN.fullmatch(lines[at].rstrip("\r"))
        found = _uudecoded(lines, at + 1) if begin else None
        if begin is None or found is None:
            kept.append(lines[at])
            at += 1
            continue
        content, at = found
        files.append((begin.group("name"), content))
    return "\n".join(kept), tuple(files)


def _uudecoded(lines: list[str], start: int) -> tuple[bytes, int] | None:
    """The bytes of the block whose data starts at line `start`, and the line after its ``end``; None if it is none."""
    chunks: list[bytes] = []
    for at in range(start, len(lines)):
        line = lines[at].rstrip("\r")
        if line.strip() == "end":
            return b"".join(chunks), at + 1
        chunk = _uudecoded_line(line)
        if chunk is None:
            return None
        chunks.append(chunk)
    return None


def _uudecoded_line(line: str) -> bytes | None:
    if not line.strip():
        return b""  # a zero-length line whose space was trimmed in transit
    try:
        return binascii.a2b_uu(line)
    except ValueError:  # binascii.Error, or a character outside ASCII
        pass
    # Encoders that pad lines leave bytes past the declared length; the uu module read up to that length.
    declared = (((ord(line[0]) - 32) & 63) * 4 + 5) // 3
    try:
        return binascii.a2b_uu(line[:declared])
    except ValueError:
        return None
