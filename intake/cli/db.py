"""`intake db upgrade` and `intake db current`: the database's schema revision.

An embedded SQLite database is upgraded by every command by itself; a shared
PostgreSQL one only by `intake db upgrade`, run once after installing a new
version and before the daemons are started again.
"""
from __future__ import annotations

import argparse
import json
from typing import Any

from sqlalchemy.engine import make_url

from intake.config import Config
from intake.store import migrate

STATES = {
    "current": "up to date",
    "behind": f"behind: run `{migrate.UPGRADE_COMMAND}`",
    "empty": f"no schema yet: `{migrate.UPGRADE_COMMAND}` creates it",
    "unversioned": f"made before intake had migrations: `{migrate.UPGRADE_COMMAND}` adopts it",
    "ahead": "ahead: upgraded by a newer intake, which this one cannot use",
}


def add_commands(commands: Any) -> argparse.ArgumentParser:
    """Register `intake db` on the command line's subparsers."""
    text = "the database's schema revision"
    db = commands.add_parser("db", help=text, description=text)
    actions = db.add_subparsers(metavar="ACTION")
    upgrade_text = "create the database's schema, or upgrade it to this version's"
    upgrade = actions.add_parser("upgrade", help=upgrade_text, description=upgrade_text)
    upgrade.set_defaults(handler=_upgrade)
    current_text = "show the database's schema revision and whether it is up to date"
    current = actions.add_parser("current", help=current_text, description=current_text)
    current.add_argument("--json", action="store_true")
    current.set_defaults(handler=_current)
    return db


def _shown(config: Config) -> str:
    return make_url(config.database_url).render_as_string(hide_password=True)


def _upgrade(args: argparse.Namespace, config: Config) -> int:
    done = migrate.upgrade(config.database_url)
    where = f"database {_shown(config)}"
    if not done.changed:
        print(f"{where}: up to date at revision {done.after}; nothing changed")
    elif done.adopted:
        print(f"{where}: made before migrations; its tables are those of revision {migrate.FIRST}, stamped "
              f"{migrate.FIRST}" + (f", upgraded to {done.after}" if done.after != migrate.FIRST else ""))
    else:
        print(f"{where}: upgraded from {done.before or 'none (empty)'} to {done.after}")
    return 0


def _current(args: argparse.Namespace, config: Config) -> int:
    state = migrate.status(config.database_url)
    if args.json:
        print(json.dumps({"revision": state.revision, "head": state.head, "up_to_date": state.up_to_date,
                          "state": state.kind}, indent=2))
        return 0
    print(f"database: {_shown(config)}")
    print(f"revision: {state.revision or 'none'}")
    print(f"head:     {state.head}")
    print(STATES[state.kind])
    return 0
