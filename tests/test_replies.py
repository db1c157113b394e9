"""The replies intake sends: headers, both parts, and what each kind of reply tells a district contact."""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path

import pytest

from intake.config import Config, config_from_mapping
from intake.mailout.compose import Answer, Original, compose_answer, new_message_id
from parsers.template import parse_template
from routing.contacts import AccountView, ContactView
from routing.outcomes import AskForInformation, CaseDraft, CreateCase, Problem, Refuse, SendTemplates
from routing.schema import CASE_TYPES, CaseType, ContactType, known_labels

LABELS = known_labels()

REPO = Path(__file__).resolve().parent.parent
BAYSIDE = AccountView(1, "Bayside School District")
ZACK = ContactView(1, "zack@bayside.example", "Zack", "Morris", ContactType.AUTHORIZED, True, None, (BAYSIDE,))
KELLY = ContactView(2, "kelly@bayside.example", "Kelly", "Kapowski", ContactType.TECHNICAL, True, None, (BAYSIDE,))


@pytest.fixture(scope="module")
def config() -> Config:
    return config_from_mapping({}, base=REPO, path=None)


# --- helpers that read like the domain ----------------------------------------------

def case_draft(case_type: CaseType = CaseType.APPLICATION_ISSUE, *, contact: ContactView = ZACK,
               priority: str = "Medium", priority_note: str | None = None,
               subject: str = "Teachers unable to post grades",
               description: str = "None of the English Literature teachers can post grades.",
               fields: dict[str, object] | None = None) -> CaseDraft:
    spec = CASE_TYPES[case_type]
    own = fields or {}
    return CaseDraft(spec=spec, account=BAYSIDE, contact=contact, submitted_by=ZACK, priority=priority,
                     priority_note=priority_note, subject=subject, description=description, fields=own,
                     fields_as_written={k: str(v) for k, v in own.items()}, module=str(own.get("Module", "")) or None,
                     department=spec.department, attachments=())


def acknowledgement(draft: CaseDraft, *, number: int = 42, attachments: tuple[tuple[str, int], ...] = (),
                    message_id: str | None = "orig-1@bayside.example") -> Answer:
    also = ((draft.contact.full_name, draft.contact.email),) if draft.on_behalf else ()
    decision = CreateCase(reply_to=(("Zack Morris", ZACK.email), *also), draft=draft)
    return Answer(decision, Original(draft.subject, message_id, ("thread-0@bayside.example",)), case_number=number,
                  case_created=dt.datetime(2021, 9, 15, 18, 44, tzinfo=dt.UTC), attachments=attachments)


def needs_information(problems: tuple[Problem, ...], prefill: dict[str, str], case_type: CaseType | None,
                      subject: str = "Lost enrollment") -> Answer:
    decision = AskForInformation(reply_to=(("", ZACK.email),), problems=problems, case_type=case_type, prefill=prefill)
    return Answer(decision, Original(subject, "orig-2@bayside.example"))


def refusal(problems: tuple[Problem, ...], subject: str = "Please help") -> Answer:
    decision = Refuse(reply_to=(("", "stranger@elsewhere.example"),), problems=problems)
    return Answer(decision, Original(subject, None))


def template_request(*types: CaseType) -> Answer:
    decision = SendTemplates(reply_to=(("", ZACK.email),), types=types)
    return Answer(decision, Original("template", "orig-3@bayside.example"))


def sent(answer: Answer, config: Config) -> EmailMessage:
    """The reply as a receiving mail client would parse it."""
    raw = compose_answer(answer, config).as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def prose(text: str) -> str:
    """Text with its line wrapping undone, for finding a sentence in it."""
    return " ".join(text.split())


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


# --- headers and structure ------------------------------------------------------------

def test_every_kind_is_multipart_alternative_with_both_parts(config: Config) -> None:
    contexts = [acknowledgement(case_draft()), needs_information((Problem("Module is missing."),), {}, None),
                refusal((Problem("Not a contact.", refuse=True),)), template_request()]
    for ctx in contexts:
        message = sent(ctx, config)
        assert message.get_content_type() == "multipart/alternative"
        types = [part.get_content_type() for part in message.iter_parts()]
        assert types == ["text/plain", "text/html"]
        assert all(part.get_content_charset() == "utf-8" for part in message.iter_parts())


def test_acknowledgement_headers(config: Config) -> None:
    message = sent(acknowledgement(case_draft()), config)
    assert message["From"].addresses[0].addr_spec == config.from_address
    assert message["From"].addresses[0].display_name == config.from_name
    assert message["To"].addresses[0].addr_spec == ZACK.email
    assert message["To"].addresses[0].display_name == "Zack Morris"
    assert message["Subject"] == "[Case #42] Teachers unable to post grades"
    assert message["Date"].datetime is not None
    assert message["Message-ID"].startswith("<intake.")
    assert message["Message-ID"].endswith(f"@{config.message_id_domain}>")
    assert message["In-Reply-To"] == "<orig-1@bayside.example>"
    assert message["References"] == "<thread-0@bayside.example> <orig-1@bayside.example>"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["X-Loop"] == config.from_address
    assert message["Precedence"] is None


def test_no_threading_headers_without_an_original_message_id(config: Config) -> None:
    message = sent(acknowledgement(case_draft(), message_id=None), config)
    assert message["In-Reply-To"] is None
    assert message["References"] is None


def test_message_ids_are_unique_and_in_the_sender_domain(config: Config) -> None:
    first, second = new_message_id(config), new_message_id(config)
    assert first != second
    assert first.startswith("<intake.") and first.endswith(f"@{config.message_id_domain}>")


def test_reply_subjects_do_not_double_re(config: Config) -> None:
    def subject_of_reply_to(subject: str) -> str:
        return str(sent(needs_information((), {}, None, subject=subject), config)["Subject"])

    assert subject_of_reply_to("Lost enrollment") == "Re: Lost enrollment"
    assert subject_of_reply_to("RE: Lost enrollment") == "RE: Lost enrollment"
    assert sent(refusal((), subject="Please help"), config)["Subject"] == "Re: Please help"


def test_a_case_subject_with_a_line_break_makes_a_one_line_header(config: Config) -> None:
    message = sent(acknowledgement(case_draft(subject="Grades\nnot posting")), config)
    assert message["Subject"] == "[Case #42] Grades not posting"


# --- acknowledgement ------------------------------------------------------------------

def test_acknowledgement_names_the_case_and_everything_understood(config: Config) -> None:
    draft = case_draft(fields={"Module": "Grade Book",
                               "Steps to Reproduce": "1. Log in as Anne Shirley\n2. Click Post",
                               "Expected Results": "Post button to be active",
                               "Who is impacted?": "English Lit 1100 teachers", "Issue Began": "2021-09-07"})
    text = text_of(sent(acknowledgement(draft, attachments=(("screenshot.png", 2048), ("log.txt", 12))), config))
    assert "case #42" in text
    for expected in ("Application Issue", "Medium", "Application Support", "Bayside School District",
                     "Zack Morris <zack@bayside.example>", "Subject: Teachers unable to post grades",
                     "Module: Grade Book", "Expected Results: Post button to be active",
                     "Who is impacted?: English Lit 1100 teachers", "Issue Began: 09/07/2021", "09/15/2021",
                     "screenshot.png (2.0 KB)", "log.txt (12 bytes)", "routed to Application Support",
                     "[Case #42]"):
        assert expected in text, expected
    # Multi-line values keep their lines.
    assert "1. Log in as Anne Shirley\n" in text and "2. Click Post" in text
    # Form order: Subject, Description, then the type's own fields.
    assert text.index("Subject:") < text.index("Description:") < text.index("Module:") < text.index("Issue Began:")
    assert "on behalf of" not in text


def test_acknowledgement_says_who_submitted_on_behalf_of_whom(config: Config) -> None:
    text = text_of(sent(acknowledgement(case_draft(contact=KELLY)), config))
    assert "submitted on behalf of Kelly Kapowski by Zack Morris" in text


def test_acknowledgement_explains_a_changed_priority(config: Config) -> None:
    note = "Priority Critical is reserved for Report an Outage cases, so this case was made at High."
    message = sent(acknowledgement(case_draft(priority="High", priority_note=note)), config)
    assert note in prose(text_of(message))
    assert note in html_of(message)


def test_billable_note_only_where_the_type_may_be_billable(config: Config) -> None:
    consulting = sent(acknowledgement(case_draft(CaseType.REQUEST_CONSULTING,
                                                 fields={"Preferred Consult Date": "2030-05-01"})), config)
    application = sent(acknowledgement(case_draft()), config)
    assert "may be billable" in text_of(consulting)
    assert "account manager will confirm any charges" in prose(text_of(consulting))
    assert "may be billable" in html_of(consulting)
    assert "Preferred Consult Date: 05/01/2030" in text_of(consulting)
    assert "billable" not in text_of(application)
    assert "billable" not in html_of(application)


def test_html_part_escapes_field_values(config: Config) -> None:
    draft = case_draft(description="Grades vanish <script>alert('x')</script>", fields={"Module": "Grade Book"})
    message = sent(acknowledgement(draft), config)
    html = html_of(message)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    # The plain text part is not HTML and is not escaped.
    assert "<script>alert('x')</script>" in text_of(message)


def test_multi_choice_values_are_joined_with_commas(config: Config) -> None:
    draft = case_draft(CaseType.MODIFY_SUPPORT_CONTACTS,
                       fields={"Request Type": "Add", "Area of Responsibility": ["SIS", "Food Service"]})
    assert "Area of Responsibility: SIS, Food Service" in text_of(sent(acknowledgement(draft), config))


# --- needs information ----------------------------------------------------------------

def test_needs_information_lists_each_problem_and_prefills_the_template(config: Config) -> None:
    problems = (Problem("Module is required for Data Restore cases.", "Module"),
                Problem("We need your written permission to restore data.", "Written Permission"))
    prefill = {"Subject": "Lost enrollment", "Description": "Enrollment for\nAnne Shirley was deleted.",
               "Approximate Date of Loss": "04/01/2025"}
    message = sent(needs_information(problems, prefill, CaseType.DATA_RESTORE), config)
    text, html = text_of(message), html_of(message)
    assert "Lost enrollment" in text
    for problem in problems:
        assert f"- {problem.message}" in text
        assert problem.message in html
    assert "Subject: Lost enrollment\n" in text
    assert "Description: Enrollment for\nAnne Shirley was deleted.\n" in text
    assert "Approximate Date of Loss: 04/01/2025\n" in text
    assert "Module: \n" in text
    assert "How to fill in" in text
    assert "Written Permission (required): state that you give written permission" in prose(text)
    assert config.support_addresses[0] in text


def test_needs_information_template_starts_with_the_case_type_and_follows_form_order(config: Config) -> None:
    text = text_of(sent(needs_information((Problem("Missing."),), {}, CaseType.DATA_RESTORE), config))
    labels = ["Case Type"] + [f.label for f in CASE_TYPES[CaseType.DATA_RESTORE].all_fields if f.label != "Case Type"]
    positions = [text.index(f"\n{label}: ") for label in labels]
    assert positions == sorted(positions)
    assert "\nCase Type: Data Restore\n" in text


def test_a_filled_in_template_with_the_notes_kept_reads_back_as_written(config: Config) -> None:
    prefill = {"Subject": "Lost enrollment", "Description": "Enrollment for\nAnne Shirley was deleted.",
               "Module": "Census"}
    text = text_of(sent(needs_information((Problem("Missing."),), prefill, CaseType.DATA_RESTORE), config))
    # What a contact copies into a reply: the template lines, the notes below them and our footer.
    copied = text[text.index("Case Type: "):]
    parsed = parse_template(copied, LABELS)
    values = {f.label: f.text for f in parsed.fields if f.text}
    assert values == {**prefill, "Case Type": "Data Restore"}


def test_needs_information_without_a_case_type_lists_the_types_and_the_generic_template(config: Config) -> None:
    problem = Problem("The Case Type is missing.", "Case Type")
    message = sent(needs_information((problem,), {"Subject": "Lost enrollment"}, None), config)
    text, html = text_of(message), html_of(message)
    for spec in CASE_TYPES.values():
        assert f"{spec.case_type.value}: {spec.description}" in text
        assert spec.case_type.value in html
    assert "Case Type: \n" in text
    assert "Priority: \n" in text
    assert "Subject: Lost enrollment\n" in text
    assert "Description: \n" in text
    assert "Module:" not in text
    assert '"template <case type>"' in text
    assert "template &lt;case type&gt;" in html


# --- refusal --------------------------------------------------------------------------

def test_refusal_gives_each_reason_the_support_address_and_says_the_message_was_kept(config: Config) -> None:
    reasons = (Problem("stranger@elsewhere.example is not a support contact of any district.", refuse=True),
               Problem("Your message is larger than 25 MB.", refuse=True))
    message = sent(refusal(reasons), config)
    text = text_of(message)
    assert '"Please help"' in text
    for reason in reasons:
        assert f"- {reason.message}" in text
        assert reason.message in html_of(message)
    assert config.support_addresses[0] in text
    assert "has been kept" in text
    assert message["To"].addresses[0].addr_spec == "stranger@elsewhere.example"


# --- templates ------------------------------------------------------------------------

def test_template_of_one_type_has_every_field_and_marks_the_required_ones(config: Config) -> None:
    spec = CASE_TYPES[CaseType.DATA_RESTORE]
    message = sent(template_request(CaseType.DATA_RESTORE), config)
    text, html = text_of(message), html_of(message)
    assert message["Subject"] == "Case template: Data Restore"
    assert spec.description in text and spec.department in text
    assert "Case Type: Data Restore\n" in text
    for field in spec.all_fields:
        assert f"\n{field.label}: " in text, field.label
        assert field.label in html
    for label in sorted(f.label for f in spec.required):
        assert f"- {label} (required)" in text, label
    assert "Reason for Restore (required)" in re.sub(r"<[^>]+>", "", html)
    assert "data is kept for 30 days" in text
    assert "[Data Restore] Deleted enrollment" in text
    assert config.support_addresses[0] in text
    assert "billable" not in text


def test_template_of_a_billable_type_carries_the_billable_note(config: Config) -> None:
    text = text_of(sent(template_request(CaseType.REQUEST_TECHNICAL_SERVICES), config))
    assert "Request Technical Services cases may be billable" in text


def test_template_of_all_types_names_all_ten(config: Config) -> None:
    message = sent(template_request(), config)
    text, html = text_of(message), html_of(message)
    assert message["Subject"] == "Case templates"
    assert len(CaseType) == 10
    for spec in CASE_TYPES.values():
        assert f"==== {spec.case_type.value} ====" in text
        assert f"Case Type: {spec.case_type.value}\n" in text
        assert spec.case_type.value in html
        for field in spec.fields:
            assert f"\n{field.label}: " in text
    assert text.count("may be billable") == 2


def test_template_with_several_types_requested(config: Config) -> None:
    message = sent(template_request(CaseType.REQUEST_TRAINING, CaseType.SERVER_ACCESS), config)
    text = text_of(message)
    assert message["Subject"] == "Case templates"
    assert "==== Request Training ====" in text and "==== Server Access ====" in text
    assert "==== Data Restore ====" not in text
