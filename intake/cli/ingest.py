"""`intake ingest` (files, Maildirs, mbox files; or a dry run of them) and `intake replay`."""
from __future__ import annotations

import argparse
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sqlalchemy import select

from intake.act.pool import GroupProcessing, group_processing
from intake.act.worker import Preview, Processed, preview, replay
from intake.cli.common import EXIT_FAILED, EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE, command
from intake.cli.text import billable, case_fields, labelled, out
from intake.config import Config
from intake.mailin.accept import accept_many, arrival
from intake.mailin.files import Item, items_from
from intake.mailout.delivery import deliver_pending
from intake.store.database import Store, Stored, open_store
from intake.store.models import InboundMessage
from intake.store.urls import sqlite_file
from parsers.submission import Submission
from routing.outcomes import CreateCase
from routing.states import Outcome

PROGRESS_THRESHOLD = 50


def add_commands(commands: Any) -> None:
    ingest = command(commands, "ingest", _ingest, "process .eml files, Maildir folders and mbox files",
                     sends_mail=True)
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.add_argument("--dry-run", action="store_true",
                        help="show what would happen to each message without writing anything")

    replayed = command(commands, "replay", _replay, "process failed messages again", sends_mail=True)
    replayed.add_argument("ids", nargs="+", type=int, metavar="ID",
                          help="a stored message's number, as shown by `intake messages`")


def _ingest(args: argparse.Namespace, config: Config) -> int:
    items = items_from(args.paths)
    if args.dry_run:
        return _dry_run(items, config)
    store = open_store(config.database_url)
    unreadable, stopped = 0, False
    try:
        with group_processing(store, config, len(items), GROUP_MESSAGES) as processing:
            if processing.processes > 1:
                out(f"intake: processing in {processing.processes} worker processes ([worker] processes, PostgreSQL)",
                    file=sys.stderr)
            for line, readable in _ingested(_groups(_with_progress(items)), store, processing):
                unreadable += not readable
                out(line, flush=True)
    except BrokenProcessPool:
        # Killed (out of memory, say): what it held is rolled back, so nothing is half done.
        out("intake: error: a worker process of this command stopped before its messages were processed;"
            " every message stored so far is kept: run the same command again to process them and store the"
            " rest (intake serve processes them too)", file=sys.stderr)
        stopped = True
    delivered = deliver_pending(store, config)  # the answers of what was processed go out either way
    if delivered:
        where = f"the relay {config.relay.host}" if config.relay else f"the Maildir {config.outgoing_maildir}"
        out(f"{delivered} outgoing message(s) delivered to {where}")
    if stopped:
        return EXIT_FAILED
    return EXIT_UNREADABLE if unreadable else EXIT_OK


def _read(item: Item) -> tuple[bytes | None, str | None]:
    if item.read is None:
        return None, item.error
    try:
        return item.read(), None
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"


GROUP_MESSAGES = 50  # messages stored in one transaction (group commit), then processed together
GROUP_BYTES = 8 * 1024 * 1024  # a group is closed once it holds this much mail
Group = list[tuple[Item, bytes | None, str | None]]  # each item, its bytes (None: unreadable), why not


def _groups(items: Iterable[Item]) -> Iterator[Group]:
    """The items read, in groups of at most GROUP_MESSAGES and about GROUP_BYTES (plus one message)."""
    group: Group = []
    size = 0
    for item in items:
        group.append((item, *_read(item)))
        size += len(group[-1][1] or b"")
        if len(group) >= GROUP_MESSAGES or size >= GROUP_BYTES:
            yield group
            group, size = [], 0
    if group:
        yield group


def _ingested(groups: Iterable[Group], store: Store, processing: GroupProcessing) -> Iterator[tuple[str, bool]]:
    """Each group stored in one commit and handed to be processed; its lines, in order, once it is done."""
    handed_in: deque[tuple[Group, list[Stored], list[int], Future[dict[int, Processed]]]] = deque()
    for group, parsing in _parsed_ahead(groups, processing):
        stored = accept_many(store, [arrival(raw, f"file:{item.label}") for item, raw, _ in group if raw is not None])
        # The bytes read are let go now (in place: the caller holds the list too): the worker reads
        # the stored copy, and a large message must not be held twice while it is parsed.
        # (A comprehension, so that no loop variable keeps the last message's bytes alive meanwhile.)
        group[:] = [(item, None if raw is None else b"", error) for item, raw, error in group]
        ids = list(dict.fromkeys([one.id for one in stored if not one.duplicate] + _unprocessed_copies(store, stored)))
        # What was parsed ahead is of the bytes just stored: not of an earlier copy found as a duplicate.
        ahead = processing.parsed(parsing, len(stored))
        parsed = {one.id: submission for one, submission in zip(stored, ahead, strict=True)
                  if submission is not None and not one.duplicate}
        handed_in.append((group, stored, ids, processing.submit(ids, parsed)))
        if len(handed_in) >= processing.in_flight:
            yield from _group_lines(store, processing, *handed_in.popleft())
    while handed_in:
        yield from _group_lines(store, processing, *handed_in.popleft())


def _parsed_ahead(groups: Iterable[Group], processing: GroupProcessing
                  ) -> Iterator[tuple[Group, Future[list[Submission | None]] | None]]:
    """Each group with its parse, handed in one group ahead: the next is parsed while this one is processed."""
    if not processing.parses_ahead:
        yield from ((group, None) for group in groups)
        return
    ahead: tuple[Group, Future[list[Submission | None]] | None] | None = None
    for group in groups:
        this = (group, processing.parse_ahead([raw for _, raw, _ in group if raw is not None]))
        if ahead is not None:
            yield ahead
        ahead = this
    if ahead is not None:
        yield ahead


def _unprocessed_copies(store: Store, stored: list[Stored]) -> list[int]:
    """The messages of a group stored before and never processed (an earlier run stopped part way): done now.

    One another worker has (`intake serve`, or an earlier group of this run)
    is skipped by the claim, and one done meanwhile is left alone.
    """
    fresh = {one.id for one in stored if not one.duplicate}
    earlier = sorted({one.id for one in stored if one.duplicate} - fresh)  # not a copy within the group
    if not earlier:
        return []
    with store.session() as session:
        return list(session.scalars(select(InboundMessage.id).where(InboundMessage.id.in_(earlier),
                                                                    InboundMessage.outcome.is_(None))))


def _group_lines(store: Store, processing: GroupProcessing, group: Group, stored: list[Stored], ids: list[int],
                 future: Future[dict[int, Processed]]) -> Iterator[tuple[str, bool]]:
    processed = processing.finish(ids, future)
    fresh = {one.id for one in stored if not one.duplicate}
    results = iter(stored)
    for item, raw, error in group:
        if raw is None:
            yield f"{item.label}: error: {error}", False
            continue
        one = next(results)
        if one.duplicate and one.id not in fresh and one.id in processed:
            yield f"{item.label}: stored before as message {one.id}, processed now: " \
                  f"{_describe(processed[one.id])}", True
            continue
        if one.duplicate:
            with store.session() as session:
                earlier = session.get(InboundMessage, one.id)
                outcome = earlier.outcome if earlier else None
            yield f"{item.label}: duplicate of message {one.id} ({outcome or 'not processed yet'}); skipped", True
            continue
        yield f"{item.label}: {_describe(processed.get(one.id))}", True


def _describe(processed: Processed | None) -> str:
    if processed is None:
        return "stored, not processed yet (the database is busy, or another worker has it); it will be" \
               " processed by the next run or by intake serve"
    text = processed.outcome.value
    if processed.case_number is not None:
        text += f" #{processed.case_number}"
    last = processed.reasons[-1] if processed.reasons else ""
    text += f": {last}" if last else ""
    if processed.reply_to:
        text += f" (reply to {processed.reply_to})"
    return text


def _with_progress(items: list[Item]) -> Any:
    if len(items) < PROGRESS_THRESHOLD or not sys.stderr.isatty():
        return items
    from rich.console import Console
    from rich.progress import track
    return track(items, description="ingesting", console=Console(stderr=True), transient=True)


# --- the dry run --------------------------------------------------------------


def _dry_run(items: list[Item], config: Config) -> int:
    unreadable = 0
    store = _existing_store(config)
    session = store.session() if store else None
    try:
        for item in items:
            raw, error = _read(item)
            if raw is None:
                unreadable += 1
                out(f"{item.label}: error: {error}")
                continue
            _print_preview(item.label, preview(raw, session, config))
    finally:
        if session is not None:
            session.rollback()
            session.close()
    return EXIT_UNREADABLE if unreadable else EXIT_OK


def _existing_store(config: Config) -> Store | None:
    file = sqlite_file(config.database_url)
    if file is not None and not file.exists():
        return None  # a dry run never creates the database
    return open_store(config.database_url, create=False)


def _print_preview(label: str, result: Preview) -> None:
    decision = result.decision
    out(f"== {label}", f"outcome: {decision.outcome.value} (dry run: nothing written)")
    message = result.submission.message
    if message is not None:
        out(f"from: {message.from_address}  subject: {message.subject}")
    if isinstance(decision, CreateCase):
        draft = decision.draft
        kind = draft.spec.case_type.value + (f" ({billable(True)})" if draft.billable else "")
        out(f"case: {kind}, priority {draft.priority}, account {draft.account.name}, "
            f"contact {draft.contact.email}, department {draft.department}")
        out(*labelled("Subject", draft.subject), *case_fields(draft.description, draft.fields, draft.fields_as_written))
    out("reasons:", *(f"  - {reason}" for reason in decision.reasons))
    if result.reply is not None:
        out("reply that would be sent:", *_text_part(result.reply))


def _text_part(raw: bytes) -> list[str]:
    import email
    from email import policy
    message = email.message_from_bytes(raw, policy=policy.default)
    body = message.get_body(preferencelist=("plain",))
    headers = [f"  {name}: {message[name]}" for name in ("To", "Subject") if message[name]]
    content = body.get_content() if body is not None else ""
    return headers + ["  | " + line for line in content.rstrip().splitlines()]


# --- replay -------------------------------------------------------------------


def _replay(args: argparse.Namespace, config: Config) -> int:
    """Replay the failed messages among `args.ids`; name each of the others on stderr and exit 2."""
    store = open_store(config.database_url)
    with store.session() as session:
        rows = session.execute(select(InboundMessage.id, InboundMessage.outcome)
                               .where(InboundMessage.id.in_(args.ids))).all()
    outcomes: dict[int, str | None] = {inbound_id: outcome for inbound_id, outcome in rows}
    refused = [_not_replayable(i, outcomes) for i in args.ids if outcomes.get(i, "") != Outcome.FAILED.value]
    failed = [i for i in dict.fromkeys(args.ids) if outcomes.get(i, "") == Outcome.FAILED.value]
    if failed:
        for processed in replay(store, config, failed):
            out(f"message {processed.inbound_id}: {_describe(processed)}")
        deliver_pending(store, config)
    for problem in refused:
        out(f"intake: error: {problem}", file=sys.stderr)
    return EXIT_USAGE if refused else EXIT_OK


def _not_replayable(inbound_id: int, outcomes: dict[int, str | None]) -> str:
    if inbound_id not in outcomes:
        return f"there is no message {inbound_id}"
    outcome = outcomes[inbound_id]
    state = f"its outcome is {outcome}" if outcome else "it is not processed yet"
    return f"message {inbound_id} is not failed ({state}); only failed messages are replayed"
