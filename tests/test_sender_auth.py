"""Sender authentication (`[security] sender_auth`), the quarantine, and DKIM-signed outgoing mail.

Mail that claims to be from a contact and fails authentication is held for a
person and never answered; from anyone else it is refused without a reply.
With "authentication-results" only the topmost header of our own server is
read; with "dkim" intake verifies signatures itself, against keys a real DNS
server on loopback (tests/dns_server.py) publishes, over a real SMTP session
to `intake serve`.
"""
from __future__ import annotations

import base64
import email
import sqlite3
import subprocess
import threading
from collections.abc import Callable
from email import policy
from pathlib import Path

import dkim
import pytest

from conftest import DATA, SUPPORT, CapturingRelay, Intake, compose, with_settings
from dns_server import dns_server
from intake.act.worker import process_pass
from intake.config import load_config
from intake.mailin.accept import accept
from intake.store.database import open_store
from parsers.message import parse_message
from routing.authenticity import read_authentication_results
from smtp_helpers import RunningIntake, make_intake, on_the_wire, require_command, wait_until

__all__ = ["make_intake"]  # the fixture, used by the dkim test
Make = Callable[..., RunningIntake]

ZACK = "Zack Morris <zack.morris@bayside.example>"
ZACK_ADDRESS = "zack.morris@bayside.example"
STAFF = "helpdesk@intake.example"
OURS = "mx.intake.example"
QUESTION = "Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n"


# --- reading Authentication-Results: the topmost trusted header, failing closed ---------------------


@pytest.mark.parametrize(("headers", "authenticated", "why"), [
    ([], False, "no Authentication-Results header from a trusted server"),
    (["mx.evil.example; dmarc=pass header.from=bayside.example"], False, "no Authentication-Results header"),
    ([f"{OURS}; dmarc=fail header.from=bayside.example", f"{OURS}; dmarc=pass header.from=bayside.example"],
     False, "DMARC fail"),
    ([f"{OURS}; dkim=", f"{OURS}; dmarc=pass"], False, "cannot be read"),
    ([f"{OURS}; dkim=pass header.d=evil.test; spf=fail smtp.mailfrom=zack@bayside.example"], False,
     "no SPF or DKIM pass aligned with bayside.example"),
    ([f"{OURS}; spf=pass smtp.mailfrom=bounces@evil.test; dkim=none"], False,
     "no SPF or DKIM pass aligned with bayside.example"),
    ([f"{OURS}; dmarc=fail; dkim=pass header.d=bayside.example"], False, "DMARC fail"),
    ([f"{OURS.upper()}; dmarc=pass (p=reject) header.from=bayside.example"], True, "DMARC pass"),
    ([f"{OURS}; spf=pass smtp.mailfrom=zack@mail.bayside.example; dmarc=none"], True,
     "SPF pass for mail.bayside.example, aligned with bayside.example"),
    ([f"{OURS}; dkim=pass header.d=bayside.example header.s=s1"], True, "DKIM pass for bayside.example"),
])
def test_authentication_results_are_read_from_our_topmost_header_and_fail_closed(
        headers: list[str], authenticated: bool, why: str) -> None:
    verdict = read_authentication_results(headers, frozenset({OURS}), "bayside.example")
    assert verdict.checked and verdict.authenticated is authenticated, verdict
    assert why in verdict.reason


def test_headers_of_ours_written_by_the_sender_are_dropped_before_anything_reads_them() -> None:
    raw = compose(ZACK, "Households", QUESTION, headers={"X-Intake-Authenticated": "pass",
                                                         "X-INTAKE-Quarantine": "released"})
    message = parse_message(raw)
    assert not [name for name, _ in message.headers if name.lower().startswith("x-intake-")]
    assert message.header("Subject") == "Households"


# --- authentication-results, end to end -------------------------------------------------------------


@pytest.fixture
def checked(tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str],
            relay: tuple[CapturingRelay, int]) -> Intake:
    """An intake that believes only its own mail server's Authentication-Results, with a staff address."""
    instance = Intake(tmp_path, database_url, capsys, relay=relay)
    instance.config.write_text(with_settings(instance.config.read_text(), "conversations",
                                             f'staff_addresses = ["{STAFF}"]')
                               + f'[security]\nsender_auth = "authentication-results"\n'
                                 f'trusted_authserv_ids = ["{OURS}"]\n')
    assert instance.run("contacts", "import", str(DATA / "contacts.csv")).code == 0
    return instance


def received(result: str, raw: bytes) -> bytes:
    """``raw`` as our MTA hands it on: its Authentication-Results header on top."""
    return f"Authentication-Results: {OURS}; {result}\r\n".encode() + raw


def sent_to(intake: Intake) -> list[tuple[list[str], email.message.EmailMessage]]:
    relay = intake.relay
    assert relay is not None
    return [(to, email.message_from_bytes(raw, policy=policy.default))  # type: ignore[misc]
            for to, raw in zip(relay.recipients, relay.received, strict=True)]


def test_genuine_mail_makes_the_case(checked: Intake) -> None:
    checked.ingest(received("spf=pass smtp.mailfrom=zack.morris@bayside.example; dkim=pass header.d=bayside.example;"
                            " dmarc=pass header.from=bayside.example", compose(ZACK, "Households", QUESTION)))
    last = checked.last_outcome()
    assert last["outcome"] == "case_created", last
    assert any("sender authenticated: DMARC pass" in reason for reason in last["reasons"])
    assert [to for to, _ in sent_to(checked)] == [[ZACK_ADDRESS]]


def test_forged_mail_from_a_contact_is_quarantined_staff_told_and_release_makes_the_case(checked: Intake) -> None:
    forged = received("spf=fail smtp.mailfrom=evil.test; dkim=none; dmarc=fail (p=reject) header.from=bayside.example",
                      compose(ZACK, "Households", QUESTION, headers={
                          # the sender's own copy, below ours, and a header of intake's: neither is believed
                          "Authentication-Results": f"{OURS}; dmarc=pass header.from=bayside.example",
                          "X-Intake-Authenticated": "yes"}))
    assert checked.ingest(forged).code == 0
    last = checked.last_outcome()
    assert last["outcome"] == "quarantined" and last["case"] is None
    assert "claims to be from zack.morris@bayside.example" in last["reasons"][-2]
    assert checked.cases() == []

    mail = sent_to(checked)
    assert [to for to, _ in mail] == [[STAFF]]  # staff told; the claimed sender never answered
    notice = mail[0][1]
    assert notice["Subject"] == "Quarantined: mail claiming to be zack.morris@bayside.example"
    assert notice["Auto-Submitted"] == "auto-generated"
    held = checked.run("quarantine", "list", "--json").json()
    assert isinstance(held, list) and len(held) == 1
    entry = held[0]
    assert (entry["status"], entry["claimed_sender"], entry["subject"]) == ("held", ZACK_ADDRESS, "Households")
    text = notice.get_body(preferencelist=("plain",)).get_content()
    assert f"intake quarantine release {entry['id']}" in text and "DMARC fail" in text

    shown = checked.run("quarantine", "show", str(entry["id"]))
    assert shown.code == 0 and "DMARC fail" in shown.out and "Where is the household report?" in shown.out

    released = checked.run("quarantine", "release", str(entry["id"]), "--by", STAFF)
    assert released.code == 0, released.err
    assert "case_created" in released.out
    last = checked.last_outcome()
    assert last["outcome"] == "case_created" and last["case"] == checked.cases()[0]["number"]
    assert any("released from quarantine number" in reason for reason in last["reasons"])
    assert any("quarantined, not answered" in reason for reason in last["reasons"])  # the history is kept
    assert [to for to, _ in sent_to(checked)] == [[STAFF], [ZACK_ADDRESS]]
    assert checked.run("quarantine", "list", "--json").json() == []

    again = checked.run("quarantine", "release", str(entry["id"]))
    assert again.code == 2 and "already released by helpdesk@intake.example" in again.err
    assert len(checked.cases()) == 1


def test_mail_without_our_header_fails_closed_and_drop_keeps_it(checked: Intake) -> None:
    checked.ingest(compose(ZACK, "Households", QUESTION))
    entry = checked.run("quarantine", "list", "--json").json()[0]  # type: ignore[index]
    assert "no Authentication-Results header from a trusted server" in entry["reason"]

    dropped = checked.run("quarantine", "drop", str(entry["id"]))
    assert dropped.code == 0, dropped.err
    assert checked.run("quarantine", "list", "--json").json() == []
    everything = checked.run("quarantine", "list", "--all", "--json").json()
    assert [(e["id"], e["status"]) for e in everything] == [(entry["id"], "dropped")]  # type: ignore[index,union-attr]
    message = checked.last_outcome()
    assert message["outcome"] == "quarantined" and message["size"] > 0  # kept, never processed
    assert "dropped from the quarantine" in message["reasons"][-1]
    assert checked.run("quarantine", "release", str(entry["id"])).code == 2
    assert checked.cases() == [] and [to for to, _ in sent_to(checked)] == [[STAFF]]


def test_a_stranger_who_fails_is_refused_unanswered_and_never_quarantined(checked: Intake) -> None:
    checked.ingest(received("spf=fail smtp.mailfrom=spam.test; dmarc=fail header.from=victim.test",
                            compose("Victim <victim@victim.test>", "Invoice", "Pay now")))
    last = checked.last_outcome()
    assert last["outcome"] == "refused"
    assert "is no contact and sender authentication failed" in last["reasons"][-1]
    assert checked.run("quarantine", "list", "--all", "--json").json() == []
    assert sent_to(checked) == []


def test_an_authenticated_stranger_is_told_every_time_within_the_reply_cap(checked: Intake) -> None:
    for n in range(3):
        checked.ingest(received("dmarc=pass header.from=newdistrict.example",
                                compose("Pat <pat@newdistrict.example>", f"Question {n}", QUESTION)))
    assert [to for to, _ in sent_to(checked)] == [["pat@newdistrict.example"]] * 3


def test_a_listed_unauthenticated_domain_is_handled_as_unchecked(checked: Intake) -> None:
    checked.config.write_text(checked.config.read_text().replace(
        f'trusted_authserv_ids = ["{OURS}"]\n',
        f'trusted_authserv_ids = ["{OURS}"]\nunauthenticated_domains = ["bayside.example"]\n'))
    checked.ingest(compose(ZACK, "Households", QUESTION))
    last = checked.last_outcome()
    assert last["outcome"] == "case_created"
    assert any("listed in [security] unauthenticated_domains" in reason for reason in last["reasons"])


def test_authentication_results_without_trusted_ids_is_a_configuration_error(checked: Intake) -> None:
    checked.config.write_text(checked.config.read_text().replace(f'trusted_authserv_ids = ["{OURS}"]\n', ""))
    ran = checked.run("cases")
    assert ran.code == 2 and "needs trusted_authserv_ids" in ran.err


# --- dkim: verified by intake, over SMTP to `intake serve` ---------------------------------------------


def _rsa_key(directory: Path, name: str) -> tuple[Path, bytes]:
    """A fresh 2048-bit RSA key (PEM) and its DKIM TXT record."""
    openssl = require_command("openssl")
    key = directory / f"{name}.pem"
    subprocess.run([openssl, "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run([openssl, "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True,
                            capture_output=True).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def _signed(raw: bytes, key: Path, domain: str, selector: str = "s1") -> bytes:
    raw = on_the_wire(raw)
    return bytes(dkim.sign(raw, selector.encode(), domain.encode(), key.read_bytes(),
                           include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])) + raw


def test_dkim_mode_believes_only_aligned_signatures_that_verify(tmp_path: Path, make_intake: Make) -> None:
    bayside_key, bayside_record = _rsa_key(tmp_path, "bayside")
    evil_key, evil_record = _rsa_key(tmp_path, "evil")
    records = {"s1._domainkey.bayside.example": bayside_record, "s1._domainkey.evil.test": evil_record}
    with dns_server(records) as (server, asked):
        intake = make_intake()
        intake.config.write_text(with_settings(intake.config.read_text(), "conversations",
                                               f'staff_addresses = ["{STAFF}"]')
                                 + f'[security]\nsender_auth = "dkim"\ndns_server = "{server}"\n')
        intake.start()
        genuine = _signed(compose(ZACK, "Genuine", QUESTION, message_id="<genuine@bayside.example>"),
                          bayside_key, "bayside.example")
        unsigned = on_the_wire(compose(ZACK, "Unsigned", QUESTION, message_id="<unsigned@evil.test>"))
        other_domain = _signed(compose(ZACK, "Signed elsewhere", QUESTION, message_id="<other@evil.test>"),
                               evil_key, "evil.test")
        tampered = _signed(compose(ZACK, "Tampered", QUESTION, message_id="<tampered@bayside.example>"),
                           bayside_key, "bayside.example").replace(b"household report", b"payroll export")
        for raw in (genuine, unsigned, other_domain, tampered):
            intake.send(raw)
        stored = intake.wait_until_processed(4)
        assert "s1._domainkey.bayside.example." in asked.asked  # the key came from our DNS server
    outcomes = {m.message_id: (m.outcome, m.reasons) for m in stored.inbound}
    assert outcomes["genuine@bayside.example"][0] == "case_created"
    assert any("DKIM signature of bayside.example verified" in r for r in outcomes["genuine@bayside.example"][1])
    for message_id, why in (("unsigned@evil.test", "the message has no DKIM signature"),
                            ("other@evil.test", "not aligned with the From domain bayside.example"),
                            ("tampered@bayside.example", "body hash mismatch")):
        outcome, reasons = outcomes[message_id]
        assert outcome == "quarantined" and why in reasons[-2], (message_id, reasons)
    assert [c.subject for c in stored.cases] == ["Genuine"]
    kinds = sorted((m.kind, tuple(m.recipients)) for m in stored.outbox)
    assert kinds == [("acknowledgement", (ZACK_ADDRESS,))] + [("quarantine_notice", (STAFF,))] * 3


def test_while_dns_is_asked_for_a_key_the_database_stays_free_for_the_mail_edge(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # On SQLite, one writer: a worker waiting on a slow resolver must not hold the write lock, or the
    # SMTP listener could not store (and answer 250 to) anything meanwhile.
    database = tmp_path / "intake.db"
    key, record = _rsa_key(tmp_path, "bayside")
    slow = threading.Event()
    with dns_server({"s1._domainkey.bayside.example": record}, hold=slow) as (server, asked):
        intake = Intake(tmp_path, f"sqlite:///{database}", capsys)
        intake.config.write_text(intake.config.read_text() + f'[security]\nsender_auth = "dkim"\n'
                                                             f'dns_server = "{server}"\n')
        assert intake.run("contacts", "import", str(DATA / "contacts.csv")).code == 0
        config = load_config(intake.config)
        store = open_store(config.database_url)
        accept(store, _signed(compose(ZACK, "Genuine", QUESTION), key, "bayside.example"), "test")
        worker = threading.Thread(target=process_pass, args=(store, config))
        worker.start()
        try:
            wait_until(lambda: asked.asked, timeout=20, what="the worker to ask DNS for the key")
            other = sqlite3.connect(database, timeout=0)  # the mail edge, not willing to wait
            try:
                other.execute("BEGIN IMMEDIATE")  # raises "database is locked" while a writer holds it
                other.execute("ROLLBACK")
            finally:
                other.close()
        finally:
            slow.set()
            worker.join(timeout=30)
            store.engine.dispose()
    assert not worker.is_alive()
    assert intake.last_outcome()["outcome"] == "case_created"  # the key came, late, and verified


# --- DKIM-signed outgoing mail ----------------------------------------------------------------------------


def test_outgoing_mail_is_dkim_signed_when_a_key_is_configured(tmp_path: Path, database_url: str,
                                                               capsys: pytest.CaptureFixture[str],
                                                               relay: tuple[CapturingRelay, int]) -> None:
    key, record = _rsa_key(tmp_path, "intake")
    instance = Intake(tmp_path, database_url, capsys, relay=relay)
    instance.config.write_text(instance.config.read_text().replace(
        "[outgoing]\n", f'[outgoing]\ndkim_key_file = "{key}"\ndkim_selector = "mail2026"\n'))
    assert instance.run("contacts", "import", str(DATA / "contacts.csv")).code == 0
    instance.ingest(compose(ZACK, "Households", QUESTION))
    assert relay[0].received, "no mail was sent"
    raw = relay[0].received[-1]
    domain = SUPPORT.rpartition("@")[2]
    looked_up: list[bytes] = []

    def published(name: bytes, timeout: float = 5) -> bytes | None:
        looked_up.append(name)
        return record if name == f"mail2026._domainkey.{domain}.".encode() else None

    assert raw.startswith(b"DKIM-Signature:")
    assert dkim.verify(raw, dnsfunc=published), "the signature does not verify"
    assert looked_up == [f"mail2026._domainkey.{domain}.".encode()]
    signature = email.message_from_bytes(raw, policy=policy.default)["DKIM-Signature"]
    tags = {k.strip(): v.strip() for k, _, v in (part.partition("=") for part in str(signature).split(";"))}
    assert tags["d"] == domain and tags["s"] == "mail2026"
    assert {"from", "to", "subject", "message-id", "date"} <= set(tags["h"].replace(" ", "").lower().split(":"))
    assert not dkim.verify(raw.replace(b"Households", b"Householdz"), dnsfunc=published)


def test_a_dkim_key_without_a_selector_is_a_configuration_error(intake: Intake, tmp_path: Path) -> None:
    intake.config.write_text(intake.config.read_text().replace(
        "[outgoing]\n", f'[outgoing]\ndkim_key_file = "{tmp_path / "missing.pem"}"\n'))
    ran = intake.run("cases")
    assert ran.code == 2 and "dkim_key_file and dkim_selector must be given together" in ran.err


def test_a_dkim_key_that_cannot_sign_is_a_configuration_error(intake: Intake, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    intake.config.write_text(intake.config.read_text().replace(
        "[outgoing]\n", f'[outgoing]\ndkim_key_file = "{bad}"\ndkim_selector = "s1"\n'))
    ran = intake.run("cases")
    assert ran.code == 2 and "cannot sign" in ran.err
