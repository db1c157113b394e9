"""`intake purge [--dry-run] [--json]`: empty the raw mail and files of cases closed long ago (`[retention]`)."""
from __future__ import annotations

import argparse
from typing import Any

from intake.act.retention import purge
from intake.cli.common import EXIT_OK, CommandError, command, print_json
from intake.cli.text import out
from intake.config import Config
from intake.store.database import open_store
from intake.store.models import utcnow


def add_commands(commands: Any) -> None:
    purged = command(commands, "purge", _purge,
                     "empty the raw mail and attachments of cases closed more than [retention] "
                     "purge_closed_after_days ago; the cases and their history stay")
    purged.add_argument("--dry-run", action="store_true", help="show what would be emptied; change nothing")
    purged.add_argument("--json", action="store_true")


def _purge(args: argparse.Namespace, config: Config) -> int:
    days = config.purge_closed_after_days
    if not days:
        raise CommandError("retention is off: set [retention] purge_closed_after_days to purge")
    store = open_store(config.database_url)
    with store.session() as session, session.begin():
        done = purge(session, days, utcnow(), dry_run=args.dry_run)
    if args.json:
        print_json({"dry_run": done.dry_run, "days": days, "cases": list(done.cases), "inbound": done.inbound,
                    "outbound": done.outbound, "attachments": done.attachments, "bytes": done.bytes})
        return EXIT_OK
    verb = "would empty" if done.dry_run else "emptied"
    out(f"{len(done.cases)} case(s) closed more than {days} days ago: {verb} {done.inbound} received and "
        f"{done.outbound} sent message(s) and {done.attachments} attachment(s), {done.bytes} bytes"
        + (f" (cases {', '.join(f'#{n}' for n in done.cases)})" if done.cases else ""))
    return EXIT_OK
