"""The README's first-case walk-through works as written: its example files make cases, in its order."""
from __future__ import annotations

import re

from conftest import DATA, REPO, Intake


def _swaks_data_arguments() -> list[str]:
    return re.findall(r"--data\s+(@?[\w./-]+\.eml)", (REPO / "README.md").read_text(encoding="utf-8"))


def test_swaks_is_given_its_file_as_data_at_file() -> None:
    arguments = _swaks_data_arguments()
    assert arguments, "the README no longer shows sending by swaks"
    for argument in arguments:
        assert argument.startswith("@"), f"swaks reads a file only as --data @FILE, not {argument}"
        assert (REPO / argument[1:]).is_file(), argument


def test_the_message_sent_in_step_4_is_a_new_case_after_step_3(intake: Intake) -> None:
    step_3 = intake.run("ingest", str(DATA / "seed_case_example.eml"))
    assert "case_created #1" in step_3.out
    for argument in _swaks_data_arguments():
        step_4 = intake.run("ingest", str(REPO / argument.removeprefix("@")))
        assert step_4.code == 0, step_4.out
        assert "duplicate" not in step_4.out and "case_created #2" in step_4.out, step_4.out
