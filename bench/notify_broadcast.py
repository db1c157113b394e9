"""Benchmark: a notice queued for 10,000 contacts while `intake serve` keeps taking mail.

Not a test: it prints figures (and with --json, one JSON object a later
bench/run.py can collect). It makes a fresh database (SQLite by default, or
--database-url), adds N contacts, starts a real `intake serve` (SMTP on
loopback, mail out to its Maildir), and while a probe sends a case message
over SMTP every --probe-interval seconds, queues an incident to every
contact through the same code `intake notify incident` runs. Reported: the
time to queue, and for the probes sent meanwhile, the SMTP answer time and
the time until each was processed (its outcome stored): intake is "not
stalled" when every probe was accepted and processed within --stall-seconds.

    .venv/bin/python bench/notify_broadcast.py [--contacts 10000] [--database-url URL] [--json]

`bench/run.py` calls it by the contract of `bench/README.md` instead, on an
instance it made:

    python bench/notify_broadcast.py --config CONFIG --contacts N --workdir DIR [--quick]

and reads the last line of stdout: one JSON object with `contacts`,
`queued_seconds`, `accepted_meanwhile_msgs` (messages accepted over SMTP by
senders flooding intake while the notices were queued) and
`delivered_per_second` (the notices delivered to a local aiosmtpd relay).
"""
from __future__ import annotations

import argparse
import json
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from sqlalchemy import func, insert, select

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from intake.config import load_config  # noqa: E402
from intake.notify.notices import create_notice  # noqa: E402
from intake.notify.states import NoticeKind  # noqa: E402
from intake.store.database import open_store  # noqa: E402
from intake.store.migrate import upgrade  # noqa: E402
from intake.store.models import Account, Contact, InboundMessage, OutboundMessage, account_contacts, utcnow  # noqa: E402

PROBE_SENDER = "probe@district-0.example"


@dataclass
class Probe:
    message_id: str
    sent: float
    smtp_seconds: float | None = None
    error: str | None = None


@dataclass
class Probing:
    probes: list[Probe] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(root: Path, url: str | None, port: int) -> Path:
    path = root / "config.toml"
    database = f'[database]\nurl = "{url}"\n' if url else ""
    (root / "secret").write_text("bench-broadcast-secret\n", encoding="utf-8")  # serve needs one on PostgreSQL
    path.write_text(f'[intake]\nsupport_addresses = ["support@intake.example"]\ndata_dir = "{root / "var"}"\n'
                    f'{database}[smtp]\nhost = "127.0.0.1"\nport = {port}\n'
                    f'[conversations]\nsecret_file = "{root / "secret"}"\n', encoding="utf-8")
    return path


def _add_contacts(url: str, count: int) -> None:
    store = open_store(url)
    with store.session() as session, session.begin():
        accounts = max(1, count // 20)  # twenty contacts a district
        session.execute(insert(Account), [{"name": f"District {n}"} for n in range(accounts)])
        ids = dict(session.execute(select(Account.name, Account.id)).all())
        now = utcnow()
        session.execute(insert(Contact), [
            {"email": f"contact{n}@district-{n % accounts}.example", "first_name": "Contact", "last_name": str(n),
             "contact_type": "Authorized" if n % 3 else "Technical", "areas": [], "active": True, "bounces": 0,
             "bouncing": False, "created": now, "modified": now, "title": "", "primary_phone": "",
             "secondary_phone": ""} for n in range(count)])
        session.execute(insert(Contact), [{"email": PROBE_SENDER, "first_name": "Probe", "last_name": "Sender",
                                           "contact_type": "Authorized", "areas": [], "active": True, "bounces": 0,
                                           "bouncing": False, "created": now, "modified": now, "title": "",
                                           "primary_phone": "", "secondary_phone": ""}])
        contacts = dict(session.execute(select(Contact.email, Contact.id)
                                        .where(Contact.email.like("%@district-%"))).all())
        session.execute(insert(account_contacts), [
            {"account_id": ids[f"District {int(email.split('@district-')[1].split('.')[0])}"], "contact_id": cid}
            for email, cid in contacts.items()])
    store.engine.dispose()


def _probe_message(n: int) -> tuple[str, bytes]:
    message = EmailMessage()
    message["From"] = f"Probe <{PROBE_SENDER}>"
    message["To"] = "support@intake.example"
    message["Subject"] = f"Probe {n}"
    message["Message-ID"] = make_msgid(domain="bench.example")
    message.set_content("Case Type: Ask a Question\nModule: Census\nDescription: Is intake still answering?\n")
    return message["Message-ID"].strip("<>"), message.as_bytes().replace(b"\n", b"\r\n")


def _probe(port: int, interval: float, probing: Probing) -> None:
    n = 0
    while not probing.stop.is_set():
        message_id, raw = _probe_message(n)
        probe = Probe(message_id, time.monotonic())
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.sendmail(PROBE_SENDER, ["support@intake.example"], raw)
            probe.smtp_seconds = time.monotonic() - probe.sent
        except (OSError, smtplib.SMTPException) as exc:
            probe.error = f"{type(exc).__name__}: {exc}"
        probing.probes.append(probe)
        n += 1
        probing.stop.wait(interval)


def _processed_after(url: str, probes: list[Probe], deadline: float) -> dict[str, float]:
    """Seconds from sending to a stored outcome, for each probe processed before `deadline`."""
    store = open_store(url)
    done: dict[str, float] = {}
    try:
        while time.monotonic() < deadline and len(done) < len(probes):
            with store.session() as session:
                rows = session.execute(select(InboundMessage.message_id, InboundMessage.processed)
                                       .where(InboundMessage.outcome.is_not(None))).all()
            seen = {message_id for message_id, _ in rows}
            now = time.monotonic()
            for probe in probes:
                if probe.message_id in seen and probe.message_id not in done:
                    done[probe.message_id] = now - probe.sent  # an upper bound: when it was seen done
            time.sleep(0.05)
    finally:
        store.engine.dispose()
    return done


def run(contacts: int, url: str | None, probe_interval: float, stall_seconds: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="intake-bench-", ignore_cleanup_errors=True) as folder:
        root = Path(folder)
        port = _free_port()
        config = load_config(_config(root, url, port))
        upgrade(config.database_url)
        _add_contacts(config.database_url, contacts)
        log = (root / "serve.log").open("wb")
        daemon = subprocess.Popen([sys.executable, "-m", "intake.cli", "--config", str(config.path), "serve"],
                                  stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            _wait_for_port(port, daemon)
            probing = Probing()
            prober = threading.Thread(target=_probe, args=(port, probe_interval, probing), daemon=True)
            prober.start()
            time.sleep(1.0)  # probes before the broadcast: the baseline
            store = open_store(config.database_url)
            started = time.monotonic()
            with store.session() as session, session.begin():
                done = create_notice(session, config, kind=NoticeKind.INCIDENT, title="Benchmark incident",
                                     body="Campus is inaccessible for most users; we are investigating.",
                                     draft=False, now=utcnow())
            queued_seconds = time.monotonic() - started
            time.sleep(2.0)  # probes after it
            probing.stop.set()
            prober.join(timeout=60)
            during = [p for p in probing.probes if p.sent >= started - probe_interval]
            processed = _processed_after(config.database_url, probing.probes, time.monotonic() + 60)
            with store.session() as session:
                queued_rows = session.scalar(select(func.count()).select_from(OutboundMessage)
                                             .where(OutboundMessage.kind == "notice"))
            store.engine.dispose()
        finally:
            daemon.kill()  # the figures are taken; delivering the 10,000 messages is not measured here
            daemon.wait(timeout=60)
            log.close()
    return _figures(contacts, done.recipients, int(queued_rows or 0), queued_seconds, probing.probes, during,
                    processed, stall_seconds, url)


def _wait_for_port(port: int, daemon: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise SystemExit(f"intake serve exited with {daemon.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("intake serve did not listen within 30 s")


def _figures(contacts: int, recipients: int, rows: int, queued: float, probes: list[Probe], during: list[Probe],
             processed: dict[str, float], stall: float, url: str | None) -> dict[str, object]:
    smtp = [p.smtp_seconds for p in during if p.smtp_seconds is not None]
    waits = [processed[p.message_id] for p in during if p.message_id in processed]
    stalled = (any(p.error for p in during) or len(waits) < len(during) or max(smtp, default=0) > stall
               or max(waits, default=0) > stall)
    return {"benchmark": "notify_broadcast", "database": "sqlite" if not url else url.split(":")[0],
            "contacts": contacts, "recipients": recipients, "outbox_rows": rows, "queue_seconds": round(queued, 2),
            "target_queue_seconds": 10, "probes": len(probes), "probes_during": len(during),
            "probe_errors": [p.error for p in during if p.error],
            "smtp_answer_seconds_max": round(max(smtp, default=0), 3),
            "smtp_answer_seconds_median": round(statistics.median(smtp), 3) if smtp else None,
            "processed_seconds_max": round(max(waits, default=0), 3),
            "processed_seconds_median": round(statistics.median(waits), 3) if waits else None,
            "stalled": stalled, "ok": queued < 10 and not stalled}


# --- bench/run.py's contract ----------------------------------------------------------------------------

FLOOD_SENDERS = 4  # SMTP clients sending as fast as intake answers while the notices are queued


class _Relay:
    """A local aiosmtpd relay that counts what it is given, for the delivery rate."""

    def __init__(self) -> None:
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        now = time.monotonic()
        self.first = self.first if self.first is not None else now
        self.count, self.last = self.count + 1, now
        return "250 2.0.0 Ok: queued"


def _flood(port: int, stop: threading.Event, accepted: list[float]) -> None:
    n = 0
    while not stop.is_set():
        _, raw = _probe_message(n)
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.sendmail(PROBE_SENDER, ["support@intake.example"], raw)
            accepted.append(time.monotonic())
        except (OSError, smtplib.SMTPException):
            pass
        n += 1


def run_contract(config_path: Path, contacts: int, workdir: Path) -> dict[str, object]:
    """The broadcast on bench/run.py's instance: queue time, SMTP acceptance meanwhile, delivery to a relay."""
    from aiosmtpd.controller import Controller

    relay = _Relay()
    controller = Controller(relay, hostname="127.0.0.1", port=_free_port())
    controller.start()
    text = config_path.read_text(encoding="utf-8")
    configured = workdir / "config.toml"
    outgoing = f'[outgoing]\nrelay_host = "127.0.0.1"\nrelay_port = {controller.port}\nrelay_security = "none"\n\n'
    configured.write_text(text.replace("[smtp]", outgoing + "[smtp]", 1), encoding="utf-8")
    config = load_config(configured)
    _add_contacts(config.database_url, contacts)
    log = (workdir / "serve.log").open("wb")
    daemon = subprocess.Popen([sys.executable, "-m", "intake.cli", "--config", str(configured), "serve"],
                              stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    stop, accepted = threading.Event(), []
    try:
        _wait_for_port(config.smtp.port, daemon)
        floods = [threading.Thread(target=_flood, args=(config.smtp.port, stop, accepted), daemon=True)
                  for _ in range(FLOOD_SENDERS)]
        for flood in floods:
            flood.start()
        time.sleep(1.0)  # the senders are under way
        store = open_store(config.database_url)
        started = time.monotonic()
        with store.session() as session, session.begin():
            create_notice(session, config, kind=NoticeKind.INCIDENT, title="Benchmark incident",
                          body="Campus is inaccessible for most users; we are investigating.",
                          draft=False, now=utcnow())
        finished = time.monotonic()
        stop.set()
        for flood in floods:
            flood.join(timeout=60)
        meanwhile = sum(started <= at <= finished for at in accepted)
        deadline = time.monotonic() + 600
        while relay.count < contacts and time.monotonic() < deadline and daemon.poll() is None:
            time.sleep(0.2)
        store.engine.dispose()
    finally:
        daemon.terminate()
        daemon.wait(timeout=120)
        log.close()
        controller.stop()
    spread = (relay.last or 0) - (relay.first or 0)
    return {"contacts": contacts, "queued_seconds": round(finished - started, 3),
            "accepted_meanwhile_msgs": meanwhile,
            "delivered_per_second": round(relay.count / spread, 1) if relay.count > 1 and spread > 0 else None,
            "delivered": relay.count}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="bench/run.py's instance (its contract, bench/README.md)")
    parser.add_argument("--workdir", type=Path, help="with --config: where to write")
    parser.add_argument("--quick", action="store_true", help="with --config: accepted, nothing changes")
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--probe-interval", type=float, default=0.25, help="seconds between probe messages")
    parser.add_argument("--stall-seconds", type=float, default=10.0,
                        help="a probe answered or processed later than this means intake stalled")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.config is not None:
        if args.workdir is None:
            parser.error("--config needs --workdir")
        print(json.dumps(run_contract(args.config, args.contacts, args.workdir)))
        return 0
    figures = run(args.contacts, args.database_url, args.probe_interval, args.stall_seconds)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:28} {value}")
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
