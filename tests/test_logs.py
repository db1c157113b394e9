"""Log lines: one record is one line, in logfmt or JSON, and nothing taken from mail reaches the journal raw.

Values in log lines come from mail: subjects, addresses, Message-IDs, an SMTP
peer's words. A CR/LF in them would forge a second log line; an ESC sequence
would repaint the terminal of whoever reads the journal. The formatter is
exercised through the real `logging` machinery (the handler that
`configure_logging` installs) and through a real `intake serve` process.
"""
from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conftest import SUPPORT
from intake.logs import configure_logging, logfmt
from smtp_helpers import ZACK_ADDRESS, RunningIntake, case_message, make_intake

__all__ = ["make_intake"]

HOSTILE_SUBJECT = "a\r\nInjected: yes\x1b[31m"
HOSTILE_MESSAGE_ID = "<evil\r\nlevel=ERROR@bayside.example>"
# Every character that must never be written raw: C0 controls, DEL, C1 controls
# (U+009B is the one-character CSI), line and paragraph separators, a bidi override.
RAW_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
LOGFMT_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?:\s+|$)')


def parse_logfmt(line: str) -> dict[str, str]:
    """Read a logfmt line back, undoing its escapes; fails on anything that is not key=value pairs."""
    assert LOGFMT_PAIR.sub("", line) == "", f"not logfmt: {line!r}"
    fields = {}
    for key, value in LOGFMT_PAIR.findall(line):
        if value.startswith('"'):
            value = value[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
        fields[key] = value
    return fields


@pytest.fixture
def captured() -> Iterator[Callable[[str], io.StringIO]]:
    """Install the daemon's logging on a buffer, in the format asked; the previous handlers are put back."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level

    def install(format: str) -> io.StringIO:
        buffer = io.StringIO()
        configure_logging(format=format, stream=buffer)
        return buffer
    yield install
    root.handlers[:], level = saved
    root.setLevel(level)


def lines_of(buffer: io.StringIO) -> list[str]:
    text = buffer.getvalue()
    assert text.endswith("\n")
    return text[:-1].split("\n")


def log_hostile_message() -> None:
    logging.getLogger("intake.test").warning(logfmt(event="stored", subject=HOSTILE_SUBJECT,
                                                    message_id=HOSTILE_MESSAGE_ID, inbound=7))


def test_a_hostile_subject_and_message_id_stay_on_one_logfmt_line_escaped(captured: Any) -> None:
    buffer = captured("logfmt")
    log_hostile_message()
    [line] = lines_of(buffer)
    assert not RAW_FORBIDDEN.search(line)
    assert 'subject="a\\r\\nInjected: yes\\x1b[31m"' in line
    assert 'message_id="<evil\\r\\nlevel=ERROR@bayside.example>"' in line
    fields = parse_logfmt(line)
    assert list(fields)[:3] == ["ts", "level", "logger"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", fields["ts"])
    assert (fields["level"], fields["logger"], fields["event"]) == ("WARNING", "intake.test", "stored")
    assert fields["subject"] == HOSTILE_SUBJECT and fields["message_id"] == HOSTILE_MESSAGE_ID
    assert fields["inbound"] == "7"


def test_a_hostile_subject_and_message_id_stay_on_one_json_line_escaped(captured: Any) -> None:
    buffer = captured("json")
    log_hostile_message()
    [line] = lines_of(buffer)
    assert not RAW_FORBIDDEN.search(line)
    assert '"subject": "a\\r\\nInjected: yes\\u001b[31m"' in line
    record = json.loads(line)
    assert list(record)[:3] == ["ts", "level", "logger"]
    assert record["subject"] == HOSTILE_SUBJECT and record["message_id"] == HOSTILE_MESSAGE_ID
    assert (record["level"], record["logger"], record["event"], record["inbound"]) == \
        ("WARNING", "intake.test", "stored", 7)


@pytest.mark.parametrize("format", ["logfmt", "json"])
def test_del_c1_controls_and_invisible_separators_are_escaped(captured: Any, format: str) -> None:
    nasty = "del\x7f nel\x85 csi\x9b31m ls\u2028 rlo\u202e tag\U000e0041 nul\x00 bell\x07"
    buffer = captured(format)
    logging.getLogger("intake.test").info(logfmt(event="rcpt_refused", rcpt=nasty, name="Zoë Müller"))
    [line] = lines_of(buffer)
    assert not RAW_FORBIDDEN.search(line) and "\U000e0041" not in line
    assert "Zoë Müller" in line  # printable text stays readable
    fields = parse_logfmt(line) if format == "logfmt" else json.loads(line)
    assert fields["rcpt"] == nasty


@pytest.mark.parametrize("format", ["logfmt", "json"])
def test_a_traceback_is_one_escaped_field_of_its_line(captured: Any, format: str) -> None:
    buffer = captured(format)
    try:
        raise ValueError(f"bad header {HOSTILE_SUBJECT}")
    except ValueError:
        logging.getLogger("intake.test").exception(logfmt(event="session_error"))
    [line] = lines_of(buffer)
    assert not RAW_FORBIDDEN.search(line)
    fields = parse_logfmt(line) if format == "logfmt" else json.loads(line)
    assert fields["event"] == "session_error" and fields["level"] == "ERROR"
    trace = fields["error_trace"]
    assert trace.startswith("Traceback (most recent call last):\n")
    assert trace.endswith(f"ValueError: bad header {HOSTILE_SUBJECT}")


@pytest.mark.parametrize("format", ["logfmt", "json"])
def test_a_record_from_another_library_carries_its_text_as_msg(captured: Any, format: str) -> None:
    buffer = captured(format)
    logging.getLogger("mail.log").warning("%r said %s", "peer", "HELO\r\nx\x1b[2J")
    [line] = lines_of(buffer)
    assert not RAW_FORBIDDEN.search(line)
    fields = parse_logfmt(line) if format == "logfmt" else json.loads(line)
    assert fields["logger"] == "mail.log" and fields["msg"] == "'peer' said HELO\r\nx\x1b[2J"


@pytest.mark.parametrize("format", ["logfmt", "json"])
def test_a_field_cannot_pass_itself_off_as_the_level_or_logger(captured: Any, format: str) -> None:
    buffer = captured(format)
    logging.getLogger("intake.test").info(logfmt(event="x", level="CRITICAL", logger="intake.daemon"))
    [line] = lines_of(buffer)
    fields = parse_logfmt(line) if format == "logfmt" else json.loads(line)
    assert (fields["level"], fields["logger"]) == ("INFO", "intake.test")
    assert (fields["level_"], fields["logger_"]) == ("CRITICAL", "intake.daemon")


def test_logfmt_quotes_only_what_needs_it() -> None:
    assert logfmt(event="listening", port=2525, starttls=False, host="127.0.0.1") == \
        "event=listening port=2525 starttls=False host=127.0.0.1"
    assert logfmt(detail='say "hi"', empty="", none=None, eq="a=b") == \
        'detail="say \\"hi\\"" empty="" none="" eq="a=b"'


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="logfmt, json"):
        configure_logging(format="xml")


def test_serve_with_log_format_json_writes_one_json_object_per_line(make_intake: Callable[..., RunningIntake]) -> None:
    intake = make_intake().start("--log-format", "json")
    # ESC c resets a terminal; ESC is not whitespace, so the Message-ID is kept as it is.
    hostile_id = "<evil\x1bc@bayside.example>"
    with intake.smtp() as client:
        client.ehlo()
        client.mail(ZACK_ADDRESS)
        assert client.rcpt("nobody\x1bc@intake.example")[0] == 550
        assert client.rcpt(SUPPORT)[0] == 250
        assert client.data(case_message(message_id=hostile_id))[0] == 250
    intake.wait_until_processed(1)
    assert intake.stop() == 0  # SIGTERM
    raw = intake.log.read_bytes()
    assert b"\x1b" not in raw and b"\r" not in raw
    records = [json.loads(line) for line in raw.decode().splitlines()]  # every line is a JSON object
    assert all(list(r)[:3] == ["ts", "level", "logger"] for r in records)
    events = [r.get("event") for r in records]
    assert "started" in events and "stopped" in events
    [refused] = [r for r in records if r.get("event") == "rcpt_refused"]
    assert refused["rcpt"] == "nobody\x1bc@intake.example"
    [processed] = [r for r in records if r.get("outcome") == "case_created"]
    assert processed["message_id"] == hostile_id.strip("<>") and processed["logger"] == "intake.worker"
