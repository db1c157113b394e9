"""The status page: a static site (two pages, status.json, an Atom feed) that can be hosted anywhere.

The seed's notifications page is "not hosted on the main network, so even if
[the product] is unavailable ... messages can be seen": so the site is plain
files, written by `intake status-page --out DIR` or kept current by the
daemon, then copied off by `[notifications] status_page_publish_command`.
Building is pure (`build_site`: notices in, file contents out) and
deterministic, so an unchanged state writes nothing and runs no command;
writing replaces each file atomically, under a lock, so two daemons never
interleave.

status.json: {"organisation", "title", "updated", "banner": {"state":
incident|maintenance|none, "text", "background", "foreground"}, "open":
[notice...], "closed": [notice...]}, each notice as `intake.notify.views.card_view`.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import select, text
from sqlalchemy.orm import selectinload

from intake.config import Config
from intake.logs import logfmt
from intake.notify.present import NoticeCard, banner_for, card_of
from intake.notify.views import card_view, timestamp
from intake.store.database import Store
from intake.store.notices import Notice

__all__ = ["SiteWritten", "banner_text", "build_site", "load_cards", "regenerate", "write_site"]

log = logging.getLogger("intake.notify.status_page")
LOCK_NAME = ".intake-status.lock"
PUBLISH_TIMEOUT_SECONDS = 300
ADVISORY_LOCK_KEY = 0x696E74616B6573  # "intakes": the status page's PostgreSQL advisory lock
CLOSED_SHOWN = 50  # closed notices the page and the feed list, newest first


@dataclass(frozen=True)
class SiteWritten:
    directory: Path
    changed: tuple[str, ...]  # the files whose content changed
    published: bool | None  # the publish command: ran and succeeded, failed, or None when not run


@cache
def _environment() -> Environment:
    return Environment(loader=PackageLoader("intake", "templates/status"), undefined=StrictUndefined,
                       autoescape=select_autoescape(enabled_extensions=("html", "atom")), trim_blocks=True,
                       lstrip_blocks=True)


def banner_text(cards: Sequence[NoticeCard]) -> str:
    banner = banner_for(cards)
    shown = [c for c in cards if c.is_open and c.kind == banner.state]
    if not shown:
        return banner.words
    newest = max(shown, key=lambda c: (c.published or dt.datetime.min.replace(tzinfo=dt.UTC), c.id))
    more = f" (and {len(shown) - 1} more)" if len(shown) > 1 else ""
    words = "Maintenance is in progress" if newest.status == "in progress" else banner.words
    return f"{words}: {newest.title}{more}"


def _ordered(cards: Sequence[NoticeCard]) -> tuple[list[NoticeCard], list[NoticeCard]]:
    def newest(card: NoticeCard) -> tuple[dt.datetime, int]:
        return (card.closed or card.published or dt.datetime.min.replace(tzinfo=dt.UTC), card.id)
    open_cards = sorted((c for c in cards if c.is_open), key=lambda c: (c.kind != "incident", -c.id))
    closed = sorted((c for c in cards if not c.is_open), key=newest, reverse=True)[:CLOSED_SHOWN]
    return open_cards, closed


def _updated(cards: Sequence[NoticeCard]) -> dt.datetime:
    moments = [m for c in cards for m in (c.published, c.closed, *(u.at for u in c.updates)) if m is not None]
    return max(moments, default=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))


def build_site(cards: Sequence[NoticeCard], config: Config) -> dict[str, bytes]:
    """Every file of the site, by name."""
    open_cards, closed = _ordered(cards)
    banner = banner_for(cards)
    settings = config.notifications
    values = {"organisation": config.organisation, "title": settings.status_page_title, "banner": banner,
              "banner_text": banner_text(cards), "open_cards": open_cards, "closed_cards": closed}
    page = _environment().get_template("page.html")
    status = {"organisation": config.organisation, "title": settings.status_page_title,
              "updated": timestamp(_updated(cards)),
              "banner": {"state": banner.state, "text": banner_text(cards), "background": banner.background,
                         "foreground": banner.foreground},
              "open": [card_view(c, config.timezone) for c in open_cards],
              "closed": [card_view(c, config.timezone) for c in closed]}
    return {"index.html": page.render(values, tab="open").encode(),
            "closed.html": page.render(values, tab="closed").encode(),
            "status.json": (json.dumps(status, indent=2, ensure_ascii=False) + "\n").encode(),
            "feed.atom": _feed(open_cards + closed, config).encode()}


def _feed(cards: Sequence[NoticeCard], config: Config) -> str:
    base = config.notifications.status_page_url
    base = base if not base or base.endswith("/") else base + "/"
    domain = config.message_id_domain
    entries = []
    for card in sorted(cards, key=lambda c: _updated([c]), reverse=True):
        text = "\n\n".join([card.times, *(f"{u.label}: {u.body}" for u in card.updates), card.body])
        entries.append({"title": f"{card.kind_label}: {card.title} ({card.status_label})",
                        "id": f"tag:{domain},2026:notice:{card.id}", "updated": timestamp(_updated([card])),
                        "published": timestamp(card.published), "notice": card.id,
                        "page": "index.html" if card.is_open else "closed.html",
                        "text": text})
    return _environment().get_template("feed.atom").render(
        organisation=config.organisation, title=config.notifications.status_page_title,
        feed_id=f"tag:{domain},2026:notices", updated=timestamp(_updated(cards)), base_url=base or "",
        entries=entries)


def load_cards(store: Store, config: Config) -> list[NoticeCard]:
    """Every published notice as the page shows it (draft steps left out)."""
    with store.session() as session:
        notices = session.scalars(select(Notice).where(Notice.published.is_not(None))
                                  .options(selectinload(Notice.steps))).all()
        return [card_of(n, config.timezone) for n in notices]


@contextlib.contextmanager
def _locked(store: Store, directory: Path) -> Iterator[None]:
    """One writer at a time: a file lock for the processes of one host and, on PostgreSQL, an advisory
    lock for daemons on several hosts, so their publish commands never run at once."""
    directory.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if store.engine.dialect.name == "postgresql":
            connection = stack.enter_context(store.engine.connect())
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            stack.callback(connection.execute, text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
        handle = stack.enter_context((directory / LOCK_NAME).open("a"))
        fcntl.flock(handle, fcntl.LOCK_EX)
        stack.callback(fcntl.flock, handle, fcntl.LOCK_UN)
        yield


def write_site(directory: Path, files: dict[str, bytes]) -> tuple[str, ...]:
    """Write the files whose content differs, each replaced atomically; the names written."""
    changed = []
    for name, content in files.items():
        target = directory / name
        if target.is_file() and target.read_bytes() == content:
            continue
        temporary = directory / f".{name}.tmp"
        temporary.write_bytes(content)
        os.replace(temporary, target)
        changed.append(name)
    return tuple(changed)


def regenerate(store: Store, config: Config, directory: Path | None = None) -> SiteWritten | None:
    """Bring the site in `directory` (default: `status_page_dir`) up to date; publish it when it changed."""
    directory = directory or config.notifications.status_page_dir
    if directory is None:
        return None
    files = build_site(load_cards(store, config), config)
    with _locked(store, directory):
        changed = write_site(directory, files)
        published = _publish(config, directory) if changed else None
    if changed:
        log.info(logfmt(event="status_page_written", dir=directory, files=",".join(changed), published=published))
    return SiteWritten(directory, changed, published)


def _publish(config: Config, directory: Path) -> bool | None:
    command = config.notifications.status_page_publish_command
    if not command:
        return None
    try:
        done = subprocess.run(command, shell=True, cwd=directory, capture_output=True, text=True,
                              timeout=PUBLISH_TIMEOUT_SECONDS, env={**os.environ, "INTAKE_STATUS_DIR": str(directory)})
    except subprocess.TimeoutExpired:
        log.error(logfmt(event="status_page_publish_failed", error="timed out"))
        return False
    if done.returncode != 0:
        log.error(logfmt(event="status_page_publish_failed", status=done.returncode, error=done.stderr[-2000:]))
        return False
    return True
