"""Replies read like a person wrote them: the case's own subject, tidy lines, matching underlines."""
from __future__ import annotations

import pytest

from conftest import DATA, Intake, compose

ZACK = "Zack Morris <zack.morris@bayside.example>"
LONG_SUBJECT = ("Teachers at every middle school in the district are unable to post quarter grades for "
                "English Language Arts sections taught by more than one teacher")
QUESTION = "Module: Census\nDescription: Which report lists every household with more than one student?\n"


def _underlines_match(text: str) -> None:
    lines = text.splitlines()
    underlined = [(lines[i - 1], line) for i, line in enumerate(lines) if line and set(line) == {"-"} and i]
    assert underlined, text
    for heading, line in underlined:
        assert len(heading) == len(line), (heading, line)


def _tidy(text: str, width: int = 76) -> None:
    long_lines = [line for line in text.splitlines() if len(line) > width]
    assert not long_lines, long_lines


def test_a_forwarded_case_message_is_a_new_case_without_the_old_tag(intake: Intake) -> None:
    assert "case_created #1" in intake.run("ingest", str(DATA / "seed_case_example.eml")).out
    forwarded = compose(ZACK, "Fwd: [Case #1] Teachers unable to post grades", (
        "Case Type: Ask a Question\n" + QUESTION + "\n---------- Forwarded message ---------\n"
        "From: Campus Support <support@intake.example>\nSubject: [Case #1] Teachers unable to post grades\n"))
    assert "case_created #2" in intake.ingest(forwarded).out
    assert intake.show(2)["subject"] == "Teachers unable to post grades"
    assert intake.outbox()[-1]["subject"] == "[Case #2] Teachers unable to post grades"
    assert "[Case #1]" not in intake.last_reply_text()


@pytest.mark.parametrize("subject", ["Re: [Case #99] Household report", "[Case #6] [Case #1] Household report"])
def test_our_tags_never_nest(intake: Intake, subject: str) -> None:
    intake.ingest(compose(ZACK, subject, "Case Type: Ask a Question\n" + QUESTION))
    [case] = intake.cases()
    assert case["subject"] == "Household report"
    assert intake.outbox()[-1]["subject"] == f"[Case #{case['number']}] Household report"


def test_the_acknowledgement_names_the_case_subject_without_its_type_prefix(intake: Intake) -> None:
    intake.ingest(compose(ZACK, "[Ask a Question] Household report", QUESTION))
    text = intake.last_reply_text()
    assert "[Ask a Question]" not in text
    assert "We have created case #1 for it:\n\n    Household report\n" in text.replace("\r\n", "\n")


def test_a_long_subject_keeps_the_acknowledgement_tidy(intake: Intake) -> None:
    intake.ingest(compose(ZACK, f"[Ask a Question] {LONG_SUBJECT}", QUESTION))
    text = intake.last_reply_text()
    _tidy(text)
    _underlines_match(text)
    assert LONG_SUBJECT in intake.last_reply_prose()


def test_the_status_mail_underlines_match_their_headings(intake: Intake) -> None:
    intake.ingest(compose(ZACK, f"[Ask a Question] {LONG_SUBJECT}", QUESTION))
    intake.ingest(compose(ZACK, "status"))
    text = intake.last_reply_text()
    _underlines_match(text)
    _tidy(text)
    assert "Closed in the last 90 days\n--------------------------\n" in text.replace("\r\n", "\n")
    assert f"#1 new, Medium {LONG_SUBJECT}" in intake.last_reply_prose()


def test_needs_information_quotes_the_subject_without_its_prefix_and_stays_tidy(intake: Intake) -> None:
    intake.ingest(compose(ZACK, f"[Server Access] {LONG_SUBJECT}", "Request Type: Reporting Server\n"))
    text = intake.last_reply_text()
    assert "[Server Access]" not in text.split("Case Type:")[0]
    assert f'We could not create a case from your message "{LONG_SUBJECT}" yet.' in intake.last_reply_prose()
    _tidy(text.split("Case Type:")[0])  # the prose, above the template lines


def test_an_outlook_name_is_greeted_in_the_right_order(intake: Intake) -> None:
    intake.ingest(compose('"Morris, Zack" <zack.morris@bayside.example>', "[Ask a Question] Households", QUESTION))
    assert intake.last_reply_text().startswith("Hello Zack Morris,")


def test_wrapping_leaves_quotes_and_indented_lines_as_written() -> None:
    from intake.mailout.templates import wrap_prose
    quote = "> " + "a quoted question that is long enough to be wrapped by anything that wraps " * 2
    log = "    at GradeBook.post (gradebook.js:12) " * 3
    prose = "word " * 30
    wrapped = wrap_prose("\n".join([quote, log, prose.strip()]))
    lines = wrapped.split("\n")
    assert lines[:2] == [quote, log]
    assert all(len(line) <= 72 for line in lines[2:]) and len(lines) > 3


def test_a_reply_is_quoted_printable_in_short_lines_and_decodes_to_what_was_written(intake: Intake) -> None:
    # A description with a line that is only a dot (which SMTP would take for the end of the data unless
    # escaped), a line far longer than SMTP allows, a trailing space and non-ASCII text.
    description = "Zoë's report, « Résumé » = broken \n.\n" + "x" * 1200
    intake.ingest(compose(ZACK, "[Ask a Question] Résumé = broken", f"Module: Census\nDescription: {description}\n"))
    [reply] = [m for m in intake.sent_mail() if m["Message-ID"].strip("<>") == intake.outbox()[-1]["message_id"]]
    raw = reply.as_bytes()
    boundary = reply.get_boundary()
    assert boundary is not None and boundary.startswith("=_")
    parts = list(reply.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert part["Content-Transfer-Encoding"] == "quoted-printable" and part.get_content_charset() == "utf-8"
        encoded = part.get_payload(decode=False)
        assert f"--{boundary}" not in encoded and "\n.\n" not in encoded.replace("\r\n", "\n")
    assert max(len(line) for line in raw.splitlines()) <= 78
    text = parts[0].get_content()
    assert "Zoë's report, « Résumé » = broken" in text and "x" * 60 in text
    assert "Résumé = broken" in parts[1].get_content()
