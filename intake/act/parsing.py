"""Parsing in a process of its own, ahead of the process that decides and acts (`intake.act.pool`).

Parsing needs no database, so it can run beside the one writer SQLite
allows: the process that decides and acts is handed what this one parsed of
the very bytes stored. A message over `PARSE_AHEAD_MAX_BYTES` is never sent
here: it is parsed from its stored copy by the process that acts on it, so it
is never held twice.
"""
from __future__ import annotations

from intake.config import Config, load_config
from parsers.fields import FormSchema
from parsers.limits import Limits
from parsers.submission import Submission, parse

__all__ = ["PARSE_AHEAD_MAX_BYTES", "parse_in_worker", "start_parser"]

PARSE_AHEAD_MAX_BYTES = 1024 * 1024  # a larger message is parsed from its stored copy where it is acted on

_parser_config: Config | None = None


def start_parser(config_path: str | None) -> None:
    """The pool's initializer: the configuration's forms and limits, as the acting process reads them."""
    global _parser_config
    _parser_config = load_config(config_path)


def parse_in_worker(raws: list[bytes | None]) -> list[Submission | None]:
    """Each message parsed as `process_messages` would parse it (files have no envelope sender).

    None for a message whose parse raises: the acting process parses it again
    and records the failure on that message alone, as without a parse ahead.
    """
    assert _parser_config is not None, "the pool's initializer loads the configuration"
    forms, limits = _parser_config.case_types.forms, _parser_config.limits
    return [None if raw is None else _parsed_or_none(raw, forms, limits) for raw in raws]


def _parsed_or_none(raw: bytes, forms: FormSchema, limits: Limits) -> Submission | None:
    try:
        return parse(raw, forms, None, limits)
    except Exception:  # a bug on hostile input: the acting process's own parse meets it and records it
        return None
