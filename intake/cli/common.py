"""What the command modules of `intake.cli` share: exit statuses, the usage error, listings."""
from __future__ import annotations

import argparse
import json
from typing import Any, Callable

from sqlalchemy.orm import Session

from intake.config import Config
from intake.store.database import open_store

EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE = 0, 1, 2


class CommandError(Exception):
    """A problem with what was asked, reported on stderr with exit status 2."""


def command(commands: Any, name: str, handler: Callable[..., int | None], help_text: str) -> argparse.ArgumentParser:
    """Add the subcommand `name` to `commands`; `handler(args, config)` runs it."""
    sub = commands.add_parser(name, help=help_text, description=help_text)
    sub.set_defaults(handler=handler)
    return sub


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def listing(config: Config, as_json: bool, query: Callable[[Session], Any],
            to_json: Callable[[Any], dict[str, Any]], to_text: Callable[[Any], str]) -> int:
    """Print the rows `query` selects: as a JSON array of `to_json`, or one `to_text` each."""
    store = open_store(config.database_url)
    with store.session() as session:
        rows = session.scalars(query(session)).all()
        if as_json:
            print_json([to_json(row) for row in rows])
        else:
            for row in rows:
                print(to_text(row))
    return EXIT_OK


def case_tag(number: int | None) -> str:
    return f"#{number}" if number else "-"
