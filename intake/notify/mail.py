"""Notice mail: one step rendered once, then personalised per recipient by replacing a few bytes.

Rendering the templates and building the MIME tree is the costly part, so it
is done once per step; each recipient's message is then the shared bytes with
its own To, Message-ID, thread headers and (for maintenance) List-Unsubscribe
prepended, and its own unsubscribe address put in the body. So ten thousand
messages cost one render and ten thousand byte joins.

Every message is automatic bulk mail (`Auto-Submitted: auto-generated`,
`Precedence: bulk`) with a `List-Id`; maintenance mail adds `List-Unsubscribe`
(RFC 2369, a tokened plus address intake handles itself) and the window as a
`text/calendar; method=PUBLISH` part. Every header value is cleaned by
`header_text`.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from intake.config import Config
from intake.mailout.compose import header_text
from intake.mailout.templates import template_environment
from intake.notify.calendar import MaintenanceWindow, maintenance_calendar
from intake.notify.present import Banner, NoticeCard, banner_for
from intake.notify.states import NoticeKind
from routing.notice_threads import notice_message_id, unsubscribe_address
from routing.states import Reply

__all__ = ["Personal", "StepMessage", "list_id", "personalise", "render_step"]

# Stands for each recipient's unsubscribe address in the shared body: plain ASCII with nothing
# quoted-printable encodes, on a line of its own so that no soft line break splits it.
UNSUBSCRIBE_PLACEHOLDER = "intake-unsubscribe-address-placeholder"


@dataclass(frozen=True)
class StepMessage:
    """One step's mail, rendered once: the shared header lines and the MIME body."""

    notice_id: int
    step_id: int
    root_step_id: int  # the first step: later mail threads under its Message-ID
    kind: str
    subject: str
    head: bytes
    body: bytes
    unsubscribe: bool  # maintenance mail carries List-Unsubscribe


@dataclass(frozen=True)
class Personal:
    contact_id: int
    name: str
    address: str


def list_id(config: Config) -> str:
    domain = config.notifications.list_id or f"notices.{config.message_id_domain}"
    return f"{header_text(config.organisation)} notifications <{header_text(domain)}>"


def subject_of(card: NoticeCard) -> str:
    """The same for every step of a notice, so that mail clients keep them in one conversation."""
    return header_text(f"[{card.kind_label}] {card.title}")


def _banner_words(card: NoticeCard, banner: Banner) -> str:
    if not card.is_open:
        return f"{card.kind_label} {card.status_label}: {card.title}"
    if card.kind == NoticeKind.MAINTENANCE and card.status == "in progress":
        return f"Maintenance is in progress: {card.title}"
    return f"{banner.words}: {card.title}"


def _values(card: NoticeCard, step_kind: str, config: Config, unsubscribe: bool) -> dict[str, object]:
    banner = banner_for([card])
    latest = card.updates[0] if card.updates else None
    return {"card": card, "banner": banner, "banner_words": _banner_words(card, banner), "step_kind": step_kind,
            "step_label": latest.label if latest else "", "step_body": latest.body if latest else "",
            "organisation": config.organisation, "support_address": config.support_addresses[0],
            "status_page_url": config.notifications.status_page_url or "", "subject": subject_of(card),
            "unsubscribe_address": UNSUBSCRIBE_PLACEHOLDER if unsubscribe else ""}


def render_step(card: NoticeCard, step_id: int, step_kind: str, root_step_id: int, sequence: int, config: Config,
                now: dt.datetime) -> StepMessage:
    """Render one step of a notice for every recipient at once."""
    unsubscribe = card.kind == NoticeKind.MAINTENANCE
    values = _values(card, step_kind, config, unsubscribe)
    environment = template_environment(config.template_dir)
    message = EmailMessage()
    message["From"] = formataddr((header_text(config.from_name), config.from_address))
    message["Subject"] = subject_of(card)
    message["Date"] = format_datetime(now.astimezone(config.timezone))
    message["Auto-Submitted"] = Reply.NOTICE.auto_submitted or "auto-generated"
    message["Precedence"] = "bulk"
    message["List-Id"] = list_id(config)
    message["X-Auto-Response-Suppress"] = "All"
    message["X-Loop"] = config.from_address
    message.set_content(environment.get_template("notice.txt").render(values), charset="utf-8",
                        cte="quoted-printable")
    message.add_alternative(environment.get_template("notice.html").render(values), subtype="html",
                            charset="utf-8", cte="quoted-printable")
    if unsubscribe and card.starts is not None and card.ends is not None:
        message.add_alternative(maintenance_calendar(_window(card, sequence, config, now)), subtype="calendar",
                                charset="utf-8", params={"method": "PUBLISH"})
    head, _, body = message.as_bytes().partition(b"\n\n")
    if unsubscribe and body.count(UNSUBSCRIBE_PLACEHOLDER.encode()) != 2:
        raise ValueError("a template split or dropped the unsubscribe address; keep it on a line of its own")
    return StepMessage(card.id, step_id, root_step_id, step_kind, str(message["Subject"]), head + b"\n", body,
                       unsubscribe)


def _window(card: NoticeCard, sequence: int, config: Config, now: dt.datetime) -> MaintenanceWindow:
    assert card.starts is not None and card.ends is not None
    return MaintenanceWindow(notice_id=card.id, title=card.title, description=card.body, starts=card.starts,
                             ends=card.ends, sequence=sequence, cancelled=card.status == "cancelled", stamp=now,
                             domain=config.message_id_domain, url=config.notifications.status_page_url)


def message_id_for(config: Config, notice_id: int, step_id: int, contact_id: int) -> str:
    return notice_message_id(config.conversations.secret, notice_id, step_id, contact_id, config.message_id_domain)


def personalise(step: StepMessage, person: Personal, config: Config) -> tuple[str, bytes]:
    """One recipient's message: (its Message-ID without brackets, its bytes)."""
    message_id = message_id_for(config, step.notice_id, step.step_id, person.contact_id)
    lines = [f"To: {formataddr((header_text(person.name), person.address), charset='utf-8')}",
             f"Message-ID: <{message_id}>"]
    if step.step_id != step.root_step_id:
        root = message_id_for(config, step.notice_id, step.root_step_id, person.contact_id)
        lines += [f"In-Reply-To: <{root}>", f"References: <{root}>"]
    body = step.body
    if step.unsubscribe:
        address = unsubscribe_address(config.support_addresses[0], config.conversations.secret, person.contact_id)
        lines.append(f"List-Unsubscribe: <mailto:{address}?subject=unsubscribe>")
        body = body.replace(UNSUBSCRIBE_PLACEHOLDER.encode(), address.encode())
    return message_id, ("\n".join(lines) + "\n").encode("utf-8") + step.head + b"\n" + body

