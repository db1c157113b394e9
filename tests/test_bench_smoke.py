"""The benchmark's corpus is what it claims to be: every case type, replies, HTML-only mail, valid messages.

Only the shape of the generated mail is checked here, never a timing: the
figures belong to `python bench/run.py` on a known machine, not to the suite.
"""
from __future__ import annotations

import csv
import email
import mailbox
import sys
from collections import Counter
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from corpus import (  # noqa: E402  (bench/ is not a package; it is put on the path above)
    CSV_COLUMNS,
    Corpus,
    big_attachment_message,
    make_corpus,
    write_contacts_csv,
    write_mbox,
)

from routing.schema import CaseType  # noqa: E402

COUNT = 200


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return make_corpus(COUNT, seed=7)


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_the_mix_holds_every_case_type_replies_and_html_only_mail(corpus: Corpus) -> None:
    kinds = Counter(m.kind for m in corpus.messages)
    assert len(corpus.messages) == COUNT
    assert kinds == {"new_case": 120, "reply": 60, "html_only": 20}
    per_type = Counter(m.case_type for m in corpus.messages if m.kind == "new_case")
    assert set(per_type) == {t.value for t in CaseType}
    assert all(n == 12 for n in per_type.values())


def test_every_message_is_valid_mail_from_a_contact(corpus: Corpus) -> None:
    senders = {c.email for c in corpus.contacts}
    for m in corpus.messages:
        message = parsed(m.raw)
        assert not message.defects, m.message_id
        assert message["Message-ID"] == m.message_id
        assert message["From"].addresses[0].addr_spec == m.sender
        assert m.sender in senders
        assert message.get_body(preferencelist=("plain", "html")) is not None
    assert len({m.message_id for m in corpus.messages}) == COUNT


def test_replies_quote_an_earlier_message_of_the_corpus(corpus: Corpus) -> None:
    earlier: set[str] = set()
    mailers = set()
    for m in corpus.messages:
        if m.kind == "reply":
            message = parsed(m.raw)
            assert message["In-Reply-To"] in earlier
            mailers.add(message["X-Mailer"])
            body = message.get_body(preferencelist=("plain",))
            assert body is not None
            text = body.get_content()
            assert ("wrote:" in text or "a écrit" in text or "Sent:" in text or "Gesendet:" in text), text
        earlier.add(m.message_id)
    assert len(mailers) >= 4


def test_html_only_mail_has_no_plain_part(corpus: Corpus) -> None:
    for m in (m for m in corpus.messages if m.kind == "html_only"):
        parts = [p.get_content_type() for p in parsed(m.raw).walk()]
        assert "text/html" in parts and "text/plain" not in parts


def test_attachments_and_non_ascii_are_common(corpus: Corpus) -> None:
    attached = sum(any(p.get_filename() for p in parsed(m.raw).walk()) for m in corpus.messages)
    non_ascii = sum(any(ch > "\x7f" for ch in str(parsed(m.raw)["From"])) for m in corpus.messages)
    assert attached >= COUNT // 20
    assert non_ascii >= COUNT // 5


def test_the_mbox_and_contacts_files_read_back(corpus: Corpus, tmp_path: Path) -> None:
    write_mbox(tmp_path / "corpus.mbox", corpus.messages)
    write_contacts_csv(tmp_path / "contacts.csv", corpus.contacts)
    assert len(mailbox.mbox(str(tmp_path / "corpus.mbox"))) == COUNT
    with (tmp_path / "contacts.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == len(corpus.contacts) == 200


def test_the_big_attachment_message_carries_the_size_asked_for(corpus: Corpus) -> None:
    raw = big_attachment_message(corpus.contacts[0], 300_000)
    attachment = next(p for p in parsed(raw).walk() if p.get_filename())
    assert len(attachment.get_content()) == 300_000
