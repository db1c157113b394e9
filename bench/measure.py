"""The measurements. Each returns `Row`s for the report; a pair is always run interleaved, A/B/A/B.

Every figure is a median over the rounds of one run. intake and its peer run
one after the other on the same cores, each waiting until the other is idle,
so the ratio holds even when the machine is busy with something else.
"""
from __future__ import annotations

import datetime as dt
import json
import queue
import shutil
import smtplib
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import roundup_gw
from corpus import SUPPORT, Corpus, CorpusMessage, big_attachment_message, write_mbox
from harness import (
    DatabaseEngine,
    Instance,
    Timed,
    free_port,
    make_instance,
    run_timed,
    server,
)
from report import Row, mb, rate
from sqlalchemy import func, select, text

from intake.store.models import Case, Comment, Contact, InboundMessage, InboundRaw, OutboundMessage, account_contacts

BENCH = Path(__file__).resolve().parent
ATTACHMENT_BYTES = 25 * 1024 * 1024


@dataclass
class Context:
    """What a run shares: its folder, corpus, sizes and which tools it found."""

    workdir: Path
    corpus: Corpus
    contacts_csv: Path
    quick: bool
    rounds: int
    smtp_source: str | None
    smtp_sink: str | None
    roundup: Path | None
    tool_problems: dict[str, str] = field(default_factory=dict)
    roundup_rates: dict[str, float] = field(default_factory=dict)  # engine → Roundup's msg/s in this run
    ingest_peaks: dict[str, float] = field(default_factory=dict)  # engine → peak RSS of ingesting the corpus

    @property
    def ingest_count(self) -> int:
        return 1_000 if self.quick else 10_000

    def log(self, name: str) -> Path:
        return self.workdir / "logs" / name


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


# --- SMTP acceptance --------------------------------------------------------------------------------------


def smtp_acceptance(ctx: Context, db: DatabaseEngine) -> list[Row]:
    """intake serve against the do-nothing aiosmtpd server and smtp-sink, smtp-source as the client."""
    title = "SMTP acceptance, {s} session(s), 4 KB, new connection per message"
    if ctx.smtp_source is None or ctx.smtp_sink is None:
        why = ctx.tool_problems.get("postfix", "Postfix's smtp-source/smtp-sink not installed")
        return [Row(title.format(s=s), db.name, note=f"not available: {why}") for s in (1, 8, 32)]
    instance = make_instance(ctx.workdir, db, "smtp", ctx.contacts_csv)
    floor_port, sink_port = free_port(), free_port()
    count = 400 if ctx.quick else 2_000
    floor = [sys.executable, str(BENCH / "floor_server.py"), str(floor_port)]
    sink = [ctx.smtp_sink, "-4", "-u", "nobody", f"127.0.0.1:{sink_port}", "1024"]
    rows = []
    with (server(instance.intake("serve"), instance.port, ctx.log(f"{db.name}-smtp-serve.log")),
          server(floor, floor_port, ctx.log("floor.log")), server(sink, sink_port, ctx.log("smtp-sink.log"))):
        for sessions in (1, 8, 32):
            rates: dict[str, list[float]] = {"intake": [], "floor": [], "sink": []}
            errors = 0
            for _ in range(ctx.rounds):
                for name, port in (("intake", instance.port), ("floor", floor_port), ("sink", sink_port)):
                    seconds, failed = _smtp_source(ctx, port, sessions, count)
                    rates[name].append(count / seconds)
                    errors += failed if name == "intake" else 0
                    if name == "intake":
                        wait_until_idle(instance)
            rows.append(_acceptance_row(title.format(s=sessions), db.name, sessions, rates, errors))
    return rows


def _smtp_source(ctx: Context, port: int, sessions: int, count: int) -> tuple[float, int]:
    assert ctx.smtp_source is not None
    command = [ctx.smtp_source, "-4", "-s", str(sessions), "-m", str(count), "-l", "4096", "-M", "bench.localhost",
               "-f", "sender@example.org", "-t", SUPPORT, f"127.0.0.1:{port}"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    return seconds, len(done.stderr.splitlines())


def _acceptance_row(title: str, engine: str, sessions: int, rates: dict[str, list[float]], errors: int) -> Row:
    ours, floor, sink = (_median(rates[k]) for k in ("intake", "floor", "sink"))
    note = f"smtp-source reported {errors} error line(s) against intake" if errors else ""
    return Row(title, engine, ratio=ours / floor, target=">= 0.8x floor" if sessions == 8 else "",
               met=(ours / floor >= 0.8) if sessions == 8 else None, intake=rate(ours),
               peer=f"aiosmtpd do-nothing {rate(floor)}; smtp-sink {rate(sink)} (intake {ours / sink:.2f}x)",
               note=note)


def wait_until_idle(instance: Instance, timeout: float = 600.0) -> bool:
    """Until every stored message is processed and no outgoing mail is queued; False on timeout."""
    engine = instance.engine()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                pending = conn.scalar(select(func.count()).select_from(InboundMessage)
                                      .where(InboundMessage.processed.is_(None)))
                queued = conn.scalar(select(func.count()).select_from(OutboundMessage)
                                     .where(OutboundMessage.status == "queued"))
            if not pending and not queued:
                return True
            time.sleep(0.2)
        return False
    finally:
        engine.dispose()


# --- end to end over SMTP ---------------------------------------------------------------------------------


def send_over_smtp(port: int, messages: Sequence[CorpusMessage], sessions: int, per_second: float | None) -> int:
    """Send `messages` over `sessions` connections, paced at `per_second` if given; the number refused."""
    work: queue.Queue[tuple[int, CorpusMessage]] = queue.Queue()
    for item in enumerate(messages):
        work.put(item)
    start = time.perf_counter()
    failures: list[int] = []

    def client() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
            while True:
                try:
                    number, message = work.get_nowait()
                except queue.Empty:
                    return
                if per_second:
                    time.sleep(max(0.0, start + number / per_second - time.perf_counter()))
                try:
                    smtp.sendmail(message.sender, [SUPPORT], message.raw.replace(b"\n", b"\r\n"))
                except smtplib.SMTPException:
                    failures.append(number)

    threads = [threading.Thread(target=client) for _ in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(failures)


@dataclass(frozen=True)
class Timeline:
    received: dt.datetime
    processed: dt.datetime | None
    acknowledged: dt.datetime | None  # the first outgoing message the inbound one caused


def timelines(instance: Instance, after_id: int = 0) -> list[Timeline]:
    """For each stored message past `after_id`: received, processed and the first outbox row it caused."""
    engine = instance.engine()
    first_out = (select(OutboundMessage.inbound_message_id, func.min(OutboundMessage.created).label("created"))
                 .group_by(OutboundMessage.inbound_message_id).subquery())
    query = (select(InboundMessage.received, InboundMessage.processed, first_out.c.created)
             .outerjoin(first_out, first_out.c.inbound_message_id == InboundMessage.id)
             .where(InboundMessage.id > after_id))
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    finally:
        engine.dispose()
    return [Timeline(_aware(r[0]), _aware(r[1]), _aware(r[2])) for r in rows]


def _aware(value: dt.datetime | str | None) -> dt.datetime | None:
    """A UTC datetime from what the database gave (an aggregate over SQLite may come back as text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _last_id(instance: Instance) -> int:
    engine = instance.engine()
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.coalesce(func.max(InboundMessage.id), 0))) or 0)
    finally:
        engine.dispose()


def end_to_end(ctx: Context, db: DatabaseEngine) -> list[Row]:
    """A burst over 8 sessions (throughput to acknowledgement queued), then a steady 50 msg/s (latency)."""
    burst = ctx.corpus.messages[:500 if ctx.quick else 3_000]
    steady = ctx.corpus.messages[len(burst):len(burst) + (500 if ctx.quick else 3_000)]
    instance = make_instance(ctx.workdir, db, "e2e", ctx.contacts_csv)
    with server(instance.intake("serve"), instance.port, ctx.log(f"{db.name}-e2e-serve.log")):
        refused = send_over_smtp(instance.port, burst, 8, None)
        idle = wait_until_idle(instance)
        burst_lines = timelines(instance)
        mark = _last_id(instance)
        started = time.perf_counter()
        refused += send_over_smtp(instance.port, steady, 4, 50.0)
        offered = len(steady) / (time.perf_counter() - started)
        idle = wait_until_idle(instance) and idle
        steady_lines = timelines(instance, mark)
    note = ("" if idle else "did not finish within 10 min; ") + (f"{refused} message(s) refused" if refused else "")
    throughput = _throughput_row(ctx, db.name, burst_lines, note)
    return [throughput, _latency_row(db.name, steady_lines, offered, throughput.figure)]


def _throughput_row(ctx: Context, engine: str, lines: list[Timeline], note: str) -> Row:
    title = f"end to end, SMTP → case stored → acknowledgement queued ({len(lines)} messages, 8 sessions)"
    ends = [t.acknowledged or t.processed for t in lines if (t.acknowledged or t.processed)]
    if not lines or not ends:
        return Row(title, engine, note="no message was processed")
    seconds = (max(ends) - min(t.received for t in lines)).total_seconds()
    ours = len(lines) / seconds
    peer = ctx.roundup_rates.get(engine)
    ratio = ours / peer if peer else None
    return Row(title, engine, ratio=ratio, target=">= 10x Roundup (5x first milestone)",
               met=None if ratio is None else ratio >= 10, intake=rate(ours), figure=ours,
               peer=f"Roundup mail gateway {rate(peer)} (its ingest row)" if peer else "Roundup not measured",
               note=note)


def _latency_row(engine: str, lines: list[Timeline], offered: float, capacity: float | None) -> Row:
    title = "latency 250 → acknowledgement queued at a steady 50 msg/s"
    waits = sorted((t.acknowledged - t.received).total_seconds() for t in lines if t.acknowledged)
    if not waits:
        return Row(title, engine, note="no acknowledgement was queued")
    p99 = waits[min(len(waits) - 1, int(round(0.99 * len(waits))) - 1)]
    median = _median(waits)
    return Row(title, engine, target="p99 < 1 s", met=p99 < 1.0,
               intake=f"median {median * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms",
               note=f"{len(waits)} acknowledgements of {len(lines)} messages; offered {offered:.1f} msg/s"
               + (f"; above the {capacity:.1f} msg/s intake processes, so a backlog grows and the latency with it"
                  if capacity and capacity < offered else ""))


# --- ingest against Roundup's mail gateway ----------------------------------------------------------------


def ingest_vs_roundup(ctx: Context, db: DatabaseEngine, mbox: Path) -> list[Row]:
    count = ctx.ingest_count
    title = f"`intake ingest` of a {count:,}-message mbox, contacts imported"
    ours: list[Timed] = []
    theirs: list[Timed] = []
    made = ""
    issues = -1
    for round_ in range(ctx.rounds):
        instance = make_instance(ctx.workdir, db, f"ingest{round_}", ctx.contacts_csv)
        ours.append(run_timed(instance.intake("ingest", str(mbox)), ctx.log(f"{db.name}-ingest{round_}.log")))
        made = _outcome_summary(instance)
        if ctx.roundup is not None:
            theirs.append(_roundup_once(ctx, mbox, f"{db.name}-{round_}"))
            issues = roundup_gw.issue_count(ctx.workdir / f"roundup-{db.name}-{round_}")
    ours_rate = count / _median([t.seconds for t in ours])
    ours_peak = _median([t.peak_rss for t in ours])
    ctx.ingest_peaks[db.name] = ours_peak
    failed = sum(t.returncode not in (0,) for t in ours)
    note = f"intake made {made}" + (f"; {failed} ingest run(s) exited non-zero" if failed else "")
    if not theirs:
        why = ctx.tool_problems.get("roundup", "Roundup could not be installed")
        return [Row(title, db.name, intake=rate(ours_rate), note=f"{note}; Roundup not available: {why}"),
                Row(f"peak memory of that ingest ({count:,} messages)", db.name, intake=mb(ours_peak))]
    theirs_rate = count / _median([t.seconds for t in theirs])
    ctx.roundup_rates[db.name] = theirs_rate
    ratio = ours_rate / theirs_rate
    return [Row(title, db.name, ratio=ratio, target=">= 10x Roundup (5x first milestone)", met=ratio >= 10,
                intake=rate(ours_rate), peer=f"Roundup {roundup_gw.version()} mail gateway {rate(theirs_rate)}",
                note=note + f"; Roundup made {issues} issues (the rest are messages on them), on its SQLite "
                            "backend, and sends no replies (its nosy mail goes to a file)"),
            Row(f"peak memory of that ingest ({count:,} messages)", db.name,
                ratio=ours_peak / _median([t.peak_rss for t in theirs]), intake=mb(ours_peak),
                peer=f"Roundup {mb(_median([t.peak_rss for t in theirs]))}")]


def _roundup_once(ctx: Context, mbox: Path, label: str) -> Timed:
    home = ctx.workdir / f"roundup-{label}"
    roundup_gw.make_tracker(home, [c.email for c in ctx.corpus.contacts])
    copy = home / "incoming.mbox"
    shutil.copyfile(mbox, copy)  # the gateway empties the mailbox it reads
    return run_timed(roundup_gw.mailgw_command(home, copy), ctx.log(f"roundup-{label}.log"))


def _outcome_summary(instance: Instance) -> str:
    engine = instance.engine()
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(InboundMessage.outcome, func.count()).group_by(InboundMessage.outcome)).all()
    finally:
        engine.dispose()
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(rows, key=lambda r: -r[1]))


# --- memory for one message with a 25 MB attachment ------------------------------------------------------


def big_attachment(ctx: Context, db: DatabaseEngine) -> list[Row]:
    """Peak RSS of `intake ingest` of one 25 MB-attachment message, above that of one ordinary message."""
    contact = ctx.corpus.contacts[0]
    big, small = ctx.workdir / "big-attachment.eml", ctx.workdir / "one-message.eml"
    if not big.exists():
        big.write_bytes(big_attachment_message(contact, ATTACHMENT_BYTES))
        small.write_bytes(ctx.corpus.messages[0].raw)
    limit = 64 * 1024 * 1024  # the benchmark raises max_message_bytes (and the attachment limit) for this row
    peaks: dict[str, list[int]] = {"small": [], "big": []}
    made = ""
    for round_ in range(ctx.rounds):
        for name, path in (("small", small), ("big", big)):
            instance = make_instance(ctx.workdir, db, f"mem{name}{round_}", ctx.contacts_csv, max_message_bytes=limit)
            peaks[name].append(run_timed(instance.intake("ingest", str(path)),
                                         ctx.log(f"{db.name}-mem-{name}{round_}.log")).peak_rss)
            made = _outcome_summary(instance) if name == "big" else made
    extra = _median(peaks["big"]) - _median(peaks["small"])
    multiple = extra / ATTACHMENT_BYTES
    return [Row(f"one message with a 25 MB attachment ({big.stat().st_size / 2**20:.0f} MiB encoded)", db.name,
                ratio=multiple, target="<= 4x the attachment", met=multiple <= 4,
                intake=f"+{mb(extra)} peak RSS", peer=f"one ordinary message: {mb(_median(peaks['small']))}",
                note=f"ratio = extra peak RSS / attachment size; outcome: {made}")]


# --- a database already holding many messages -------------------------------------------------------------


def full_database(ctx: Context, db: DatabaseEngine) -> list[Row]:
    held = 10_000 if ctx.quick else 100_000
    batch = 200 if ctx.quick else 500
    full = make_instance(ctx.workdir, db, "full", ctx.contacts_csv)
    started = time.perf_counter()
    fill(full, ctx.corpus, held)
    filled_in = time.perf_counter() - started
    tail = ctx.corpus.messages[-batch * ctx.rounds:]
    rates: dict[str, list[float]] = {"empty": [], "full": []}
    peaks: list[int] = []
    for round_ in range(ctx.rounds):
        mbox = ctx.workdir / f"batch-{db.name}-{round_}.mbox"
        write_mbox(mbox, tail[round_ * batch:(round_ + 1) * batch])
        empty = make_instance(ctx.workdir, db, f"empty{round_}", ctx.contacts_csv)
        for name, instance in (("empty", empty), ("full", full)):
            timed = run_timed(instance.intake("ingest", str(mbox)), ctx.log(f"{db.name}-{name}{round_}.log"))
            rates[name].append(batch / timed.seconds)
            peaks += [timed.peak_rss] if name == "empty" else []
    empty_rate, full_rate = _median(rates["empty"]), _median(rates["full"])
    ratio = full_rate / empty_rate
    speed = Row(f"{batch} messages into a {held:,}-message database vs an empty one", db.name, ratio=ratio,
                target=">= 0.95x", met=ratio >= 0.95, intake=f"{rate(full_rate)} vs {rate(empty_rate)}",
                note=f"filled by SQL inserts of realistic rows in {filled_in:.0f} s; each round ingests new mail")
    return [speed, *_flat_memory_row(ctx, db.name, batch, _median(peaks))]


def _flat_memory_row(ctx: Context, engine: str, batch: int, batch_peak: float) -> list[Row]:
    """Peak memory of ingesting the whole corpus against a small batch: it should not grow with the count."""
    whole = ctx.ingest_peaks.get(engine)
    if whole is None:
        return []
    return [Row(f"peak memory, ingest of {ctx.ingest_count:,} messages vs {batch}", engine, ratio=whole / batch_peak,
                target="flat: <= 1.10x", met=whole / batch_peak <= 1.10, intake=f"{mb(whole)} vs {mb(batch_peak)}",
                note="both into an empty database")]


def fill(instance: Instance, corpus: Corpus, count: int) -> None:
    """`count` stored messages (70 % new cases with their acknowledgement, 30 % comments), by bulk INSERTs."""
    engine = instance.engine()
    with engine.begin() as conn:
        people = conn.execute(select(Contact.id, Contact.email, account_contacts.c.account_id)
                              .join(account_contacts, account_contacts.c.contact_id == Contact.id)).all()
    cases = count * 7 // 10
    now = dt.datetime.now(dt.UTC)
    for start in range(0, count, 5_000):
        numbers = range(start, min(count, start + 5_000))
        with engine.begin() as conn:
            new = [n for n in numbers if n < cases]
            if new:
                conn.execute(Case.__table__.insert(), [_case_row(n, people[n % len(people)], now) for n in new])
            conn.execute(InboundMessage.__table__.insert(),
                         [_inbound_row(n, cases, corpus, people[n % len(people)], now) for n in numbers])
            conn.execute(InboundRaw.__table__.insert(), [{"inbound_message_id": n + 1, "raw": _raw(n, corpus)}
                                                         for n in numbers])
            if new:
                conn.execute(OutboundMessage.__table__.insert(), [_outbound_row(n, people[n % len(people)], now)
                                                                  for n in new])
            comments = [n for n in numbers if n >= cases]
            if comments:
                conn.execute(Comment.__table__.insert(), [_comment_row(n, cases, people[n % len(people)], now)
                                                          for n in comments])
    _after_fill(engine)
    engine.dispose()


def _after_fill(engine: object) -> None:
    from sqlalchemy.engine import Engine
    assert isinstance(engine, Engine)
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:  # explicit ids were inserted: move the sequences past them
        for table, column in (("cases", "number"), ("inbound_messages", "id"), ("outbound_messages", "id"),
                              ("comments", "id")):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                              f"(SELECT coalesce(max({column}), 1) FROM {table}))"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))  # as autovacuum would have, on a database that grew over months


def _case_row(n: int, person: Sequence[object], now: dt.datetime) -> dict[str, object]:
    when = now - dt.timedelta(minutes=n)
    return {"number": n + 1, "account_id": person[2], "contact_id": person[0], "submitted_by_id": person[0],
            "case_type": "Application Issue", "priority": "Medium", "subject": f"Grades will not post ({n})",
            "description": "None of the teachers at Campus High School are able to post grades.",
            "fields": {"Module": "Grade Book"}, "fields_as_written": {"Module": "Grade Book"}, "module": "Grade Book",
            "status": "closed" if n % 3 else "open", "department": "Application Support", "billable": False,
            "created": when, "modified": when}


def _inbound_row(n: int, cases: int, corpus: Corpus, person: Sequence[object], now: dt.datetime) -> dict[str, object]:
    raw = _raw(n, corpus)
    message_id = f"fill-{n}@bench.example"
    when = now - dt.timedelta(minutes=n)
    return {"id": n + 1, "dedupe_key": f"mid:{message_id}", "message_id": f"<{message_id}>", "sender": person[1],
            "envelope_sender": person[1], "subject": f"Grades will not post ({n})", "source": "smtp:127.0.0.1",
            "size": len(raw), "sha256": "0" * 64, "received": when, "processed": when,
            "outcome": "case_created" if n < cases else "comment_added", "reasons": ["filled by bench/run.py"],
            "case_number": (n if n < cases else n % cases) + 1}


def _raw(n: int, corpus: Corpus) -> bytes:
    return corpus.messages[n % len(corpus.messages)].raw


def _outbound_row(n: int, person: Sequence[object], now: dt.datetime) -> dict[str, object]:
    when = now - dt.timedelta(minutes=n)
    return {"id": n + 1, "message_id": f"<case-{n + 1}.ack.fill@intake.example>",
            "in_reply_to": f"<fill-{n}@bench.example>", "kind": "acknowledgement", "recipients": [person[1]],
            "subject": f"[Case #{n + 1}] Grades will not post", "raw": b"Subject: ack\n\n" + b"x" * 2_000,
            "status": "sent", "attempts": 1, "created": when, "sent": when, "case_number": n + 1,
            "inbound_message_id": n + 1}


def _comment_row(n: int, cases: int, person: Sequence[object], now: dt.datetime) -> dict[str, object]:
    return {"id": n - cases + 1, "case_number": n % cases + 1, "author": person[1],
            "body": "Still greyed out after clearing the cache.", "public": True,
            "created": now - dt.timedelta(minutes=n), "inbound_message_id": n + 1}


# --- the notification broadcast (bench/notify_broadcast.py, from the notifications work) ------------------


BROADCAST_KEYS = ("queued_seconds", "contacts", "accepted_meanwhile_msgs")


def broadcast(ctx: Context, db: DatabaseEngine) -> list[Row]:
    """Run bench/notify_broadcast.py if this checkout has it (the contract is in bench/README.md)."""
    contacts = 1_000 if ctx.quick else 10_000
    title = f"notification to {contacts:,} contacts: time to queue"
    script = BENCH / "notify_broadcast.py"
    if not script.exists():
        return [Row(title, db.name, note="not available: bench/notify_broadcast.py is not in this checkout "
                                         "(the notifications work has not landed)")]
    instance = make_instance(ctx.workdir, db, "broadcast", ctx.contacts_csv)
    workdir = instance.folder / "broadcast"
    workdir.mkdir()
    command = [sys.executable, str(script), "--config", str(instance.config), "--contacts", str(contacts),
               "--workdir", str(workdir)] + (["--quick"] if ctx.quick else [])
    done = subprocess.run(command, capture_output=True, text=True, timeout=1_800)
    ctx.log(f"{db.name}-broadcast.log").write_text(done.stdout + done.stderr)
    result = _broadcast_result(done.stdout)
    if done.returncode != 0 or result is None:
        return [Row(title, db.name, note=f"failed: exit {done.returncode}, no JSON result (see the log)")]
    return _broadcast_rows(title, db.name, result, ctx)


def _broadcast_result(stdout: str) -> dict[str, float] | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and all(k in value for k in BROADCAST_KEYS):
            return value
    return None


def _broadcast_rows(title: str, engine: str, result: dict[str, float], ctx: Context) -> list[Row]:
    seconds = float(result["queued_seconds"])
    scaled = seconds * 10_000 / float(result["contacts"])
    rows = [Row(title, engine, target="10,000 in < 10 s", met=scaled < 10, intake=f"{seconds:.2f} s",
                note=f"{result['contacts']} contacts; {scaled:.1f} s per 10,000")]
    if result.get("delivered_per_second") is not None:
        rows.append(Row("  delivery of those notifications to a local aiosmtpd relay", engine,
                        intake=rate(float(result["delivered_per_second"]))))
    meanwhile = result.get("accepted_meanwhile_msgs")
    if meanwhile is not None:
        per_second = float(meanwhile) / seconds if seconds else None
        rows.append(Row("  intake's SMTP acceptance while queuing them", engine,
                        intake=f"{float(meanwhile):,.0f} messages, {rate(per_second)}",
                        note="compare with the SMTP acceptance rows of this run"))
    return rows


MEASUREMENTS: dict[str, Callable[..., list[Row]]] = {
    "smtp": smtp_acceptance, "e2e": end_to_end, "memory": big_attachment, "full-db": full_database,
    "broadcast": broadcast,
}

