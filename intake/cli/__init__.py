"""The `intake` command line: support staff's way in.

Each subcommand loads the configuration once, opens the store, does one
thing and prints either lines for people or, with --json, the stable shapes of
`intake.cli.views` (documented in the README).
"""
from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.cli import views
from intake.act.bounces import clear_bouncing
from intake.act.cases import (CaseActionError, NewAttachment, approve_contact_change, close, reopen, resolve,
                          staff_comment)
from intake.config import Config, ConfigError, load_config
from intake.store.contacts_csv import ContactsFileError, import_contacts
from intake.cli.serve import add_serve_command
from intake.store.lookups import DatabaseDirectory, DatabaseThreads
from intake.store.models import Account, Case, CaseStatus, Contact, InboundMessage, OutboundMessage
from intake.mailout.delivery import deliver_pending
from intake.mailin.files import Item, items_from
from intake.store.database import Store, open_store, store_raw
from intake.act.worker import Preview, Processed, preview, process_message, replay
from parsers.headers import envelope_of
from routing.contacts import AccountView, ContactView
from routing.threads import CaseView

EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE = 0, 1, 2
PROGRESS_THRESHOLD = 50


class CommandError(Exception):
    """A problem with what was asked, reported on stderr with exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        config = load_config(args.config)
        return int(args.handler(args, config) or EXIT_OK)
    except (ConfigError, CommandError, ContactsFileError) as exc:
        print(f"intake: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (`intake cases | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="intake", description="Email-driven support case intake.")
    parser.add_argument("--config", metavar="PATH", help="configuration file (default: ./config.toml)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    ingest = _command(commands, "ingest", _ingest, "process .eml files, Maildir folders and mbox files")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.add_argument("--dry-run", action="store_true",
                        help="show what would happen to each message without writing anything")

    contacts = commands.add_parser("contacts", help="the contact registry").add_subparsers(metavar="ACTION")
    imported = _command(contacts, "import", _contacts_import, "import or update contacts from a CSV file")
    imported.add_argument("file", metavar="FILE.csv")
    cleared = _command(contacts, "clear-bounce", _contacts_clear_bounce,
                       "mail a contact again after their address stopped bouncing")
    cleared.add_argument("email", metavar="EMAIL")
    listed = _command(contacts, "list", _contacts_list, "list contacts")
    listed.add_argument("--json", action="store_true")

    cases = _command(commands, "cases", _cases, "list cases")
    cases.add_argument("--status", choices=("open", "closed", "all"), default="open")
    cases.add_argument("--account", metavar="NAME")
    cases.add_argument("--json", action="store_true")

    show = _command(commands, "show", _show, "show one case in full")
    show.add_argument("number", type=int, metavar="N")
    show.add_argument("--json", action="store_true")

    outbox = _command(commands, "outbox", _outbox, "list outgoing mail")
    outbox.add_argument("--json", action="store_true")

    messages = _command(commands, "messages", _messages, "list received messages and their outcomes")
    messages.add_argument("--outcome", metavar="OUTCOME", help="only this outcome (e.g. failed, refused)")
    messages.add_argument("--json", action="store_true")

    comment = _command(commands, "comment", _comment, "add a comment to a case (public ones are emailed)")
    comment.add_argument("number", type=int, metavar="N")
    body = comment.add_mutually_exclusive_group(required=True)
    body.add_argument("--body", metavar="TEXT")
    body.add_argument("--file", metavar="PATH", help="read the comment from a file ('-' for standard input)")
    comment.add_argument("--attach", nargs="+", default=[], metavar="PATH")
    comment.add_argument("--internal", action="store_true", help="a note for staff only; not emailed")
    comment.add_argument("--author", metavar="EMAIL", help="default: the first staff address, else the From address")

    resolve = _command(commands, "resolve", _resolve, "resolve a case and email the resolution")
    resolve.add_argument("number", type=int, metavar="N")
    resolve.add_argument("--resolution", required=True, metavar="TEXT")
    for name, handler, text in (("close", _close, "close a case"), ("reopen", _reopen, "reopen a resolved or closed case")):
        _command(commands, name, handler, text).add_argument("number", type=int, metavar="N")
    approve = _command(commands, "approve", _approve,
                       "apply an approved Modify Support Contacts case to the contact registry")
    approve.add_argument("number", type=int, metavar="N")
    approve.add_argument("--by", metavar="EMAIL", help="who approved (default: the first staff address)")

    add_serve_command(commands)

    replayed = _command(commands, "replay", _replay, "process failed messages again")
    replayed.add_argument("ids", nargs="+", type=int, metavar="MESSAGE_ID")
    return parser


def _command(commands: Any, name: str, handler: Callable[..., int | None], help_text: str) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=help_text, description=help_text)
    sub.set_defaults(handler=handler)
    return sub


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


# --- ingest -----------------------------------------------------------------


def _ingest(args: argparse.Namespace, config: Config) -> int:
    items = items_from(args.paths)
    if args.dry_run:
        return _dry_run(items, config)
    store = open_store(config.database_url)
    unreadable = 0
    for item in _with_progress(items):
        line, readable = _ingest_one(item, store, config)
        unreadable += not readable
        print(line, flush=True)
    delivered = deliver_pending(store, config)
    if delivered:
        where = f"the relay {config.relay.host}" if config.relay else f"the Maildir {config.outgoing_maildir}"
        print(f"{delivered} outgoing message(s) delivered to {where}")
    return EXIT_UNREADABLE if unreadable else EXIT_OK


def _read(item: Item) -> tuple[bytes | None, str | None]:
    if item.read is None:
        return None, item.error
    try:
        return item.read(), None
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"


def _ingest_one(item: Item, store: Store, config: Config) -> tuple[str, bool]:
    raw, error = _read(item)
    if raw is None:
        return f"{item.label}: error: {error}", False
    envelope = envelope_of(raw)
    stored = store_raw(store, raw, message_id=envelope.message_id, sender=envelope.sender,
                       subject=envelope.subject, source=f"file:{item.label}")
    if stored.duplicate:
        with store.session() as session:
            earlier = session.get(InboundMessage, stored.id)
            outcome = earlier.outcome if earlier else None
        return f"{item.label}: duplicate of message {stored.id} ({outcome or 'not processed yet'}); skipped", True
    processed = process_message(store, config, stored.id)
    return f"{item.label}: {_describe(processed)}", True


def _describe(processed: Processed | None) -> str:
    if processed is None:
        return "stored, not processed yet (the database is busy, or another worker has it); it will be" \
               " processed by the next run or by intake serve"
    text = processed.outcome.value
    if processed.case_number is not None:
        text += f" #{processed.case_number}"
    last = processed.reasons[-1] if processed.reasons else ""
    text += f": {last}" if last else ""
    if processed.reply_to:
        text += f" (reply to {processed.reply_to})"
    return text


def _with_progress(items: list[Item]) -> Any:
    if len(items) < PROGRESS_THRESHOLD or not sys.stderr.isatty():
        return items
    from rich.console import Console
    from rich.progress import track
    return track(items, description="ingesting", console=Console(stderr=True), transient=True)


class _NoContacts:
    """The directory of a database that does not exist yet (a dry run never creates it)."""

    def contact_by_email(self, email: str) -> ContactView | None:
        return None

    def contacts_of(self, account: AccountView) -> list[ContactView]:
        return []


class _NoCases:
    def case(self, number: int) -> CaseView | None:
        return None

    def case_of_message_id(self, message_id: str) -> CaseView | None:
        return None


def _dry_run(items: list[Item], config: Config) -> int:
    unreadable = 0
    store = _existing_store(config)
    session = store.session() if store else None
    directory = DatabaseDirectory(session) if session else _NoContacts()
    threads = DatabaseThreads(session) if session else _NoCases()
    try:
        for item in items:
            raw, error = _read(item)
            if raw is None:
                unreadable += 1
                print(f"{item.label}: error: {error}")
                continue
            _print_preview(item.label, preview(raw, directory, threads, config))
    finally:
        if session is not None:
            session.rollback()
            session.close()
    return EXIT_UNREADABLE if unreadable else EXIT_OK


def _existing_store(config: Config) -> Store | None:
    url = config.database_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return None
    return open_store(url, create=False)


def _print_preview(label: str, result: Preview) -> None:
    decision = result.decision
    print(f"== {label}")
    print(f"outcome: {decision.outcome.value} (dry run: nothing written)")
    if result.message is not None:
        print(f"from: {result.message.from_address}  subject: {result.message.subject}")
    if decision.draft is not None:
        draft = decision.draft
        print(f"case: {draft.spec.case_type.value}, priority {draft.priority}, account {draft.account.name}, "
              f"contact {draft.contact.email}, department {draft.department}")
        for label_, value in {"Subject": draft.subject, **draft.fields}.items():
            print(f"  {label_}: {value}")
    print("reasons:")
    for reason in decision.reasons:
        print(f"  - {reason}")
    if result.reply is not None:
        print("reply that would be sent:")
        print(_text_part(result.reply))


def _text_part(raw: bytes) -> str:
    import email
    from email import policy
    message = email.message_from_bytes(raw, policy=policy.default)
    body = message.get_body(preferencelist=("plain",))
    headers = "".join(f"  {name}: {message[name]}\n" for name in ("To", "Subject") if message[name])
    content = body.get_content() if body is not None else ""
    return headers + "\n".join("  | " + line for line in content.rstrip().splitlines())


# --- contacts ---------------------------------------------------------------


def _contacts_import(args: argparse.Namespace, config: Config) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"{path}: no such file")
    store = open_store(config.database_url)
    with store.session() as session, session.begin():
        report = import_contacts(session, path)
    for error in report.errors:
        print(f"{path}: {error.message}" if error.message.startswith("line") else
              f"{path}: line {error.line}: {error.message}", file=sys.stderr)
    print(f"{report.created} contact(s) created, {report.updated} updated, "
          f"{report.accounts_created} account(s) created, {len(report.errors)} row(s) rejected")
    return EXIT_OK


def _contacts_clear_bounce(args: argparse.Namespace, config: Config) -> int:
    store = open_store(config.database_url)
    with store.session() as session, session.begin():
        if not clear_bouncing(session, args.email.strip().lower()):
            raise CommandError(f"there is no contact {args.email}")
    print(f"{args.email}: bounce count cleared; the contact will be mailed again")
    return EXIT_OK


def _listing(config: Config, as_json: bool, query: Callable[[Session], Any],
             to_json: Callable[[Any], dict[str, Any]], to_text: Callable[[Any], str]) -> int:
    """Print the rows `query` selects: as a JSON array of `to_json`, or one `to_text` each."""
    store = open_store(config.database_url)
    with store.session() as session:
        rows = session.scalars(query(session)).all()
        if as_json:
            _print_json([to_json(row) for row in rows])
        else:
            for row in rows:
                print(to_text(row))
    return EXIT_OK


def _contact_line(c: Contact) -> str:
    state = ("" if c.active else " (inactive)") + (" (bouncing: not mailed)" if c.bouncing else "")
    accounts = "; ".join(a.name for a in c.accounts)
    return f"{c.email:40} {c.full_name:25} {c.contact_type:10} {accounts}{state}"


def _contacts_list(args: argparse.Namespace, config: Config) -> int:
    return _listing(config, args.json, lambda _: select(Contact).order_by(Contact.email), views.contact_view,
                    _contact_line)


# --- cases ------------------------------------------------------------------


def _cases(args: argparse.Namespace, config: Config) -> int:
    def query(session: Session) -> Any:
        selected = select(Case).order_by(Case.number)
        if args.status == "open":
            selected = selected.where(Case.status != CaseStatus.CLOSED.value)
        elif args.status == "closed":
            selected = selected.where(Case.status == CaseStatus.CLOSED.value)
        if args.account:
            selected = selected.join(Account).where(Account.name == _account_name(session, args.account))
        return selected

    return _listing(config, args.json, query, views.case_summary,
                    lambda case: f"#{case.number:<5} {case.status:8} {case.priority:8} {case.case_type:26} "
                                 f"{case.account.name:24} {case.subject}")


def _account_name(session: Session, written: str) -> str:
    names = session.scalars(select(Account.name)).all()
    for name in names:
        if name.lower() == written.strip().lower():
            return name
    raise CommandError(f"no account named {written!r}; accounts: {', '.join(sorted(names)) or 'none yet'}")


def _show(args: argparse.Namespace, config: Config) -> int:
    store = open_store(config.database_url)
    with store.session() as session:
        case = session.get(Case, args.number)
        if case is None:
            raise CommandError(f"there is no case #{args.number}")
        detail = views.case_detail(case)
        if args.json:
            _print_json(detail)
        else:
            _print_case(detail)
    return EXIT_OK


def _print_case(detail: dict[str, Any]) -> None:
    print(f"Case #{detail['number']}: {detail['subject']}")
    for key in ("case_type", "priority", "status", "account", "contact", "submitted_by", "department",
                "billable", "created", "modified"):
        print(f"  {key.replace('_', ' ').capitalize()}: {detail[key]}")
    print("  Description:")
    print("\n".join("    " + line for line in detail["description"].splitlines()))
    for label, value in detail["fields"].items():
        shown = ", ".join(value) if isinstance(value, list) else value
        lines = str(shown if shown is not None else "").splitlines() or [""]
        print(f"  {label}: {lines[0]}")
        for line in lines[1:]:
            print(f"    {line}")
    for attachment in detail["attachments"]:
        print(f"  Attachment: {attachment['filename']} ({attachment['content_type']}, {attachment['size']} bytes, "
              f"sha256 {attachment['sha256'][:12]}…)")
    if detail["linked_cases"]:
        print("  Linked cases: " + ", ".join(f"#{n}" for n in detail["linked_cases"]))
    if detail["resolution"]:
        print(f"  Resolution: {detail['resolution']}")
    print("Thread:")
    for when, kind, lines in _thread(detail):
        print(f"  [{when}] {kind}")
        for line in lines:
            print(f"      {line}")


def _thread(detail: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """Mail and comments of a case, in time order, as (time, heading, lines)."""
    entries = []
    for m in detail["messages"]:
        what = m["outcome"] or m["kind"]
        who = m["from"] or ", ".join(m["to"])
        entries.append((m["date"], f"{m['direction']} {what} {who} <{m['message_id']}>: {m['subject']}",
                        [f"- {reason}" for reason in m["reasons"]]))
    for c in detail["comments"]:
        heading = f"comment by {c['author']}" + ("" if c["public"] else " (internal)")
        files = [f"[attached: {a['filename']}]" for a in c["attachments"]]
        entries.append((c["created"], heading, c["body"].splitlines() + files))
    return sorted(entries, key=lambda entry: entry[0] or "")


def _outbox(args: argparse.Namespace, config: Config) -> int:
    return _listing(config, args.json, lambda _: select(OutboundMessage).order_by(OutboundMessage.id),
                    views.outbox_view,
                    lambda m: f"{m.id:<5} {m.status:10} {m.kind:18} {_case_tag(m.case_number):6} "
                              f"{', '.join(m.recipients):32} {m.subject}")


def _messages(args: argparse.Namespace, config: Config) -> int:
    def query(_: Session) -> Any:
        selected = select(InboundMessage).order_by(InboundMessage.id)
        return selected.where(InboundMessage.outcome == args.outcome) if args.outcome else selected

    def line(m: InboundMessage) -> str:
        head = f"{m.id:<5} {m.outcome or 'pending':17} {_case_tag(m.case_number):6} {m.sender or '-':32} {m.subject}"
        return "\n".join([head, *(f"      - {reason}" for reason in m.reasons or [])])

    return _listing(config, args.json, query, views.inbound_view, line)


def _case_tag(number: int | None) -> str:
    return f"#{number}" if number else "-"


# --- staff actions on a case -------------------------------------------------------


def _on_case(config: Config, number: int, action: Callable[[Session, Case], str]) -> int:
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
    print(done)
    return EXIT_OK


def _staff_address(config: Config, given: str | None) -> str:
    return (given or (config.conversations.staff_addresses or (config.from_address,))[0]).strip().lower()


def _comment(args: argparse.Namespace, config: Config) -> int:
    text = args.body if args.body is not None else _read_text(args.file)
    if not text.strip():
        raise CommandError("the comment is empty")
    attachments = [_attachment(path) for path in args.attach]
    author = _staff_address(config, args.author)

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
    return NewAttachment(file.name, content_type, content)


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
    by = _staff_address(config, args.by)

    def act(session: Session, case: Case) -> str:
        changes = approve_contact_change(session, case, by, config)
        return f"case #{case.number} approved by {by}:\n" + "\n".join(f"  {line}" for line in changes)
    return _on_case(config, args.number, act)


def _replay(args: argparse.Namespace, config: Config) -> int:
    store = open_store(config.database_url)
    for processed in replay(store, config, args.ids):
        print(f"message {processed.inbound_id}: {_describe(processed)}")
    deliver_pending(store, config)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
