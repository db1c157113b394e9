"""The `intake` command line: support staff's way in.

Each subcommand loads the configuration once, opens the store, does one
thing and prints either lines for people or, with --json, the stable shapes of
`intake.cli.views` (documented in the README). Each command group lives in a
module of its own that registers its subcommands with `add_commands`:
`serve`, `ingest` (and `replay`), `contacts`, `cases` (the listings and
`show`), `attachment`, `staff` (comment, resolve, close, reopen, approve), and `notify` (incident and
maintenance notices, and the status page).
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from intake.cli import attachment, cases, contacts, db, health, held, ingest, notify, purge, quarantine, serve, staff
from intake.cli.common import EXIT_OK, EXIT_USAGE, CommandError
from intake.cli.text import out
from intake.config import ConfigError, load_config
from intake.daemon import shared_secret_problem
from intake.store.contacts_csv import ContactsFileError


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        config = load_config(args.config)
        if getattr(args, "sends_mail", False) and (problem := shared_secret_problem(config)):
            raise CommandError(problem)
        return int(args.handler(args, config) or EXIT_OK)
    except (ConfigError, CommandError, ContactsFileError) as exc:
        out(f"intake: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (`intake cases | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="intake", description="Email-driven support case intake.")
    parser.add_argument("--config", metavar="PATH", help="configuration file (default: ./config.toml)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    ingest.add_commands(commands)
    contacts.add_commands(commands)
    cases.add_commands(commands)
    attachment.add_commands(commands)
    staff.add_commands(commands)
    quarantine.add_commands(commands)
    held.add_commands(commands)
    health.add_commands(commands)
    purge.add_commands(commands)
    serve.add_commands(commands)
    db.add_commands(commands)
    notify.add_commands(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
