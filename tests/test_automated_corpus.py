"""Real mail sent by programs, as public mail-library test suites publish it, is never answered.

tests/data/automated/ holds bounces of many mail systems (Postfix, Exim,
Sendmail, qmail, Exchange and Office 365, Gmail, a Yahoo rejection, the
Japanese carriers au/KDDI), ARF complaints, out-of-office replies in several
languages, a read receipt, a calendar acceptance, a challenge-response, list
mail and a DMARC aggregate report. SOURCES.md names the repository, path and
licence of each. Every one is ingested through `intake ingest` on SQLite and
PostgreSQL and must end `ignored` with a reason, with nothing queued and
nothing sent; a few are ingested again with CR-only line endings.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import DATA, Intake

AUTOMATED = DATA / "automated"
SAMPLES = sorted(AUTOMATED.glob("*.eml"))
IGNORED = "ignored, never answered: "

# One of each kind, with CRLF and LF originals among them.
CR_ONLY = (
    "bounce-postfix-undelivered-mail.eml",
    "bounce-office365-undeliverable.eml",
    "bounce-jp-kddi-mailbox-full.eml",
    "arf-abuse-feedback-report.eml",
    "autoreply-lotus-notes-auto.eml",
    "mdn-read-receipt-displayed.eml",
    "calendar-ical-event-accepted.eml",
)


def cr_only(raw: bytes) -> bytes:
    """The message with every line ending a bare CR, as old Mac mail programs wrote it."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r")


def assert_never_answered(intake: Intake, raw: bytes) -> None:
    ran = intake.ingest(raw)
    assert ran.code == 0, ran.err
    outcome = intake.last_outcome()
    assert outcome["outcome"] == "ignored", f"{outcome['outcome']}: {outcome['reasons']}\n{ran.out}"
    why = [reason for reason in outcome["reasons"] if reason.startswith(IGNORED)]
    assert why and why[-1].removeprefix(IGNORED).strip(), outcome["reasons"]
    assert intake.outbox() == []
    assert intake.relay is not None and intake.relay.received == []
    assert [m["outcome"] for m in intake.messages()] == ["ignored"]


def test_the_corpus_covers_every_kind_and_each_file_has_a_recorded_source() -> None:
    names = [path.name for path in SAMPLES]
    kinds = {name.split("-", 1)[0] for name in names}
    assert {"bounce", "arf", "autoreply", "mdn", "calendar", "challenge", "list"} <= kinds
    assert len(names) >= 25
    sources = (AUTOMATED / "SOURCES.md").read_text(encoding="utf-8")
    assert [name for name in names if f"`{name}`" not in sources] == []
    assert set(CR_ONLY) <= set(names)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda path: path.stem)
def test_real_automated_mail_is_ignored_with_a_reason(intake: Intake, sample: Path) -> None:
    assert_never_answered(intake, sample.read_bytes())


@pytest.mark.parametrize("name", CR_ONLY, ids=lambda name: name.removesuffix(".eml"))
def test_with_cr_only_line_endings_it_is_still_ignored(intake: Intake, name: str) -> None:
    raw = cr_only((AUTOMATED / name).read_bytes())
    assert b"\n" not in raw
    assert_never_answered(intake, raw)
