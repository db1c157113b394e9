"""One logging helper and one line format for every part of the daemon.

How to log, everywhere in intake::

    log = logging.getLogger("intake.mailin.smtp")
    log.info(logfmt(event="rcpt_refused", peer=peer, rcpt=address))
    log.warning(logfmt(event="tempfail", peer=peer, error=f"{type(exc).__name__}: {exc}"))
    log.error(logfmt(event="worker_error", error=str(exc)), exc_info=exc)

`logfmt(**fields)` takes the fields in the order given, `event=` first by
convention (a short snake_case name saying what happened), then whatever
identifies it; the level is the logger call's. Never format values into the
message text (`log.info("stored %s", x)`): a value is a field, and fields are
escaped.

`configure_logging(format=...)` (done by `intake serve`, `--log-format`)
writes each record as one line on stderr, where systemd's journal picks it up:

- `logfmt` (default): `ts=2026-12-01T20:24:53.342+00:00 level=INFO logger=intake.daemon event=started ...`
- `json`: one JSON object per line with the same keys,
  `{"ts": "...", "level": "INFO", "logger": "intake.daemon", "event": "started", ...}`, for log shippers.

Values often come from mail (subjects, addresses, Message-IDs, what an SMTP
peer said), so nothing in them may reach the journal raw: CR, LF and every
other C0 or C1 control character, DEL, the ESC of terminal escape sequences,
and other invisible characters (line separators, bidi overrides) are written as
escapes, in Go's `strconv.Quote` notation in logfmt (`\\r`, `\\n`, `\\x1b`,
`\\u2028`), as `\\uXXXX` in JSON. A traceback (`exc_info`) is the field
`error_trace`, escaped like any other value, so every record is exactly one
line. Records from other libraries (no `logfmt` fields) carry their text as
`msg`.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import sys
from collections.abc import Mapping
from typing import IO, Any

LOG_FORMATS = ("logfmt", "json")
RESERVED = ("ts", "level", "logger")  # written by the formatter, before the record's own fields
TRACE = "error_trace"
_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
                  "\\": "\\\\", '"': '\\"'}
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


class Line(str):
    """What `logfmt` returns: the logfmt text, and the fields it was made of (for the JSON format)."""

    fields: dict[str, Any]

    def __new__(cls, fields: Mapping[str, Any]) -> Line:
        line = super().__new__(cls, _render(fields))
        line.fields = dict(fields)
        return line


def logfmt(**fields: Any) -> Line:
    """`key=value` pairs, values escaped (see the module's docstring) and quoted when they need it."""
    return Line(fields)


def escape(text: str) -> str:
    """`text` with every control or otherwise invisible character written as an escape (Go's strconv.Quote)."""
    if text.isprintable() and "\\" not in text and '"' not in text:
        return text
    out = []
    for ch in text:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return "".join(out)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def _key(key: str) -> str:
    return _KEY_UNSAFE.sub("_", key) or "_"


def _value(value: Any) -> str:
    text = _text(value)
    escaped = escape(text)
    if not text or escaped != text or " " in text or "=" in text:
        return f'"{escaped}"'
    return text


def _render(fields: Mapping[str, Any]) -> str:
    return " ".join(f"{_key(key)}={_value(value)}" for key, value in fields.items())


# --- the formatters -------------------------------------------------------------------------


def record_fields(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    """A record as the fields of its line: ts, level, logger, its own fields (or `msg`), error_trace."""
    fields: dict[str, Any] = {
        "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
    }
    own = record.msg.fields if isinstance(record.msg, Line) and not record.args else {"msg": record.getMessage()}
    for key, value in own.items():
        while key in fields or key == TRACE:  # a field may not pass itself off as the formatter's own
            key = f"{key}_"
        fields[key] = value
    if record.exc_info and record.exc_info[0] is not None:
        fields[TRACE] = formatter.formatException(record.exc_info)
    elif record.exc_text:
        fields[TRACE] = record.exc_text
    if record.stack_info:
        fields["stack"] = formatter.formatStack(record.stack_info)
    return fields


class LogfmtFormatter(logging.Formatter):
    """One logfmt line per record."""

    def format(self, record: logging.LogRecord) -> str:
        return _render(record_fields(record, self))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the keys of the logfmt line."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {_key(key): _json_value(value) for key, value in record_fields(record, self).items()}
        return _escape_json(json.dumps(fields, ensure_ascii=False))


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int)) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return _text(value)


def _escape_json(text: str) -> str:
    """json.dumps escapes C0 controls but leaves DEL, C1 and other invisible characters raw: escape those too.

    They can only occur inside JSON strings, where a `\\uXXXX` escape stands for the same character.
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch == " ":
            out.append(ch)
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            high, low = divmod(ord(ch) - 0x10000, 0x400)
            out.append(f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}")
    return "".join(out)


def configure_logging(level: int = logging.INFO, format: str = "logfmt", stream: IO[str] | None = None) -> None:
    """One line per record on stderr (or `stream`), in `format`: "logfmt" or "json"."""
    if format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {format!r}; expected one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command chatter
