"""An inline reply keeps every answer, each under the quoted line it answers."""
from __future__ import annotations

from conftest import DATA, Intake

MAIL = DATA / "mail"


def test_interleaved_answers_are_kept_with_their_questions(intake: Intake) -> None:
    assert "case_created #1" in intake.run("ingest", str(DATA / "seed_case_example.eml")).out
    ran = intake.run("ingest", str(MAIL / "inline-reply.eml"))
    assert "comment_added" in ran.out, ran.out

    [comment] = intake.show(1)["comments"]
    assert comment["author"] == "zack.morris@bayside.example"
    assert comment["body"] == (
        "Hi,\n\nanswers below.\n\n"
        "> Which calendar are the teachers posting to?\n\n"
        "The 25-26 one, Campus High.\n\n"
        "> Does it happen for every section of English Lit 1100, or only some?\n\n"
        "Every section. Anne Shirley has three and none of them can post.\n\n"
        "Zack")
    assert "To look into case #1" not in comment["body"]  # only the line each answer answers
    assert "On 12/1/26" not in comment["body"]
