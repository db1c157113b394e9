"""`intake contacts import | list | clear-bounce`: the contact registry."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from intake.act.bounces import clear_bouncing
from intake.cli import views
from intake.cli.common import EXIT_OK, CommandError, command, listing
from intake.cli.text import out
from intake.config import Config
from intake.store.contacts_csv import import_contacts
from intake.store.database import open_store
from intake.store.models import Contact


def add_commands(commands: Any) -> None:
    contacts = commands.add_parser("contacts", help="the contact registry").add_subparsers(metavar="ACTION")
    imported = command(contacts, "import", _contacts_import, "import or update contacts from a CSV file")
    imported.add_argument("file", metavar="FILE.csv")
    cleared = command(contacts, "clear-bounce", _contacts_clear_bounce,
                      "mail a contact again after their address stopped bouncing")
    cleared.add_argument("email", metavar="EMAIL")
    listed = command(contacts, "list", _contacts_list, "list contacts")
    listed.add_argument("--json", action="store_true")


def _contacts_import(args: argparse.Namespace, config: Config) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"{path}: no such file")
    store = open_store(config.database_url)
    with store.session() as session, session.begin():
        report = import_contacts(session, path)
    for error in report.errors:
        out(f"{path}: {error.message}" if error.message.startswith("line") else
            f"{path}: line {error.line}: {error.message}", file=sys.stderr)
    out(f"{report.created} contact(s) created, {report.updated} updated, "
          f"{report.accounts_created} account(s) created, {len(report.errors)} row(s) rejected")
    return EXIT_OK


def _contacts_clear_bounce(args: argparse.Namespace, config: Config) -> int:
    store = open_store(config.database_url)
    with store.session() as session, session.begin():
        if not clear_bouncing(session, args.email.strip().lower()):
            raise CommandError(f"there is no contact {args.email}")
    out(f"{args.email}: bounce count cleared; the contact will be mailed again")
    return EXIT_OK


def _contact_line(c: Contact) -> str:
    state = ("" if c.active else " (inactive)") + (" (bouncing: not mailed)" if c.bouncing else "")
    accounts = "; ".join(a.name for a in c.accounts)
    return f"{c.email:40} {c.full_name:25} {c.contact_type:10} {accounts}{state}"


def _contacts_list(args: argparse.Namespace, config: Config) -> int:
    return listing(config, args.json, lambda _: select(Contact).order_by(Contact.email), views.contact_view,
                   _contact_line)
