"""`intake comment | resolve | close | reopen | approve`: staff actions on a case."""
from __future__ import annotations

import argparse
import mimetypes
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from intake.act.cases import CaseActionError, NewAttachment, close, reopen, resolve, staff_comment
from intake.act.contacts import approve_contact_change
from intake.cli.common import EXIT_OK, CommandError, command, staff_address
from intake.cli.text import out
from intake.config import Config
from intake.mailout.delivery import deliver_pending
from intake.store.database import open_store
from intake.store.models import Case
from parsers.attachments import sniff


def add_commands(commands: Any) -> None:
    comment = command(commands, "comment", _comment, "add a comment to a case (public ones are emailed)",
                      sends_mail=True)
    comment.add_argument("number", type=int, metavar="N")
    body = comment.add_mutually_exclusive_group(required=True)
    body.add_argument("--body", metavar="TEXT")
    body.add_argument("--file", metavar="PATH", help="read the comment from a file ('-' for standard input)")
    comment.add_argument("--attach", nargs="+", default=[], metavar="PATH")
    comment.add_argument("--internal", action="store_true", help="a note for staff only; not emailed")
    comment.add_argument("--author", metavar="EMAIL", help="default: the first staff address, else the From address")

    resolved = command(commands, "resolve", _resolve, "resolve a case and email the resolution", sends_mail=True)
    resolved.add_argument("number", type=int, metavar="N")
    resolved.add_argument("--resolution", required=True, metavar="TEXT")
    for name, handler, text in (("close", _close, "close a case"),
                                ("reopen", _reopen, "reopen a resolved or closed case")):
        command(commands, name, handler, text, sends_mail=True).add_argument("number", type=int, metavar="N")
    approve = command(commands, "approve", _approve,
                      "apply an approved Modify Support Contacts case to the contact registry", sends_mail=True)
    approve.add_argument("number", type=int, metavar="N")
    approve.add_argument("--by", metavar="EMAIL", help="who approved (default: the first staff address)")


def _on_case(config: Config, number: int, action: Callable[[Session, Case], str | list[str]]) -> int:
    """Run one staff action on a case in one transaction, deliver the mail it queued, and say what happened."""
    store = open_store(config.database_url)
    with store.session() as session, session.begin():
        case = session.get(Case, number)
        if case is None:
            raise CommandError(f"there is no case #{number}")
        try:
            done = action(session, case)
        except CaseActionError as exc:
            raise CommandError(str(exc)) from exc
    deliver_pending(store, config)
    out(*([done] if isinstance(done, str) else done))
    return EXIT_OK


def _comment(args: argparse.Namespace, config: Config) -> int:
    text = args.body if args.body is not None else _read_text(args.file)
    if not text.strip():
        raise CommandError("the comment is empty")
    attachments = [_attachment(path) for path in args.attach]
    author = staff_address(config, args.author)

    def act(session: Session, case: Case) -> str:
        staff_comment(session, case, author, text, config, public=not args.internal, attachments=attachments)
        return f"case #{case.number}: " + ("internal note added" if args.internal
                                           else f"comment added and emailed to {case.contact.email}")
    return _on_case(config, args.number, act)


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{path}: cannot read: {exc}") from exc


def _attachment(path: str) -> NewAttachment:
    file = Path(path)
    try:
        content = file.read_bytes()
    except OSError as exc:
        raise CommandError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    sniffed = sniff(content, content_type)
    return NewAttachment(file.name, content_type, content, sniffed.content_type, sniffed.mismatch)


def _resolve(args: argparse.Namespace, config: Config) -> int:
    def act(session: Session, case: Case) -> str:
        resolve(session, case, args.resolution, config)
        return f"case #{case.number} resolved; the resolution was emailed to {case.contact.email}"
    return _on_case(config, args.number, act)


def _close(args: argparse.Namespace, config: Config) -> int:
    def act(session: Session, case: Case) -> str:
        close(case)
        return f"case #{case.number} closed"
    return _on_case(config, args.number, act)


def _reopen(args: argparse.Namespace, config: Config) -> int:
    def act(session: Session, case: Case) -> str:
        reopen(case)
        return f"case #{case.number} reopened"
    return _on_case(config, args.number, act)


def _approve(args: argparse.Namespace, config: Config) -> int:
    by = staff_address(config, args.by)

    def act(session: Session, case: Case) -> list[str]:
        changes = approve_contact_change(session, case, by, config)
        return [f"case #{case.number} approved by {by}:", *(f"  {line}" for line in changes)]
    return _on_case(config, args.number, act)
