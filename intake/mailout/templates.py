"""The Jinja2 environment of every outgoing mail's templates (templates/email/)."""
from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape


def format_date(value: dt.date | dt.datetime) -> str:
    return value.strftime("%m/%d/%Y")


@lru_cache(maxsize=None)
def template_environment(template_dir: Path) -> Environment:
    environment = Environment(
        loader=FileSystemLoader(template_dir),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["mdy"] = format_date
    return environment
