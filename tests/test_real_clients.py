"""New cases as real mail clients send them: values end where the person meant.

Each message under tests/data/mail/ is written as its client writes mail
(HTML-only Outlook desktop and web, Gmail-style HTML with a signature, Apple
Mail, an iPhone, Thunderbird's format=flowed). Sign-offs, signatures, name
and title blocks and app footers are no part of any value, in the stored case
or in the acknowledgement.
"""
from __future__ import annotations

from conftest import DATA, Intake

MAIL = DATA / "mail"
SIGNATURE_WORDS = ("Technology Director", "Registrar", "Thanks,", "Regards,", "Sent from my iPhone", "--",
                   "555-201")


def _filed(intake: Intake, name: str) -> tuple[dict, str]:
    ran = intake.run("ingest", str(MAIL / name))
    assert "case_created #1" in ran.out, ran.out + intake.last_reply_text()
    return intake.show(1), intake.last_reply_text().replace("\r\n", "\n")


def _understood(reply: str) -> str:
    """The "What we understood" section of an acknowledgement."""
    section = reply.split("What we understood", 1)[1].split("Attachments received", 1)[0]
    return section.strip("\n").split("\n", 1)[1]  # below its underline


def _clean(*texts: str) -> None:
    for text in texts:
        for word in SIGNATURE_WORDS:
            assert word not in text, (word, text)


def test_outlook_desktop_html_only_single_line_fields_take_their_line(intake: Intake) -> None:
    case, reply = _filed(intake, "outlook-desktop-html-only.eml")
    assert case["fields"]["Issue Began"] == "2026-11-28"
    assert case["fields_as_written"]["Issue Began"] == "11/28/2026"
    assert case["fields"]["Module"] == "Attendance"
    assert case["description"] == ("Teachers at Bayside High cannot save period attendance since this morning. "
                                   "The Save button spins and the page times out.")
    assert _understood(reply).endswith("Issue Began: 11/28/2026")
    _clean(case["description"], *map(str, case["fields"].values()), _understood(reply))


def test_outlook_web_html_only_sign_off_and_signature_block(intake: Intake) -> None:
    case, reply = _filed(intake, "outlook-web-html-only.eml")
    assert case["description"] == ("How do I merge two households that were entered twice for the same family?\n"
                                   "Both have the same address and guardians.")
    assert case["fields"]["Location within Product"] == "Census > Households"
    _clean(case["description"], _understood(reply))


def test_gmail_html_signature_in_divs(intake: Intake) -> None:
    case, reply = _filed(intake, "gmail-html-signature.eml")
    assert case["contact"] == "kelly.kapowski@bayside.example"
    assert case["description"] == ("I need a list of every household with more than one enrolled student for our "
                                   "back-to-school mailing.\n"
                                   "Which report gives me that, and can it be limited to one school?")
    assert "Kelly Kapowski" not in case["description"]
    _clean(case["description"], _understood(reply))


def test_apple_mail_name_and_title_block(intake: Intake) -> None:
    case, reply = _filed(intake, "apple-mail.eml")
    assert case["fields"]["Who is impacted?"] == "English Lit 1100 students"
    assert case["fields"]["Steps to Reproduce"].splitlines()[-1] == "3. Open a student's transcript"
    assert "Zack Morris" not in _understood(reply)
    _clean(*map(str, case["fields"].values()), _understood(reply))


def test_iphone_footer(intake: Intake) -> None:
    case, reply = _filed(intake, "iphone.eml")
    assert case["priority"] == "Critical"
    assert case["fields"]["Error Message"] == "503 Service Unavailable"
    _clean(case["description"], *map(str, case["fields"].values()), _understood(reply))


def test_thunderbird_format_flowed_is_rejoined(intake: Intake) -> None:
    case, reply = _filed(intake, "thunderbird-flowed.eml")
    assert case["fields"]["Error Message"] == ("An error occurred during local report processing. "
                                               "The connection to the report server timed out.")
    assert case["description"] == ("Every night since Friday the scheduled attendance reports fail on our reporting "
                                   "server between 1 and 2 AM. The daytime reports run fine.\n\n"
                                   "Nothing was changed on the server that week.")
    assert case["fields"]["Issue Began"] == "2026-11-27"
    assert "fail on our reporting server between 1 and 2 AM. The daytime reports run fine." in reply.replace(
        "\n    ", " ")
    _clean(case["description"], *map(str, case["fields"].values()), _understood(reply))
