"""`intake quarantine list | show | release | drop`: mail that claims a contact's address and failed authentication."""
from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.act.quarantine import QuarantineError, drop, release
from intake.cli import views
from intake.cli.common import EXIT_OK, CommandError, case_tag, command, listing, print_json, staff_address
from intake.cli.text import labelled, out
from intake.config import Config
from intake.mailout.delivery import deliver_pending
from intake.store.database import open_store
from intake.store.models import QuarantinedMessage
from parsers.submission import parse
from routing.states import QuarantineStatus


def add_commands(commands: Any) -> None:
    quarantine = commands.add_parser("quarantine", help="review held mail that failed sender authentication",
                                     description="Mail that claims to be from a contact (or staff) and fails "
                                                 "sender authentication waits here for a person.")
    actions = quarantine.add_subparsers(title="actions", metavar="ACTION", required=True)
    listed = command(actions, "list", _list, "the held messages (with --all, released and dropped ones too)")
    listed.add_argument("--all", action="store_true")
    listed.add_argument("--json", action="store_true")
    shown = command(actions, "show", _show, "one quarantined message: who it claims to be, why it is held")
    shown.add_argument("id", type=int, metavar="ID")
    shown.add_argument("--json", action="store_true")
    for name, handler, text in (("release", _release, "process it as if its sender had authenticated"),
                                ("drop", _drop, "keep it, marked dropped; it is never processed")):
        action = command(actions, name, handler, text, sends_mail=True)
        action.add_argument("id", type=int, metavar="ID")
        action.add_argument("--by", metavar="EMAIL", help="who decided (default: the first staff address)")


def _list(args: argparse.Namespace, config: Config) -> int:
    def query(_: Session) -> Any:
        selected = select(QuarantinedMessage).order_by(QuarantinedMessage.id)
        return selected if args.all else selected.where(QuarantinedMessage.status == QuarantineStatus.HELD.value)

    def line(entry: QuarantinedMessage) -> str:
        return (f"{entry.id:<5} {entry.status:9} {entry.created:%Y-%m-%d %H:%M}  {entry.claimed_sender:32} "
                f"{entry.inbound_message.subject}")

    return listing(config, args.json, query, views.quarantine_view, line)


def _show(args: argparse.Namespace, config: Config) -> int:
    store = open_store(config.database_url)
    with store.session() as session:
        entry = session.get(QuarantinedMessage, args.id)
        if entry is None:
            raise CommandError(f"no quarantined message {args.id}; `intake quarantine list` shows them")
        detail = views.quarantine_view(entry)
        message = parse(entry.inbound_message.raw, config.case_types.forms, limits=config.limits).message
        detail["authentication_results"] = list(message.header_all("Authentication-Results")) if message else []
        detail["text"] = message.text if message else ""
    if args.json:
        print_json(detail)
        return EXIT_OK
    out(f"Quarantined message {detail['id']} ({detail['status']})",
        *labelled("Claims to be from", detail["claimed_sender"]),
        *labelled("Subject", detail["subject"]),
        *labelled("Received", detail["received"]),
        *labelled("Why held", detail["reason"]),
        *labelled("Stored message", detail["message"]),
        *[line for value in detail["authentication_results"] for line in labelled("Authentication-Results", value)])
    if detail["decided"]:
        out(*labelled(detail["status"].capitalize(), f"{detail['decided']} by {detail['decided_by']}"))
    out("", "Text (as the sender wrote it; do not trust links in it):", "")
    out(*(f"  {line}" for line in (detail["text"] or "-").splitlines()))
    return EXIT_OK


def _release(args: argparse.Namespace, config: Config) -> int:
    store = open_store(config.database_url)
    try:
        processed = release(store, config, args.id, staff_address(config, args.by))
    except QuarantineError as exc:
        raise CommandError(str(exc)) from exc
    deliver_pending(store, config)
    out(f"quarantined message {args.id} released: {processed.outcome} {case_tag(processed.case_number)}",
        *(f"  - {reason}" for reason in processed.reasons))
    return EXIT_OK


def _drop(args: argparse.Namespace, config: Config) -> int:
    try:
        drop(open_store(config.database_url), args.id, staff_address(config, args.by))
    except QuarantineError as exc:
        raise CommandError(str(exc)) from exc
    out(f"quarantined message {args.id} dropped; it is kept and will not be processed")
    return EXIT_OK

