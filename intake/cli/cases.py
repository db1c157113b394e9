"""`intake cases | show | outbox | messages`: reading the stored state, as text or --json."""
from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.cli import views
from intake.cli.common import EXIT_OK, CommandError, case_tag, command, listing, print_json
from intake.cli.text import MISSING, billable, case_fields, labelled, out, shown
from intake.config import Config
from intake.store.database import open_store
from intake.store.models import Account, Case, CaseStatus, InboundMessage, OutboundMessage


def add_commands(commands: Any) -> None:
    cases = command(commands, "cases", _cases, "list cases")
    cases.add_argument("--status", choices=("open", "closed", "all"), default="open")
    cases.add_argument("--account", metavar="NAME")
    cases.add_argument("--department", metavar="NAME", help="only the cases routed to this department")
    cases.add_argument("--json", action="store_true")

    show = command(commands, "show", _show, "show one case in full")
    show.add_argument("number", type=int, metavar="N")
    show.add_argument("--json", action="store_true")

    outbox = command(commands, "outbox", _outbox, "list outgoing mail")
    outbox.add_argument("--json", action="store_true")

    messages = command(commands, "messages", _messages, "list received messages and their outcomes")
    messages.add_argument("--outcome", metavar="OUTCOME", help="only this outcome (e.g. failed, refused)")
    messages.add_argument("--json", action="store_true")


def _cases(args: argparse.Namespace, config: Config) -> int:
    def query(session: Session) -> Any:
        selected = select(Case).order_by(Case.number)
        if args.status == "open":
            selected = selected.where(Case.status != CaseStatus.CLOSED.value)
        elif args.status == "closed":
            selected = selected.where(Case.status == CaseStatus.CLOSED.value)
        if args.account:
            selected = selected.join(Account).where(Account.name == _account_name(session, args.account))
        if args.department:
            selected = selected.where(Case.department == _department_name(session, args.department, config))
        return selected

    return listing(config, args.json, query, views.case_summary,
                   lambda case: f"#{case.number:<5} {case.status:8} {case.priority:8} {case.case_type:26} "
                                f"{case.account.name:24} {case.subject}")


def _account_name(session: Session, written: str) -> str:
    names = session.scalars(select(Account.name)).all()
    for name in names:
        if name.lower() == written.strip().lower():
            return name
    raise CommandError(f"no account named {written!r}; accounts: {', '.join(sorted(names)) or 'none yet'}")


def _department_name(session: Session, written: str, config: Config) -> str:
    """The department as cases store it, matched without case; one no case type routes to is an error."""
    names = set(config.departments.values()) | set(session.scalars(select(Case.department).distinct()).all())
    for name in names:
        if name.casefold() == written.strip().casefold():
            return name
    raise CommandError(f"no department named {written!r}; departments: {', '.join(sorted(names))}")


def _show(args: argparse.Namespace, config: Config) -> int:
    store = open_store(config.database_url)
    with store.session() as session:
        case = session.get(Case, args.number)
        if case is None:
            raise CommandError(f"there is no case #{args.number}")
        detail = views.case_detail(case)
        if args.json:
            print_json(detail)
        else:
            _print_case(detail)
    return EXIT_OK


def _print_case(detail: dict[str, Any]) -> None:
    out(f"Case #{detail['number']}: {shown(detail['subject'])}")
    for key in ("case_type", "priority", "status", "account", "contact", "submitted_by", "department",
                "billable", "created", "modified"):
        value = billable(detail[key]) if key == "billable" else shown(detail[key])
        out(f"  {key.replace('_', ' ').capitalize()}: {value}")
    out(*case_fields(detail["description"], detail["fields"], detail["fields_as_written"]))
    for index, attachment in enumerate(detail["attachments"], start=1):
        out(f"  Attachment {index}: {attachment['filename']} ({attachment['content_type']}, "
            f"{attachment['size']} bytes, sha256 {attachment['sha256'][:12]}…)" + _mismatch(attachment))
    if detail["linked_cases"]:
        out("  Linked cases: " + ", ".join(f"#{n}" for n in detail["linked_cases"]))
    if detail["resolution"]:
        out(*labelled("Resolution", detail["resolution"]))
    out("Thread:")
    for when, kind, lines in _thread(detail):
        out(f"  [{shown(when)}] {kind}", *(f"      {line}" for line in lines))


def _mismatch(attachment: dict[str, Any]) -> str:
    if not attachment["type_mismatch"]:
        return ""
    return f" TYPE MISMATCH: given as {attachment['content_type']}, the bytes are {attachment['sniffed_type']}"


def _thread(detail: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """Mail and comments of a case, in time order, as (time, heading, lines)."""
    entries = []
    for m in detail["messages"]:
        inbound = m["direction"] == views.INBOUND
        what = m["outcome"] or m["kind"] or ("pending" if inbound else MISSING)
        who = (m["from"] if inbound else ", ".join(m["to"])) or MISSING
        message_id = f" <{m['message_id']}>" if m["message_id"] else ""
        entries.append((m["date"], f"{m['direction']} {what} {who}{message_id}: {m['subject'] or ''}",
                        [f"- {reason}" for reason in m["reasons"]]))
    for c in detail["comments"]:
        heading = f"comment by {c['author']}" + ("" if c["public"] else " (internal)")
        files = [f"[attached: {a['filename']}]{_mismatch(a)}" for a in c["attachments"]]
        entries.append((c["created"], heading, c["body"].splitlines() + files))
    return sorted(entries, key=lambda entry: entry[0] or "")


def _outbox(args: argparse.Namespace, config: Config) -> int:
    return listing(config, args.json, lambda _: select(OutboundMessage).order_by(OutboundMessage.id),
                   views.outbox_view,
                   lambda m: f"{m.id:<5} {m.status:10} {m.kind:18} {case_tag(m.case_number):6} "
                             f"{', '.join(m.recipients):32} {m.subject}")


def _messages(args: argparse.Namespace, config: Config) -> int:
    def query(_: Session) -> Any:
        selected = select(InboundMessage).order_by(InboundMessage.id)
        return selected.where(InboundMessage.outcome == args.outcome) if args.outcome else selected

    def lines(m: InboundMessage) -> list[str]:
        head = f"{m.id:<5} {m.outcome or 'pending':17} {case_tag(m.case_number):6} {m.sender or '-':32} {m.subject}"
        return [head, *(f"      - {reason}" for reason in m.reasons or [])]

    return listing(config, args.json, query, views.inbound_view, lines)
