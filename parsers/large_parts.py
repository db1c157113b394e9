"""Large base64 files in a message, set aside so that the MIME parser never holds them as text.

Part of the parse stage (store raw → **parse** → decide → act). The standard
library's parser, which mail-parser uses, turns a message into one string,
then a list of its lines, then a payload string per part: a 34 MB attachment
costs some 300 MB before it is decoded. A file's base64 is a run of lines of
the base64 alphabet alone, which can hold no boundary, no header and no blank
line, so it can be replaced by one placeholder line without changing how the
message is parsed. The parser sees the message with its long runs set aside
(`SetAside.message`); the file's bytes are decoded from the raw message in
chunks, through a spool that goes to disk past `SPOOL_THRESHOLD`, exactly as
``base64.b64decode`` of the whole payload would have decoded them. Parts that
something reads as text (text, messages, the signed or encrypted whole) get
their runs back before anyone reads them. Nothing here touches a database or
the network; the spool is a temporary file.
"""
from __future__ import annotations

import binascii
import email.message
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["SPOOL_THRESHOLD", "SetAside", "set_aside"]

SPOOL_THRESHOLD = 1024 * 1024  # bytes of base64 from which a run is set aside; also the spool's size in memory
_CHUNK = 1024 * 1024  # base64 read and decoded at a time
# Up to 4096 whole lines of the base64 alphabet (RFC 2045 §6.8); a run is made of these, end to end.
# (A pattern for a run of any length would keep a backtracking entry per line: 30 MB for 30 MB of base64.)
_LINES = re.compile(rb"(?m)^(?:[A-Za-z0-9+/=]+\r?\n){1,4096}")
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
# What a lenient base64 decoder skips: everything but the alphabet and the pad.
_SKIPPED = bytes(byte for byte in range(256) if byte not in _ALPHABET)
# Only parts whose ancestors are all plain multiparts keep their runs set aside: mail-parser
# reads an attached multipart or message as text, and the crypto readers read the whole message.
_READ_AS_TEXT = ("text", "message", "multipart")
_PKCS7 = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})


@dataclass(frozen=True)
class SetAside:
    """A raw message with its long base64 runs each replaced by a placeholder line, and a way back to them.

    ``runs[i]`` is the (start, end) of the run in ``raw`` that ``placeholder(i)`` stands for.
    """

    raw: bytes
    message: bytes
    prefix: str  # of every placeholder: letters and digits, found nowhere in `raw`
    runs: tuple[tuple[int, int], ...]

    def placeholder(self, number: int) -> str:
        return f"{self.prefix}{number:08d}"

    def holds(self, text: str) -> bool:
        """True when `text` (a payload, or anything made of one) has a run set aside in it."""
        return bool(self.runs) and self.prefix in text

    def expanded(self, text: str) -> str:
        """`text` with every run back in place, as the parser would have given it."""
        return self._placeholders().sub(lambda found: self._run_text(int(found.group(1))), text)

    def decoded_base64(self, text: str) -> bytes:
        """``base64.b64decode(self.expanded(text))``, without making the expanded text.

        Raises what ``b64decode`` raises (`binascii.Error`, or ValueError for text beyond ASCII).
        """
        if not text.isascii():
            raise ValueError("string argument should contain only ASCII characters")
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_THRESHOLD) as spool:
            _decode_into(spool, self._pieces(text))
            spool.seek(0)
            return spool.read()

    def _placeholders(self) -> re.Pattern[str]:
        return re.compile(re.escape(self.prefix) + r"(\d{8})")

    def _run_text(self, number: int) -> str:
        start, end = self.runs[number]
        return self.raw[start:end].decode("ascii")

    def _pieces(self, text: str) -> Iterator[memoryview | bytes]:
        """The expanded text as bytes, a chunk at a time: runs are read from `raw` in place."""
        at = 0
        for found in self._placeholders().finditer(text):
            yield text[at:found.start()].encode("ascii")
            start, end = self.runs[int(found.group(1))]
            whole = memoryview(self.raw)
            for chunk_start in range(start, end, _CHUNK):
                yield whole[chunk_start:min(end, chunk_start + _CHUNK)]
            at = found.end()
        yield text[at:].encode("ascii")

    def restore_where_read(self, tree: email.message.Message) -> None:
        """Put the runs back into every part of `tree` that something reads other than as a base64 file."""
        if not self.runs:
            return
        for part, kept in _parts_and_whether_kept(tree, root=True):
            payload = part.get_payload()
            if not kept and isinstance(payload, str) and self.holds(payload):
                part.set_payload(self.expanded(payload))
        for part in tree.walk():  # mail-parser reads a broken message's epilogue as another message
            for side in ("preamble", "epilogue"):
                text = getattr(part, side)
                if isinstance(text, str) and self.holds(text):
                    setattr(part, side, self.expanded(text))


def set_aside(raw: bytes, threshold: int = SPOOL_THRESHOLD) -> SetAside:
    """`raw` with each run of base64 lines of at least `threshold` bytes replaced by a placeholder line."""
    runs = tuple((start, end) for start, end in _runs(raw) if end - start >= threshold)
    if not runs:
        return SetAside(raw, raw, "", ())
    prefix = _unused_prefix(raw)
    pieces: list[bytes] = []
    at = 0
    for number, (start, end) in enumerate(runs):
        pieces += [raw[at:start], f"{prefix}{number:08d}".encode("ascii")]
        at = end
    pieces.append(raw[at:])
    return SetAside(raw, b"".join(pieces), prefix, runs)


def _runs(raw: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of each run of base64 lines, without the line ending of its last line (which stays)."""
    start = end = -1
    for found in _LINES.finditer(raw):
        if found.start() != end:
            if end > start:
                yield start, _without_last_line_ending(raw, end)
            start = found.start()
        end = found.end()
    if end > start:
        yield start, _without_last_line_ending(raw, end)


def _without_last_line_ending(raw: bytes, end: int) -> int:
    return end - 2 if raw[end - 2:end] == b"\r\n" else end - 1


def _unused_prefix(raw: bytes) -> str:
    while True:
        prefix = "INTAKESETASIDE" + secrets.token_hex(8).upper()
        if prefix.encode("ascii") not in raw:
            return prefix


def _parts_and_whether_kept(part: email.message.Message, *, root: bool = False, inside: bool = False
                            ) -> Iterator[tuple[email.message.Message, bool]]:
    """Every part, and whether its runs may stay set aside: a base64 file among plain multiparts only."""
    if part.is_multipart():
        plain = part.get_content_maintype() == "multipart" and part.get_content_disposition() is None \
            and not part.get_filename()
        for child in part.get_payload():
            if isinstance(child, email.message.Message):
                yield from _parts_and_whether_kept(child, inside=inside or not plain)
        return
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    yield part, not (root or inside or encoding != "base64" or part.get_content_maintype() in _READ_AS_TEXT
                     or part.get_content_type() in _PKCS7)


def _decode_into(spool: tempfile.SpooledTemporaryFile[bytes], pieces: Iterator[memoryview | bytes]) -> None:
    """Decode base64 as one lenient ``a2b_base64`` call over all the pieces would.

    Whole quanta of four are decoded as they come; from the first pad on, the rest is decoded in
    one call, since a pad may end the data (the lenient decoder ignores what follows).
    """
    carry = b""
    for piece in pieces:
        data = carry + bytes(piece).translate(None, _SKIPPED)
        if b"=" in data:
            spool.write(binascii.a2b_base64(data + b"".join(bytes(rest).translate(None, _SKIPPED) for rest in pieces)))
            return
        whole = len(data) - len(data) % 4
        spool.write(binascii.a2b_base64(data[:whole]))
        carry = data[whole:]
    spool.write(binascii.a2b_base64(carry))
