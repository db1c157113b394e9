"""`intake notify incident | maintenance | update | resolve | cancel | list | show | preview | publish`
and `intake status-page`: notices to the contacts in scope, and the static status page."""
from __future__ import annotations

import argparse
import datetime as dt
import email
from collections.abc import Callable
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.cli.common import EXIT_OK, CommandError, command, print_json
from intake.cli.text import block, labelled, out
from intake.config import Config
from intake.mailout.delivery import deliver_pending
from intake.notify.mail import Personal, personalise
from intake.notify.notices import (
    NoticeError,
    StepDone,
    add_step,
    create_notice,
    publish,
    reach,
    resolve_linked,
    step_message_for,
)
from intake.notify.states import OPEN_STATUSES, NoticeKind, StepKind
from intake.notify.status_page import regenerate
from intake.notify.views import notice_detail, notice_summary
from intake.notify.when import WhenError, parse_when
from intake.store.database import Store, open_store
from intake.store.models import utcnow
from intake.store.notices import Notice


def add_commands(commands: Any) -> None:
    notify = commands.add_parser("notify", help="incident and maintenance notices to contacts").add_subparsers(
        metavar="ACTION")
    incident = _mailing(command(notify, "incident", _incident, "post an incident and mail the contacts in scope"))
    incident.add_argument("title", metavar="TITLE")
    _scope_options(incident)
    maintenance = _mailing(command(notify, "maintenance", _maintenance,
                                   "announce a maintenance window and mail the contacts in scope"))
    maintenance.add_argument("title", metavar="TITLE")
    maintenance.add_argument("--starts", required=True, metavar="WHEN", help="e.g. '2026-12-14 22:00' or 'Dec 14 10pm'")
    maintenance.add_argument("--ends", required=True, metavar="WHEN")
    _scope_options(maintenance)
    for name, handler, text in (("update", _update, "add a time-stamped update and mail it"),
                                ("resolve", _resolve, "resolve an incident (or end maintenance) and mail it"),
                                ("cancel", _cancel, "cancel a notice and mail it")):
        step = _mailing(command(notify, name, handler, text))
        step.add_argument("id", type=int, metavar="ID")
        if name == "update":
            step.add_argument("--starts", metavar="WHEN", help="maintenance: move the window to start then")
            step.add_argument("--ends", metavar="WHEN", help="maintenance: move the window to end then")
        if name == "resolve":
            step.add_argument("--resolve-linked", action="store_true",
                              help="also resolve the linked cases with this text, each told on its own thread")
    listed = command(notify, "list", _list, "list open notices (or closed ones)")
    listed.add_argument("--closed", action="store_true")
    listed.add_argument("--json", action="store_true")
    shown = command(notify, "show", _show, "a notice, its updates, the mail per step, linked cases, accounts")
    shown.add_argument("id", type=int, metavar="ID")
    shown.add_argument("--json", action="store_true")
    preview = command(notify, "preview", _preview, "the latest step's mail as one contact in scope gets it")
    preview.add_argument("id", type=int, metavar="ID")
    preview.add_argument("--to", metavar="EMAIL", help="the contact (default: the first in scope)")
    preview.add_argument("--json", action="store_true")
    published = command(notify, "publish", _publish, "send a notice's draft steps", sends_mail=True)
    published.add_argument("id", type=int, metavar="ID")
    published.add_argument("--json", action="store_true")
    page = command(commands, "status-page", _status_page, "write the static status page (HTML, status.json, Atom)")
    page.add_argument("--out", metavar="DIR", help="default: [notifications] status_page_dir")
    page.add_argument("--json", action="store_true")


def _mailing(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sub.set_defaults(sends_mail=True)
    sub.add_argument("--body", required=True, metavar="TEXT")
    sub.add_argument("--draft", action="store_true", help="store it and send nothing (send with `notify publish`)")
    sub.add_argument("--json", action="store_true")
    return sub


def _scope_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--accounts", nargs="+", default=[], metavar="NAME", help="default: every account")
    sub.add_argument("--areas", nargs="+", default=[], metavar="AREA", help="default: every area")


# --- running a change -----------------------------------------------------------------------------


def _change(config: Config, as_json: bool, action: Callable[[Session], tuple[list[StepDone], list[int]]]) -> int:
    """One change in one transaction; then deliver its mail, refresh the status page and say what was done."""
    store = open_store(config.database_url)
    with store.session() as session, session.begin():
        try:
            steps, resolved = action(session)
        except NoticeError as exc:
            raise CommandError(str(exc)) from exc
    if any(not s.draft for s in steps):
        deliver_pending(store, config)
        regenerate(store, config)
    if as_json:
        print_json({"id": steps[0].notice_id, "steps": [_step_json(s) for s in steps],
                    "recipients": sum(s.recipients for s in steps), "draft": all(s.draft for s in steps),
                    "resolved_cases": resolved})
    else:
        out(*(_step_line(s) for s in steps))
        if resolved:
            out(f"resolved linked case(s) {', '.join(f'#{n}' for n in resolved)}; each contact was told")
    return EXIT_OK


def _step_json(step: StepDone) -> dict[str, Any]:
    return {"id": step.step_id, "kind": step.kind, "recipients": step.recipients, "draft": step.draft}


def _step_line(step: StepDone) -> str:
    if step.draft:
        return (f"notice #{step.notice_id}: {step.kind} stored as a draft; it would reach {step.recipients} "
                f"contact(s). Send it with: intake notify publish {step.notice_id}")
    return f"notice #{step.notice_id}: {step.kind}, mailed to {step.recipients} contact(s)"


def _notice(session: Session, notice_id: int) -> Notice:
    notice = session.get(Notice, notice_id)
    if notice is None:
        raise CommandError(f"there is no notice #{notice_id}")
    return notice


def _incident(args: argparse.Namespace, config: Config) -> int:
    return _change(config, args.json, lambda session: ([create_notice(
        session, config, kind=NoticeKind.INCIDENT, title=args.title, body=args.body, accounts=args.accounts,
        areas=args.areas, draft=args.draft, now=utcnow())], []))


def _when(text: str | None, config: Config, now: dt.datetime) -> dt.datetime | None:
    if text is None:
        return None
    try:
        return parse_when(text, config.timezone, now)
    except WhenError as exc:
        raise CommandError(str(exc)) from exc


def _maintenance(args: argparse.Namespace, config: Config) -> int:
    now = utcnow()
    starts, ends = _when(args.starts, config, now), _when(args.ends, config, now)
    return _change(config, args.json, lambda session: ([create_notice(
        session, config, kind=NoticeKind.MAINTENANCE, title=args.title, body=args.body, accounts=args.accounts,
        areas=args.areas, starts=starts, ends=ends, draft=args.draft, now=now)], []))


def _stepper(kind: StepKind) -> Callable[[argparse.Namespace, Config], int]:
    def handler(args: argparse.Namespace, config: Config) -> int:
        def act(session: Session) -> tuple[list[StepDone], list[int]]:
            notice, now = _notice(session, args.id), utcnow()
            starts, ends = (_when(getattr(args, name, None), config, now) for name in ("starts", "ends"))
            done = add_step(session, config, notice, kind, args.body, draft=args.draft, now=now, starts=starts,
                            ends=ends)
            linked = []
            if getattr(args, "resolve_linked", False):
                if args.draft:
                    raise NoticeError("--resolve-linked resolves cases now; it cannot be used with --draft")
                linked = resolve_linked(session, notice, args.body, config)
            return [done], linked
        return _change(config, args.json, act)
    return handler


_update, _resolve, _cancel = _stepper(StepKind.UPDATE), _stepper(StepKind.RESOLVED), _stepper(StepKind.CANCELLED)


def _publish(args: argparse.Namespace, config: Config) -> int:
    return _change(config, args.json, lambda session: (publish(session, config, _notice(session, args.id),
                                                                utcnow()), []))


# --- looking ----------------------------------------------------------------------------------------


def _list(args: argparse.Namespace, config: Config) -> int:
    store = open_store(config.database_url)
    open_values = [s.value for s in OPEN_STATUSES]
    with store.session() as session:
        query = select(Notice).order_by(Notice.id.desc())
        query = query.where(Notice.status.not_in(open_values) if args.closed else Notice.status.in_(open_values))
        notices = session.scalars(query).all()
        if args.json:
            print_json([notice_summary(n) for n in notices])
            return EXIT_OK
        for notice in notices:
            draft = " (draft)" if notice_summary(notice)["draft"] else ""
            out(f"#{notice.id:<5} {notice.kind:12} {notice.status:12} {notice.title}{draft}")
    return EXIT_OK


def _show(args: argparse.Namespace, config: Config) -> int:
    store = open_store(config.database_url)
    with store.session() as session:
        notice = _notice(session, args.id)
        detail = notice_detail(session, notice, reach(session, notice, config))
    if args.json:
        print_json(detail)
        return EXIT_OK
    out(f"Notice #{detail['id']}: {detail['title']}", *labelled("Kind", detail["kind"]),
        *labelled("Status", detail["status"] + (" (has drafts)" if detail["draft"] else "")),
        *labelled("Accounts", detail["accounts"] or "every account"), *labelled("Areas", detail["areas"] or "all"),
        *labelled("Starts", detail["starts"]), *labelled("Ends", detail["ends"]),
        *labelled("Published", detail["published"]), *labelled("Closed", detail["closed"]),
        *block("Body", detail["body"]), "  Steps:")
    for step in detail["steps"]:
        mail = ", ".join(f"{n} {status}" for status, n in sorted(step["mail"].items())) or "none"
        out(f"    #{step['id']} {step['kind']} {step['sent'] or 'draft'}: {step['recipients']} contact(s); "
            f"mail: {mail}", *(f"      {line}" for line in step["body"].splitlines()))
    out(*labelled("Linked cases", [f"#{n}" for n in detail["cases"]]),
        *labelled("Accounts affected", detail["accounts_affected"]),
        *labelled("Contacts in scope", detail["contacts_in_scope"]))
    for note in detail["notes"]:
        out(f"  Note from {note['author']} at {note['created']}:",
            *(f"    {line}" for line in note["body"].splitlines()))
    return EXIT_OK


def _preview(args: argparse.Namespace, config: Config) -> int:
    store = open_store(config.database_url)
    with store.session() as session:
        notice = _notice(session, args.id)
        recipients = reach(session, notice, config)
        wanted = args.to.strip().lower() if args.to else None
        person = next((c for c in recipients if wanted is None or c.email == wanted), None)
        if person is None:
            raise CommandError(f"{args.to} is not in the scope of notice #{notice.id}" if wanted
                               else f"notice #{notice.id} reaches no contact")
        step = notice.steps[-1]
        _, raw = personalise(step_message_for(notice, step, config, utcnow()),
                             Personal(person.id, person.name, person.email), config)
    message = email.message_from_bytes(raw, policy=email_policy.default)
    assert isinstance(message, EmailMessage)
    text = message.get_body(preferencelist=("plain",))
    body = text.get_content() if text is not None else ""
    headers = {name: str(value) for name, value in message.items()}
    if args.json:
        print_json({"id": notice.id, "step": step.id, "to": person.email, "headers": headers, "text": body})
        return EXIT_OK
    out(*(f"{name}: {value}" for name, value in headers.items()), "", *body.splitlines())
    return EXIT_OK


def _status_page(args: argparse.Namespace, config: Config) -> int:
    directory = Path(args.out) if args.out else config.notifications.status_page_dir
    if directory is None:
        raise CommandError("name the folder with --out DIR, or set [notifications] status_page_dir")
    store: Store = open_store(config.database_url)
    written = regenerate(store, config, directory)
    assert written is not None
    if args.json:
        print_json({"dir": str(written.directory), "changed": list(written.changed), "published": written.published})
    else:
        out(f"status page in {written.directory}: " + (f"wrote {', '.join(written.changed)}" if written.changed
                                                      else "unchanged"))
    return EXIT_OK


__all__ = ["add_commands"]
