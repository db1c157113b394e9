"""`intake serve`: the command that starts the daemon of `intake.daemon`, and `serve --check`.

`serve --check` checks everything `serve` needs (the configuration, the
database, the outgoing Maildir, the relay, the listener's port, each IMAP
mailbox) with the same code that uses them, prints one line per check and
exits 0 when all pass, else 1.
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import socket
import sys
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from intake.cli.text import out
from intake.config import Config, ImapMailbox, RelayConfig
from intake.daemon import EXIT_FAILED, EXIT_OK, Daemon, StartupError, shared_secret_problem
from intake.logs import LOG_FORMATS, configure_logging, logfmt
from intake.mailin.smtp import tls_context
from intake.mailout.delivery import open_relay_session
from intake.store.database import open_store
from intake.store.models import InboundMessage
from routing.authenticity import SenderAuth

log = logging.getLogger("intake.daemon")


# --- the command ---------------------------------------------------------------


def add_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Register `intake serve` on the command line's subparsers."""
    text_ = "receive mail over SMTP/LMTP and IMAP and process it until stopped"
    serve = subparsers.add_parser("serve", help=text_, description=text_)
    serve.add_argument("--check", action="store_true",
                       help="check the configuration and reach every configured server, then exit")
    serve.add_argument("--log-format", choices=LOG_FORMATS, default="logfmt",
                       help="log lines on stderr: logfmt key=value (default) or one JSON object per line")
    serve.set_defaults(handler=serve_command)
    return serve


def serve_command(args: argparse.Namespace, config: Config) -> int:
    if args.check:
        return run_checks(config)
    configure_logging(format=args.log_format)
    try:
        return asyncio.run(Daemon(config, args.log_format).run())
    except StartupError as exc:
        log.error(logfmt(event="startup_failed", error=str(exc)))
        out(f"intake: error: {exc}", file=sys.stderr)
        return EXIT_FAILED


# --- serve --check ------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    what: str
    ok: bool
    detail: str


def run_checks(config: Config) -> int:
    """Check everything `serve` needs; print one line per check; 0 when all pass, else 1."""
    checks = [check_configuration(config), check_database(config), check_outgoing(config)]
    if config.relay is not None:
        checks.append(check_relay(config.relay))
    if config.smtp.enabled:
        checks.append(check_smtp(config))
    checks.extend(check_imap(mailbox) for mailbox in config.imap)
    for check in checks:
        out(f"{'ok  ' if check.ok else 'FAIL'}  {check.what}: {check.detail}")
    for warning in warnings_about(config):
        out(f"warn  {warning}")
    failed = [c.what for c in checks if not c.ok]
    if failed:
        out(f"{len(failed)} of {len(checks)} checks failed: {'; '.join(failed)}")
        return EXIT_FAILED
    out(f"all {len(checks)} checks passed")
    return EXIT_OK


def _failure(what: str, exc: BaseException) -> Check:
    detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return Check(what, False, f"{type(exc).__name__}: {detail}")


def check_configuration(config: Config) -> Check:
    what = f"configuration {config.path or '(defaults)'}"
    from intake.mailout.templates import template_problem  # the built-ins, under any template_dir override
    problem = template_problem(config.template_dir) or shared_secret_problem(config)
    if problem:
        return Check(what, False, problem)
    receivers = (["smtp" if not config.smtp.lmtp else "lmtp"] if config.smtp.enabled else []) + \
        [f"imap:{m.name}" for m in config.imap]
    return Check(what, True, f"valid; support addresses {', '.join(config.support_addresses)}; "
                             f"receiving via {', '.join(receivers) or 'nothing (SMTP disabled, no IMAP)'}")


def warnings_about(config: Config) -> list[str]:
    """What works but should not be left so; reported without failing the check."""
    warnings = []
    if not config.smtp.enabled and not config.imap:
        warnings.append("serve would receive nothing: [smtp] is not enabled and no [[imap]] mailbox is configured")
    security = config.security
    exposed = (config.smtp.enabled and not _loopback(config.smtp.host)) or bool(config.imap)
    if security.sender_auth is SenderAuth.NONE and exposed:
        warnings.append("[security] sender_auth = \"none\": any sender who writes a contact's address is "
                        "believed; use it only behind a mail server that authenticates senders for you "
                        "(README: Deploying safely)")
    if security.sender_auth is not SenderAuth.NONE and not config.conversations.staff_addresses:
        warnings.append("[conversations] staff_addresses is empty: nobody is told when a message is quarantined "
                        "(see `intake quarantine list`)")
    if security.unauthenticated_domains and security.sender_auth is not SenderAuth.NONE:
        warnings.append(f"[security] unauthenticated_domains: mail claiming to be from "
                        f"{', '.join(sorted(security.unauthenticated_domains))} is believed without "
                        f"authentication; anyone can write as their contacts until those districts fix "
                        f"their SPF, DKIM and DMARC")
    return warnings


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_database(config: Config) -> Check:
    shown = make_url(config.database_url).render_as_string(hide_password=True)
    what = f"database {shown}"
    try:
        store = open_store(config.database_url, create=False)
        try:
            with store.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                schema = inspect(connection).has_table(InboundMessage.__tablename__)
        finally:
            store.engine.dispose()
    except Exception as exc:
        return _failure(what, exc)
    return Check(what, True, "connected, SELECT answered; " +
                 ("schema present" if schema else "schema not created yet (serve creates it)"))


def check_outgoing(config: Config) -> Check:
    what = f"outgoing maildir {config.outgoing_maildir}"
    existing = next((p for p in (config.outgoing_maildir, *config.outgoing_maildir.parents) if p.exists()), None)
    if existing is None or not os.access(existing, os.W_OK | os.X_OK):
        return Check(what, False, f"not writable ({existing or 'no existing parent'})")
    return Check(what, True, "writable")


def check_relay(relay: RelayConfig) -> Check:
    what = f"relay {relay.host}:{relay.port} ({relay.security})"
    try:
        detail = _reach_relay(relay)
    except Exception as exc:
        return _failure(what, exc)
    return Check(what, True, detail)


def _reach_relay(relay: RelayConfig) -> str:
    """Connect, secure and log in exactly as delivery does."""
    open_relay_session(relay).quit()
    return f"connected, logged in as {relay.username}" if relay.username else "connected, EHLO answered"


def check_smtp(config: Config) -> Check:
    smtp = config.smtp
    what = f"{'lmtp' if smtp.lmtp else 'smtp'} listener {smtp.host}:{smtp.port}"
    try:
        context = tls_context(smtp)
        family = socket.AF_INET6 if ":" in smtp.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((smtp.host, smtp.port))
    except OSError as exc:
        hint = " (is intake serve already running?)" if getattr(exc, "errno", None) == 98 else ""
        return Check(what, False, f"cannot bind: {exc.strerror or exc}{hint}")
    tls = f"STARTTLS with {smtp.tls_cert}{' (required)' if smtp.require_tls else ''}" if context else "no STARTTLS"
    return Check(what, True, f"port can be bound; {tls}")


def check_imap(mailbox: ImapMailbox) -> Check:
    what = f"imap {mailbox.name} {mailbox.username}@{mailbox.host}:{mailbox.port}"
    try:
        folder = _reach_imap(mailbox)
    except Exception as exc:
        return _failure(what, exc)
    return Check(what, True, f"logged in, folder {mailbox.folder!r} selected ({folder} messages)")


def _reach_imap(mailbox: ImapMailbox) -> int:
    """Log in exactly as the poller does, and select the folder read-only; how many messages it holds."""
    from intake.mailin.imap import open_logged_in

    client = open_logged_in(mailbox)
    try:
        return int(client.select_folder(mailbox.folder, readonly=True).get(b"EXISTS", 0))
    finally:
        try:
            client.logout()
        except Exception:
            client.shutdown()
