"""`intake held list | release`: mail over the rate of new cases, waiting for time."""
from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.act.held import HeldError, release_now
from intake.cli import views
from intake.cli.common import EXIT_OK, CommandError, case_tag, command, listing, staff_address
from intake.cli.text import out
from intake.config import Config
from intake.mailout.delivery import deliver_pending
from intake.store.database import open_store
from intake.store.models import HeldMessage
from routing.states import HeldStatus


def add_commands(commands: Any) -> None:
    held = commands.add_parser("held", help="mail over the rate of new cases, waiting to be processed",
                               description="New cases over the rate ([limits] cases_per_hour_*) wait here and "
                                           "are processed by themselves, in order, when their time comes.")
    actions = held.add_subparsers(title="actions", metavar="ACTION", required=True)
    listed = command(actions, "list", _list, "the held messages (with --all, released ones too)")
    listed.add_argument("--all", action="store_true")
    listed.add_argument("--json", action="store_true")
    release = command(actions, "release", _release, "process a held message now, whatever the rate",
                      sends_mail=True)
    release.add_argument("id", type=int, metavar="ID")
    release.add_argument("--by", metavar="EMAIL", help="who released it (default: the first staff address)")


def _list(args: argparse.Namespace, config: Config) -> int:
    def query(_: Session) -> Any:
        selected = select(HeldMessage).order_by(HeldMessage.inbound_message_id)
        return selected if args.all else selected.where(HeldMessage.status == HeldStatus.HELD.value)

    def line(entry: HeldMessage) -> str:
        return (f"{entry.id:<5} {entry.status:9} until {entry.until:%Y-%m-%d %H:%M}  {entry.sender:32} "
                f"{entry.inbound_message.subject}")

    return listing(config, args.json, query, views.held_view, line)


def _release(args: argparse.Namespace, config: Config) -> int:
    store = open_store(config.database_url)
    by = staff_address(config, args.by)
    try:
        processed = release_now(store, config, args.id, by)
    except HeldError as exc:
        raise CommandError(str(exc)) from exc
    deliver_pending(store, config)
    out(f"held message {args.id} released: {processed.outcome} {case_tag(processed.case_number)}",
        *(f"  - {reason}" for reason in processed.reasons))
    return EXIT_OK
