"""Configuration: one frozen, typed object read from config.toml and passed in.

Nothing reads configuration from a global; the command line loads it once and
hands it to whatever needs it. The file is the one named by `--config`, else
by $INTAKE_CONFIG, else ./config.toml, else /etc/intake/config.toml. Relative
paths in the file are relative to the directory of the file itself, so
`intake --config /etc/intake/config.toml` works from any working directory.

Every default is here, and the shipped config.toml states the same values:
an empty file and the shipped one give the same settings. What intake keeps
(the SQLite database, the outgoing Maildir, the generated secret) lives under
one folder, `[intake] data_dir`, unless a setting puts it elsewhere.
"""
from __future__ import annotations

import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dkim  # type: ignore[import-untyped]  # dkimpy ships no type information

from intake.credentials import SecretUnavailable, read_secret
from intake.notify.settings import NotificationSettings, notification_settings
from intake.store.urls import sqlite_file, sqlite_url
from parsers.limits import MIB, Limits
from routing.authenticity import SenderAuth
from routing.schema import DEFAULT_TABLE, CaseType, CaseTypeTable, OpenLists, case_type_table, spec_for

DEFAULT_CONFIG_NAME = "config.toml"
# The system-wide file, looked for last (a module constant, so that a test can look elsewhere).
SYSTEM_CONFIG = Path("/etc/intake/config.toml")
CONFIG_ENV = "INTAKE_CONFIG"
# What intake keeps, relative to the configuration file's folder unless absolute.
DEFAULT_DATA_DIR = "var"
DEFAULT_MAX_MESSAGE_BYTES = 25 * MIB


class ConfigError(ValueError):
    """The configuration file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class SmtpConfig:
    """The SMTP (or LMTP) listener of `intake serve`."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 2525
    lmtp: bool = False
    tls_cert: Path | None = None  # STARTTLS is offered when both cert and key are set
    tls_key: Path | None = None
    require_tls: bool = False
    max_sessions: int = 100  # connections at once; one more is answered 421
    max_recipients: int = 100  # RCPTs in one transaction (RFC 5321's minimum); one more is answered 452


@dataclass(frozen=True)
class ImapMailbox:
    """One IMAP mailbox polled by `intake serve`. Secrets are never in the file itself."""

    name: str
    host: str
    username: str
    port: int = 993
    security: str = "tls"  # tls | starttls | none
    password_env: str | None = None
    password_file: Path | None = None
    oauth2_token_file: Path | None = None
    oauth2_token_command: str | None = None
    folder: str = "INBOX"
    after: str = "seen"  # seen | move
    move_to: str | None = None
    poll_seconds: float = 60.0
    idle: bool = True


@dataclass(frozen=True)
class RelayConfig:
    """The SMTP relay outgoing mail is handed to; without one, mail goes to the Maildir sink."""

    host: str
    port: int = 587
    security: str = "starttls"  # starttls | tls | none
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard the outbox tries: exponential backoff from `retry_first_seconds`, up to a give-up time."""

    retry_first_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    give_up_hours: float = 48.0
    # How long a deliverer's claim on a row lasts: after a crash the message in flight waits this long.
    claim_seconds: float = 600.0


@dataclass(frozen=True)
class Conversations:
    """Threads, comments and the guards against mail loops."""

    secret: str  # keys the HMAC tokens in our Message-IDs and plus addresses
    # True when the secret comes from secret_env or secret_file; False when generated in data_dir/secret,
    # which is this machine's alone (serve refuses that on PostgreSQL, where several daemons share threads).
    secret_configured: bool = False
    staff_addresses: tuple[str, ...] = ()
    reopen_window_days: int = 14
    plus_addressing: bool = True
    auto_replies_per_hour: int = 10
    bounces_to_suspend: int = 3


@dataclass(frozen=True)
class SecurityConfig:
    """`[security]`: how the sender of a message is authenticated (see `routing.authenticity`)."""

    sender_auth: SenderAuth = SenderAuth.NONE
    # Authentication-Results headers whose authserv-id is one of these (our own MTA's) are believed.
    trusted_authserv_ids: frozenset[str] = frozenset()
    # Districts known to send mail that does not authenticate: their mail is treated as sender_auth = none.
    unauthenticated_domains: frozenset[str] = frozenset()
    dns_server: str | None = None  # "HOST[:PORT]" for DKIM key lookups; the system's resolver when None


@dataclass(frozen=True)
class CaseRate:
    """`[limits] cases_per_hour_*`: new cases an hour; more are held and processed later, in order."""

    per_sender: int = 30
    per_account: int = 60


@dataclass(frozen=True)
class HealthThresholds:
    """`[health]`: past a warn_* value `intake health` says WARNING (exit 1), past a critical_* CRITICAL (2)."""

    warn_unprocessed_seconds: int = 300
    critical_unprocessed_seconds: int = 1800
    warn_outbox_seconds: int = 900
    critical_outbox_seconds: int = 7200
    warn_failed: int = 1
    critical_failed: int = 20
    warn_outbox_failed: int = 1
    critical_outbox_failed: int = 20
    warn_quarantined: int = 1
    critical_quarantined: int = 50
    critical_daemon_seconds: int = 60  # no `intake serve` seen alive for this long


@dataclass(frozen=True)
class DkimSigning:
    """`[outgoing] dkim_*`: outgoing mail is DKIM-signed with this key, for deliverability."""

    key: bytes
    selector: str
    domain: str


@dataclass(frozen=True)
class WorkerConfig:
    """`[worker]`: processing runs in processes of its own, beside the listener's.

    `processes` None means the engine's default: one on SQLite (one writer at
    a time), the number of cores on PostgreSQL (claims skip each other's rows).
    """

    processes: int | None = None
    batch: int = 20  # messages claimed per transaction on PostgreSQL, each in a savepoint of its own

    def processes_for(self, database_url: str) -> int:
        if self.processes is not None:
            return self.processes
        postgresql = database_url.startswith("postgresql")
        return max(1, os.cpu_count() or 1) if postgresql else 1


@dataclass(frozen=True)
class Config:
    path: Path | None
    database_url: str
    support_addresses: tuple[str, ...]
    from_address: str
    from_name: str
    organisation: str
    max_message_bytes: int
    timezone: ZoneInfo
    data_dir: Path  # the database, the outgoing Maildir and the secret, unless set elsewhere
    outgoing_maildir: Path
    # Searched before the built-in templates; holds only the templates it changes.
    template_dir: Path | None = None
    security: SecurityConfig = field(default_factory=SecurityConfig)
    limits: Limits = field(default_factory=Limits)
    case_rate: CaseRate = field(default_factory=CaseRate)
    health: HealthThresholds = field(default_factory=HealthThresholds)
    # `[retention] purge_closed_after_days`: raw mail and files of cases closed longer ago are emptied; 0 keeps all.
    purge_closed_after_days: int = 0
    dkim_signing: DkimSigning | None = None
    departments: dict[CaseType, str] = field(default_factory=dict)
    # A department's address gets a notice of each new case routed to it and of each contact reply on one.
    department_addresses: dict[str, str] = field(default_factory=dict)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    relay: RelayConfig | None = None
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    conversations: Conversations = field(default_factory=lambda: Conversations(secret=""))
    imap: tuple[ImapMailbox, ...] = ()
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    # The case-type table with the deployment's open lists ([case_types]: modules and the like).
    case_types: CaseTypeTable = DEFAULT_TABLE

    def department_for(self, case_type: CaseType) -> str:
        """The configured department, or the schema's default for the type."""
        return self.departments.get(case_type, spec_for(case_type).department)

    def department_address(self, department: str) -> str | None:
        """The address of `department` (compared without case), or None when it has none."""
        wanted = department.strip().casefold()
        return next((a for name, a in self.department_addresses.items() if name.casefold() == wanted), None)

    @property
    def message_id_domain(self) -> str:
        return self.from_address.rpartition("@")[2] or "intake.invalid"


def find_config(explicit: str | Path | None) -> Path:
    """The file to read: --config, else $INTAKE_CONFIG, else ./config.toml, else /etc/intake/config.toml.

    A file named by --config or $INTAKE_CONFIG must exist; with none found the
    error lists every place looked at.
    """
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{path}: no such configuration file")
        return path
    named = os.environ.get(CONFIG_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"{path} (named by ${CONFIG_ENV}): no such configuration file")
        return path
    candidates = (Path.cwd() / DEFAULT_CONFIG_NAME, SYSTEM_CONFIG)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(f"no configuration file found; looked for --config PATH (not given), ${CONFIG_ENV} (not set), "
                      f"{' and '.join(str(c) for c in candidates)} (neither exists). "
                      f"Start from the config.toml shipped with intake (see its README).")


def load_config(explicit: str | Path | None = None) -> Config:
    path = find_config(explicit)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return config_from_mapping(data, base=path.resolve().parent, path=path)


_KNOWN = {
    "intake": {"support_addresses", "from_address", "from_name", "organisation", "max_message_bytes",
               "timezone", "data_dir", "template_dir"},
    "database": {"url"},
    "outgoing": {"maildir", "relay_host", "relay_port", "relay_security", "relay_username", "relay_password_env",
                 "relay_password_file", "relay_timeout_seconds", "retry_first_seconds", "retry_max_seconds",
                 "claim_seconds", "give_up_hours", "dkim_key_file", "dkim_selector", "dkim_domain"},
    "limits": {"max_headers", "max_header_bytes", "max_mime_depth", "max_mime_parts", "max_attachments",
               "max_attachment_bytes", "cases_per_hour_per_sender", "cases_per_hour_per_account"},
    "health": {name for name in HealthThresholds.__dataclass_fields__},
    "retention": {"purge_closed_after_days"},
    "security": {"sender_auth", "trusted_authserv_ids", "unauthenticated_domains", "dns_server"},
    "conversations": {"secret_env", "secret_file", "staff_addresses", "reopen_window_days", "plus_addressing",
                      "auto_replies_per_hour", "bounces_to_suspend"},
    "departments": None,  # case types, and departments' own tables; checked below
    "worker": {"processes", "batch"},
    "smtp": {"enabled", "host", "port", "lmtp", "tls_cert", "tls_key", "require_tls", "max_sessions", "max_recipients"},
    "imap": None,  # an array of tables, checked in _imap
    "notifications": None,  # checked by intake.notify.settings
    "case_types": {"modules", "technical_services_types", "training_request_types"},
}
_IMAP_KEYS = {"name", "host", "port", "security", "username", "password_env", "password_file", "oauth2_token_file",
              "oauth2_token_command", "folder", "after", "move_to", "poll_seconds", "idle"}


def config_from_mapping(data: dict[str, Any], *, base: Path, path: Path | None) -> Config:
    where = str(path) if path else "configuration"
    _reject_unknown_keys(data, where)
    general = data.get("intake", {})
    addresses = tuple(a.strip().lower() for a in general.get("support_addresses", ["support@intake.example"]))
    if not addresses:
        raise ConfigError(f"{where}: [intake] support_addresses must list at least one address")
    data_dir = base / general.get("data_dir", DEFAULT_DATA_DIR)
    return Config(
        path=path,
        data_dir=data_dir,
        database_url=_database_url(data.get("database", {}).get("url"), base, data_dir),
        support_addresses=addresses,
        from_address=general.get("from_address", addresses[0]).strip().lower(),
        from_name=general.get("from_name", "Support"),
        organisation=general.get("organisation", "Support"),
        max_message_bytes=_positive_int(general.get("max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES),
                                        f"{where}: [intake] max_message_bytes"),
        timezone=_zone(general.get("timezone", "UTC"), where),
        template_dir=_template_dir(general.get("template_dir"), base, where),
        security=_security(data.get("security", {}), where),
        purge_closed_after_days=_days(data.get("retention", {}).get("purge_closed_after_days", 0),
                                      f"{where}: [retention] purge_closed_after_days"),
        health=HealthThresholds(**{name: _positive_int(value, f"{where}: [health] {name}")
                                   for name, value in data.get("health", {}).items()}),
        limits=_limits(data.get("limits", {}), general, where),
        case_rate=CaseRate(
            per_sender=_positive_int(data.get("limits", {}).get("cases_per_hour_per_sender", CaseRate.per_sender),
                                     f"{where}: [limits] cases_per_hour_per_sender"),
            per_account=_positive_int(data.get("limits", {}).get("cases_per_hour_per_account", CaseRate.per_account),
                                      f"{where}: [limits] cases_per_hour_per_account")),
        dkim_signing=_dkim_signing(data.get("outgoing", {}), base, general.get("from_address", addresses[0]), where),
        outgoing_maildir=_path(data.get("outgoing", {}).get("maildir"), base) or data_dir / "outgoing",
        departments=_departments(data.get("departments", {}), where),
        department_addresses=_department_addresses(data.get("departments", {}), addresses, where),
        smtp=_smtp(data.get("smtp", {}), base, where),
        worker=_worker(data.get("worker", {}), data.get("database", {}).get("url"), where),
        relay=_relay(data.get("outgoing", {}), base, where),
        delivery=_delivery(data.get("outgoing", {}), where),
        conversations=_conversations(data.get("conversations", {}), base, data_dir, where),
        imap=tuple(_imap(entry, base, where, n) for n, entry in enumerate(data.get("imap", []), start=1)),
        notifications=_notifications(data.get("notifications", {}), base, where),
        case_types=case_type_table(_open_lists(data.get("case_types", {}), where)),
    )


def _limits(table: dict[str, Any], general: dict[str, Any], where: str) -> Limits:
    defaults = Limits()
    values = {name: _positive_int(table.get(name, getattr(defaults, name)), f"{where}: [limits] {name}")
              for name in _KNOWN["limits"] or () if not name.startswith("cases_per_hour")}
    size = _positive_int(general.get("max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES),
                         f"{where}: [intake] max_message_bytes")
    return Limits(max_message_bytes=size, **values)


def _security(table: dict[str, Any], where: str) -> SecurityConfig:
    names = ", ".join(mode.value for mode in SenderAuth)
    try:
        mode = SenderAuth(str(table.get("sender_auth", SenderAuth.NONE.value)).strip().lower())
    except ValueError:
        raise ConfigError(f"{where}: [security] sender_auth must be one of {names}, "
                          f"not {table.get('sender_auth')!r}") from None
    trusted = frozenset(str(i).strip().lower() for i in table.get("trusted_authserv_ids", []) if str(i).strip())
    if mode is SenderAuth.AUTHENTICATION_RESULTS and not trusted:
        raise ConfigError(f"{where}: [security] sender_auth = \"authentication-results\" needs "
                          f"trusted_authserv_ids: the authserv-id your own mail server writes in its "
                          f"Authentication-Results header")
    server = str(table.get("dns_server", "")).strip() or None
    return SecurityConfig(sender_auth=mode, trusted_authserv_ids=trusted,
                          unauthenticated_domains=frozenset(str(d).strip().lower().lstrip("@")
                                                            for d in table.get("unauthenticated_domains", [])
                                                            if str(d).strip()),
                          dns_server=server)


def _dkim_signing(table: dict[str, Any], base: Path, from_address: str, where: str) -> DkimSigning | None:
    key_file, selector = table.get("dkim_key_file"), table.get("dkim_selector")
    if not key_file and not selector:
        return None
    if not key_file or not selector:
        raise ConfigError(f"{where}: [outgoing] dkim_key_file and dkim_selector must be given together")
    path = base / key_file
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: [outgoing] dkim_key_file {path}: {exc.strerror}") from exc
    domain = str(table.get("dkim_domain") or from_address.rpartition("@")[2]).strip().lower()
    signing = DkimSigning(key=key, selector=str(selector).strip(), domain=domain)
    try:  # a key that cannot sign is found now, not at the first delivery
        dkim.sign(b"From: a@b.invalid\r\n\r\n", signing.selector.encode("ascii"), domain.encode("ascii"), key)
    except (dkim.DKIMException, UnicodeEncodeError, ValueError) as exc:
        raise ConfigError(f"{where}: [outgoing] dkim_key_file {path} cannot sign: {exc}") from exc
    return signing
def _notifications(table: Any, base: Path, where: str) -> NotificationSettings:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [notifications] must be a table")
    try:
        return notification_settings(table, base)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: [notifications] {exc}") from exc


def _open_lists(table: dict[str, Any], where: str) -> OpenLists:
    """The lists the seed leaves open; a list left out keeps the shipped one."""
    given = {}
    for key, value in table.items():
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value) or not value:
            raise ConfigError(f"{where}: [case_types] {key} must be a list of names, "
                              f"e.g. [\"Attendance\", \"Grade Book\"]")
        given[key] = tuple(v.strip() for v in value)
    return OpenLists(**given)


def _template_dir(value: str | None, base: Path, where: str) -> Path | None:
    """The folder searched before the built-in templates; a typo must not silently mean the built-ins."""
    if not value:
        return None
    folder = base / value
    if not folder.is_dir():
        raise ConfigError(f"{where}: [intake] template_dir {folder} is not a folder")
    return folder


def _relay(table: dict[str, Any], base: Path, where: str) -> RelayConfig | None:
    host = table.get("relay_host")
    if not host:
        return None
    security = table.get("relay_security", "starttls")
    if security not in ("starttls", "tls", "none"):
        raise ConfigError(f"{where}: [outgoing] relay_security must be starttls, tls or none, not {security!r}")
    if "relay_password" in table:
        raise ConfigError(f"{where}: [outgoing] put the relay password in relay_password_env or relay_password_file")
    default_port = {"starttls": 587, "tls": 465, "none": 25}[security]
    return RelayConfig(host=host, port=_positive_int(table.get("relay_port", default_port), f"{where}: relay_port"),
                       security=security, username=table.get("relay_username"),
                       password_env=table.get("relay_password_env"),
                       password_file=_path(table.get("relay_password_file"), base),
                       timeout_seconds=float(table.get("relay_timeout_seconds", 30)))


def _delivery(table: dict[str, Any], where: str) -> DeliveryPolicy:
    policy = DeliveryPolicy(retry_first_seconds=float(table.get("retry_first_seconds", 60)),
                            retry_max_seconds=float(table.get("retry_max_seconds", 3600)),
                            give_up_hours=float(table.get("give_up_hours", 48)),
                            claim_seconds=float(table.get("claim_seconds", 600)))
    if min(policy.retry_first_seconds, policy.retry_max_seconds, policy.give_up_hours, policy.claim_seconds) <= 0:
        raise ConfigError(f"{where}: [outgoing] retry, give-up and claim times must be positive")
    return policy


def _conversations(table: dict[str, Any], base: Path, data_dir: Path, where: str) -> Conversations:
    if table.get("secret_env") or table.get("secret_file"):
        try:
            secret = read_secret(table.get("secret_env"), _path(table.get("secret_file"), base),
                                 env_setting="secret_env", file_setting="secret_file")
        except SecretUnavailable as exc:
            raise ConfigError(f"{where}: [conversations] {exc}") from exc
    else:
        secret = _generated_secret(data_dir / "secret")
    return Conversations(
        secret=secret, secret_configured=bool(table.get("secret_env") or table.get("secret_file")),
        staff_addresses=tuple(a.strip().lower() for a in table.get("staff_addresses", [])),
        reopen_window_days=_positive_int(table.get("reopen_window_days", 14), f"{where}: reopen_window_days"),
        plus_addressing=bool(table.get("plus_addressing", True)),
        auto_replies_per_hour=_positive_int(table.get("auto_replies_per_hour", 10), f"{where}: auto_replies_per_hour"),
        bounces_to_suspend=_positive_int(table.get("bounces_to_suspend", 3), f"{where}: bounces_to_suspend"))


def _generated_secret(path: Path) -> str:
    """A random secret kept beside the database, so that a fresh install is safe without any setting."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_hex(32)
        try:  # exclusive: another process may be making it too; readable by its owner only
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(secret)
        except FileExistsError:
            return path.read_text(encoding="utf-8").strip()
        return secret


def _path(value: str | None, base: Path) -> Path | None:
    return base / value if value else None


def _worker(table: dict[str, Any], url: str | None, where: str) -> WorkerConfig:
    processes = table.get("processes")
    if processes is not None:
        processes = _positive_int(processes, f"{where}: [worker] processes")
        if processes > 1 and not (url or "").startswith("postgresql"):
            raise ConfigError(f"{where}: [worker] processes = {processes}: SQLite has one writer at a time, so it "
                              f"takes one worker process; several need PostgreSQL ([database] url)")
    return WorkerConfig(processes=processes, batch=_positive_int(table.get("batch", WorkerConfig.batch),
                                                                 f"{where}: [worker] batch"))


def _smtp(table: dict[str, Any], base: Path, where: str) -> SmtpConfig:
    config = SmtpConfig(
        enabled=bool(table.get("enabled", True)), host=str(table.get("host", "127.0.0.1")),
        port=_positive_int(table.get("port", 2525), f"{where}: [smtp] port"), lmtp=bool(table.get("lmtp", False)),
        tls_cert=_path(table.get("tls_cert"), base), tls_key=_path(table.get("tls_key"), base),
        require_tls=bool(table.get("require_tls", False)),
        max_sessions=_positive_int(table.get("max_sessions", 100), f"{where}: [smtp] max_sessions"),
        max_recipients=_positive_int(table.get("max_recipients", 100), f"{where}: [smtp] max_recipients"))
    if bool(config.tls_cert) != bool(config.tls_key):
        raise ConfigError(f"{where}: [smtp] tls_cert and tls_key must be given together")
    if config.require_tls and not config.tls_cert:
        raise ConfigError(f"{where}: [smtp] require_tls needs tls_cert and tls_key")
    return config


def _imap(table: Any, base: Path, where: str, number: int) -> ImapMailbox:
    what = f"{where}: [[imap]] number {number}"
    if not isinstance(table, dict):
        raise ConfigError(f"{what} must be a table")
    unknown = set(table) - _IMAP_KEYS
    if unknown:
        raise ConfigError(f"{what}: unknown setting(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(_IMAP_KEYS))}")
    for key in ("host", "username"):
        if not table.get(key):
            raise ConfigError(f"{what} needs {key!r}")
    if "password" in table:
        raise ConfigError(f"{what}: put the password in an environment variable (password_env) or a file "
                          f"(password_file), never in the configuration")
    security = table.get("security", "tls")
    if security not in ("tls", "starttls", "none"):
        raise ConfigError(f"{what}: security must be tls, starttls or none, not {security!r}")
    after = table.get("after", "seen")
    if after not in ("seen", "move") or (after == "move" and not table.get("move_to")):
        raise ConfigError(f"{what}: after must be 'seen', or 'move' with move_to naming a folder")
    secrets = [k for k in ("password_env", "password_file", "oauth2_token_file", "oauth2_token_command")
               if table.get(k)]
    if len(secrets) != 1:
        raise ConfigError(f"{what}: give exactly one of password_env, password_file, oauth2_token_file, "
                          f"oauth2_token_command")
    return ImapMailbox(
        name=str(table.get("name", f"imap{number}")), host=table["host"], username=table["username"],
        port=_positive_int(table.get("port", 993 if security == "tls" else 143), f"{what} port"),
        security=security, password_env=table.get("password_env"),
        password_file=_path(table.get("password_file"), base),
        oauth2_token_file=_path(table.get("oauth2_token_file"), base),
        oauth2_token_command=table.get("oauth2_token_command"), folder=table.get("folder", "INBOX"),
        after=after, move_to=table.get("move_to"), poll_seconds=float(table.get("poll_seconds", 60)),
        idle=bool(table.get("idle", True)))


_MOVED = {("intake", "trusted_authserv_ids"): "[security] trusted_authserv_ids (with sender_auth = "
                                             "\"authentication-results\")"}


def _reject_unknown_keys(data: dict[str, Any], where: str) -> None:
    for (section, key), now in _MOVED.items():
        if key in data.get(section, {}):
            raise ConfigError(f"{where}: [{section}] {key} has moved to {now}")
    for section, value in data.items():
        if section not in _KNOWN:
            raise ConfigError(f"{where}: unknown section [{section}]; known: {', '.join(sorted(_KNOWN))}")
        keys = _KNOWN[section]
        if keys is None:
            continue  # checked by the section's own reader
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: [{section}] must be a table")
        for key in value:
            if key not in keys:
                raise ConfigError(f"{where}: unknown setting {key!r} in [{section}]; known: {', '.join(sorted(keys))}")


def _database_url(url: str | None, base: Path, data_dir: Path) -> str:
    """The URL given (a relative SQLite path made relative to the config file's folder), else data_dir/intake.db."""
    if not url:
        return sqlite_url(data_dir / "intake.db")
    file = sqlite_file(url)
    if file is not None and not file.is_absolute():
        return sqlite_url(base / file)
    return url


def _days(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{what} must be a whole number of days, 0 to keep everything, not {value!r}")
    return value


def _positive_int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{what} must be a positive whole number, not {value!r}")
    return value


def _zone(name: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{where}: [intake] timezone {name!r} is not a known time zone") from exc


def _departments(table: dict[str, Any], where: str) -> dict[CaseType, str]:
    """Every case type's department: the schema's, unless the file names another."""
    by_name = {t.value.lower(): t for t in CaseType}
    result: dict[CaseType, str] = {t: spec_for(t).department for t in CaseType}
    for name, department in table.items():
        if isinstance(department, dict):
            continue  # a department's own settings: [departments."Hosting Operations"]
        case_type = by_name.get(name.strip().lower())
        if case_type is None:
            raise ConfigError(f"{where}: [departments] {name!r} is not a case type; "
                              f"use one of: {', '.join(t.value for t in CaseType)}")
        if not isinstance(department, str) or not department.strip():
            raise ConfigError(f"{where}: [departments] {name!r} needs a department name")
        result[case_type] = department.strip()
    return result


_DEPARTMENT_KEYS = {"address"}


def _department_addresses(table: dict[str, Any], support: tuple[str, ...], where: str) -> dict[str, str]:
    """Department name → the address its notices go to, from ``[departments."NAME"] address = ...``."""
    routed = {name.casefold() for name in _departments(table, where).values()}
    result: dict[str, str] = {}
    for name, settings in table.items():
        if not isinstance(settings, dict):
            continue
        what = f"{where}: [departments.{name!r}]"
        unknown = set(settings) - _DEPARTMENT_KEYS
        if unknown:
            raise ConfigError(f"{what}: unknown setting(s) {', '.join(sorted(unknown))}; known: address")
        if name.strip().casefold() not in routed:
            raise ConfigError(f"{what}: no case type is routed to {name!r}; departments: "
                              f"{', '.join(sorted(set(_departments(table, where).values())))}")
        address = str(settings.get("address", "")).strip().lower()
        if not _ADDRESS.match(address):
            raise ConfigError(f"{what}: address must be one email address, like hosting@district-support.example")
        if address in support:
            raise ConfigError(f"{what}: address {address} is a support address; notices would come back as mail")
        result[name.strip()] = address
    return result


_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
