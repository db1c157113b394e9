"""Outlook's winmail.dat (TNEF) is unpacked into the files it holds, and kept; a corrupt one is kept whole."""
from __future__ import annotations

import base64
import hashlib
import re
import struct
from email.message import EmailMessage

from conftest import DATA, Intake
from parsers.attachments import unpack_tnef
from parsers.message import MAX_TNEF_PER_MESSAGE, parse_message

WINMAIL = DATA / "attachments" / "outlook_winmail.eml"


def _winmail_dat() -> bytes:
    """The real winmail.dat inside the fixture, as Outlook wrote it."""
    text = WINMAIL.read_bytes().decode("ascii")
    encoded = text.split('filename="winmail.dat"\r\n\r\n', 1)[1].split("\r\n------=", 1)[0]
    return base64.b64decode(encoded)


def _with_winmail(content: bytes) -> bytes:
    """The fixture with its winmail.dat replaced by `content`."""
    text = WINMAIL.read_bytes().decode("ascii")
    head, rest = text.split('filename="winmail.dat"\r\n\r\n', 1)
    tail = rest.split("\r\n------=", 1)[1]
    return (head + 'filename="winmail.dat"\r\n\r\n' + base64.encodebytes(content).decode()
            + "\r\n------=" + tail).replace("<winmail@", "<corrupt-winmail@").encode()


def test_the_files_of_a_real_winmail_dat_are_attached_by_their_names_and_the_original_kept(intake: Intake) -> None:
    assert intake.run("ingest", str(WINMAIL)).code == 0

    [case] = intake.cases()
    assert intake.last_outcome()["outcome"] == "case_created"
    attachments = intake.show(case["number"])["attachments"]
    assert [(a["filename"], a["content_type"]) for a in attachments] == [
        ("winmail.dat", "application/ms-tnef"),
        ("TBZ PARIV GmbH.jpg", "image/jpeg"),
        ("image003.jpg", "image/jpeg"),
        ("UmlautAnhang-äüö.txt", "text/plain")]
    original = _winmail_dat()
    assert attachments[0]["sha256"] == hashlib.sha256(original).hexdigest()
    inside = dict(unpack_tnef(original).files)
    assert attachments[1]["sha256"] == hashlib.sha256(inside["TBZ PARIV GmbH.jpg"]).hexdigest()
    assert attachments[1]["sniffed_type"] == "image/jpeg" and not attachments[1]["type_mismatch"]
    reply = intake.last_reply_text()
    assert "UmlautAnhang-äüö.txt" in reply and "winmail.dat" in reply


def test_a_corrupt_winmail_dat_is_kept_whole_and_the_case_made(intake: Intake) -> None:
    corrupt = b"\x78\x9f\x3e\x22" + bytes(range(256)) * 4  # TNEF's signature, then nothing TNEF can read

    assert intake.ingest(_with_winmail(corrupt)).code == 0

    [case] = intake.cases()
    assert intake.last_outcome()["outcome"] == "case_created"
    [kept] = intake.show(case["number"])["attachments"]
    assert kept["filename"] == "winmail.dat" and kept["sha256"] == hashlib.sha256(corrupt).hexdigest()


def test_a_winmail_dat_that_is_not_tnef_at_all_is_kept_whole(intake: Intake) -> None:
    assert intake.ingest(_with_winmail(b"this was never a winmail.dat\n")).code == 0

    [case] = intake.cases()
    [kept] = intake.show(case["number"])["attachments"]
    assert kept["filename"] == "winmail.dat" and kept["size"] == len(b"this was never a winmail.dat\n")


def test_unpacking_says_why_it_could_not() -> None:
    unpacked = unpack_tnef(b"not tnef")
    assert unpacked.files == ()
    assert unpacked.problem is not None and re.search(r"could not be unpacked .*kept whole", unpacked.problem)


def _with_message_properties(data: bytes) -> bytes:
    """The real winmail.dat with the start of its message's MAPI properties (attribute 0x9003) overwritten."""
    winmail = bytearray(_winmail_dat())
    at = 6  # after the signature and the key: attributes of level, id, type, length, data, checksum
    while struct.unpack_from("<H", winmail, at + 1)[0] != 0x9003:
        at += 9 + struct.unpack_from("<I", winmail, at + 5)[0] + 2
    winmail[at + 9:at + 9 + len(data)] = data
    return bytes(winmail)


def test_a_corrupt_property_count_costs_a_timeout_not_the_worker() -> None:
    # tnefparse trusts the count: four billion properties, each "skipped" with a log line, take hours.
    endless = _with_message_properties(struct.pack("<I", 0xFFFFFFFF))

    unpacked = unpack_tnef(endless, timeout=2)

    assert unpacked.files == ()
    assert unpacked.problem == "winmail.dat could not be unpacked (tnefparse took longer than 2 s); kept whole"


def test_a_corrupt_multi_value_count_costs_a_memory_limit_not_the_machine() -> None:
    # One multi-valued short of four billion values: tnefparse appends one object per value.
    bomb = _with_message_properties(struct.pack("<IHHI", 1, 0x1002, 0x0001, 0xFFFFFFFF))

    unpacked = unpack_tnef(bomb, timeout=120)

    assert unpacked.files == ()
    assert unpacked.problem == "winmail.dat could not be unpacked (tnefparse needed more than 512 MB); kept whole"


def test_past_three_winmail_dat_in_one_message_the_rest_are_kept_whole() -> None:
    message = EmailMessage()
    message["From"], message["Subject"] = "zack.morris@bayside.example", "Four of them"
    message.set_content("See attached.\n")
    for _ in range(4):
        message.add_attachment(_winmail_dat(), maintype="application", subtype="ms-tnef", filename="winmail.dat")

    parsed = parse_message(message.as_bytes())

    names = [a.filename for a in parsed.attachments]
    assert names.count("winmail.dat") == 4 and names.count("image003.jpg") == MAX_TNEF_PER_MESSAGE == 3
    assert names[-1] == "winmail.dat"  # the fourth, not unpacked
    assert "winmail.dat number 4 not unpacked: at most 3 are; kept whole" in parsed.defects
