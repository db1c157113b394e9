"""parsers.subject: reply prefixes, [Case #N] tags, [Case Type] prefixes and template requests."""
from __future__ import annotations

import pytest

from parsers.subject import case_number_tag, case_type_prefix, strip_reply_prefixes, template_request


@pytest.mark.parametrize("subject, expected", [
    ("Re: Grade Book", "Grade Book"),
    ("RE: Fwd: FW: Grade Book", "Grade Book"),
    ("AW: WG: Noten", "Noten"),
    ("SV: VS: Antw: Rif: Enc: TR: R: x", "x"),
    ("Re[2]: Re(3): totals", "totals"),
    ("  re :  fwd:totals ", "totals"),
    ("Grade Book", "Grade Book"),
    ("Request: more trainings", "Request: more trainings"),
    ("Regarding: x", "Regarding: x"),
    ("Report totals", "Report totals"),
    ("[Case #4] Re: x", "[Case #4] Re: x"),
])
def test_strip_reply_prefixes(subject: str, expected: str) -> None:
    assert strip_reply_prefixes(subject) == expected


@pytest.mark.parametrize("subject, expected", [
    ("Re: [Case #12] Grade Book", 12),
    ("[Case # 12] x", 12),
    ("[case #12]", 12),
    ("Fwd: update on [ CASE#7 ]", 7),
    ("Case #12 without brackets", None),
    ("[Case #] x", None),
    ("Grade Book", None),
])
def test_case_number_tag(subject: str, expected: int | None) -> None:
    assert case_number_tag(subject) == expected


@pytest.mark.parametrize("subject, expected", [
    ("[Data Restore] Lost enrollments", ("Data Restore", "Lost enrollments")),
    ("Re: [Data Restore]   Lost enrollments ", ("Data Restore", "Lost enrollments")),
    ("[ Server  Access ]", ("Server Access", "")),
    ("Re: [Case #4] x", (None, "x")),
    ("Fwd: [Case #1] Teachers unable to post grades", (None, "Teachers unable to post grades")),
    ("FW: Re: [Case #1] [Application Issue] Grades", ("Application Issue", "Grades")),
    ("[Case #6] [Case #1] Grades", (None, "Grades")),
    ("Question about [case # 3] from last week", (None, "Question about from last week")),
    ("Lost enrollments [Data Restore]", (None, "Lost enrollments [Data Restore]")),
    ("[] x", (None, "[] x")),
    ("Lost enrollments", (None, "Lost enrollments")),
])
def test_case_type_prefix(subject: str, expected: tuple[str | None, str]) -> None:
    assert case_type_prefix(subject) == expected


@pytest.mark.parametrize("subject, expected", [
    ("template", (True, None)),
    ("  TEMPLATE  ", (True, None)),
    ("Template?", (True, None)),
    ("template.", (True, None)),
    ("template Data Restore", (True, "Data Restore")),
    ("Template: data restore", (True, "data restore")),
    ("template - server access!", (True, "server access")),
    ("Template for Data Restore", (True, "Data Restore")),
    ("Re: template", (False, None)),
    ("templates are broken", (False, None)),
    ("Grade Book template missing", (False, None)),
    ("", (False, None)),
])
def test_template_request(subject: str, expected: tuple[bool, str | None]) -> None:
    assert template_request(subject) == expected
