"""What the command modules of `intake.cli` share: exit statuses, the usage error, listings."""
from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from intake.cli.text import out
from intake.config import Config
from intake.store.database import open_store

EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE = 0, 1, 2
EXIT_FAILED = 1  # the command could not finish (what it did is kept); the same status as some input unreadable


class CommandError(Exception):
    """A problem with what was asked, reported on stderr with exit status 2."""


def command(commands: Any, name: str, handler: Callable[..., int | None], help_text: str, *,
            sends_mail: bool = False) -> argparse.ArgumentParser:
    """Add the subcommand `name` to `commands`; `handler(args, config)` runs it.

    ``sends_mail``: it may queue mail that carries thread tokens, so on a shared
    database it needs the shared secret, as `intake serve` does.
    """
    sub = commands.add_parser(name, help=help_text, description=help_text)
    sub.set_defaults(handler=handler, sends_mail=sends_mail)
    return sub


# JSON escapes C0 itself; DEL and C1 it leaves raw, and a terminal may obey them (U+009B is CSI).
_RAW_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def print_json(value: Any) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    print(_RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


def listing(config: Config, as_json: bool, query: Callable[[Session], Any],
            to_json: Callable[[Any], dict[str, Any]], to_text: Callable[[Any], str | list[str]]) -> int:
    """Print the rows `query` selects: as a JSON array of `to_json`, or the line (or lines) `to_text` makes of each."""
    store = open_store(config.database_url)
    with store.session() as session:
        rows = session.scalars(query(session)).all()
        if as_json:
            print_json([to_json(row) for row in rows])
        else:
            for row in rows:
                text = to_text(row)
                out(*([text] if isinstance(text, str) else text))
    return EXIT_OK


def staff_address(config: Config, given: str | None) -> str:
    """Who does a staff action: the address given, else the first staff address, else the From address."""
    return (given or (config.conversations.staff_addresses or (config.from_address,))[0]).strip().lower()


def case_tag(number: int | None) -> str:
    return f"#{number}" if number else "-"
