"""`intake show N` and `intake ingest --dry-run` in text: values as people read them, the same for both."""
from __future__ import annotations

from conftest import DATA, Intake, compose, future

ZACK = "Zack Morris <zack.morris@bayside.example>"
SEED = DATA / "seed_case_example.eml"


def _fields_block(show_out: str) -> list[str]:
    """The lines of `show` from its Description to the last of the type's own fields."""
    lines = show_out.splitlines()
    start = lines.index("  Description:")
    end = next(i for i, line in enumerate(lines) if line.startswith("  Expected Results:"))
    return lines[start:end + 1]


def test_show_prints_people_values_not_python_ones(intake: Intake) -> None:
    assert intake.run("ingest", str(SEED)).code == 0

    shown = intake.run("show", "1")

    assert shown.code == 0
    assert "  Billable: no" in shown.out.splitlines()
    assert "  Error Message: -" in shown.out.splitlines()  # given empty: shown as missing
    assert "False" not in shown.out and "None>" not in shown.out
    assert "Error Message: None" not in shown.out


def test_a_case_that_may_be_billable_says_so(intake: Intake) -> None:
    intake.ingest(compose(ZACK, "Standards-based grading consult", (
        "Case Type: Request Consulting\n"
        f"Preferred Consult Date: {future(10)}\n"
        "Description: Guidance on moving to standards-based grading.\n")))

    shown = intake.run("show", str(intake.cases()[-1]["number"]))

    assert "  Billable: may be billable" in shown.out.splitlines()
    assert "True" not in shown.out


def test_a_message_without_message_id_shows_no_empty_brackets(intake: Intake) -> None:
    raw = (b"From: zack.morris@bayside.example\r\nTo: support@intake.example\r\nSubject: Households\r\n\r\n"
           b"Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n")
    intake.ingest(raw)

    shown = intake.run("show", str(intake.cases()[-1]["number"]))

    assert "<None>" not in shown.out and "None" not in shown.out
    [heading] = [line for line in shown.out.splitlines() if "inbound case_created" in line]
    assert heading.endswith("inbound case_created zack.morris@bayside.example: Households")


def test_the_dry_run_prints_a_cases_fields_as_show_does(intake: Intake) -> None:
    dry = intake.run("ingest", "--dry-run", str(SEED))
    assert intake.run("ingest", str(SEED)).code == 0
    shown = intake.run("show", "1")

    block = _fields_block(shown.out)
    assert block[1].startswith("    None of the English Literature teachers")  # the description, indented
    assert "  Steps to Reproduce: 1. Log in as teacher Anne Shirley" in block
    assert "    2. In Campus Learning, go to Grade Book for 1100-1" in block  # later lines indented
    dry_lines = dry.out.splitlines()
    at = dry_lines.index(block[0])
    assert dry_lines[at:at + len(block)] == block
    assert "  Subject: Teachers unable to post grades" in dry_lines
    assert "Error Message: None" not in dry.out
