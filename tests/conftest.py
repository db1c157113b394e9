"""Shared fixtures: a real database on each backend, and the project's own config.

Every test that takes `store` runs twice: on an SQLite file and on the local
PostgreSQL (a fresh schema per test). Under CI=true a PostgreSQL that cannot
be reached fails the test instead of skipping it.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from intake.store.database import Store, open_store
from intake.store.migrate import upgrade

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("INTAKE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_or_skip() -> None:
    try:
        engine = create_engine(POSTGRES_URL)
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # any failure to reach the server
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true and is not reachable at {POSTGRES_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'intake.db'}"
        return
    yield from _postgres_schema()


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    """A URL of an empty PostgreSQL database, for what only PostgreSQL does (several daemons at once)."""
    yield from _postgres_schema()


def _postgres_schema() -> Iterator[str]:
    _postgres_or_skip()
    schema = f"intake_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    upgrade(database_url)  # as `intake db upgrade` does; PostgreSQL is never upgraded by opening it
    opened = open_store(database_url)
    try:
        yield opened
    finally:
        opened.engine.dispose()


# --- a whole intake, driven through its command line --------------------------

import datetime as dt  # noqa: E402
import email  # noqa: E402
import json  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from email import policy as email_policy  # noqa: E402
from email.message import EmailMessage  # noqa: E402

from intake.cli import main  # noqa: E402

DATA = REPO / "tests" / "data"
SUPPORT = "support@intake.example"


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


def compose(sender: str, subject: str, body: str = "", *, html: str | None = None,
            attachments: tuple[tuple[str, str, bytes], ...] = (), headers: dict[str, str] | None = None,
            message_id: str | None = None) -> bytes:
    """A message as a mail client would send it to the support address."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = f"Campus Support <{SUPPORT}>"
    message["Subject"] = subject
    message["Date"] = email.utils.format_datetime(dt.datetime.now(dt.UTC))
    message["Message-ID"] = message_id or email.utils.make_msgid(domain="client.example")
    for name, value in (headers or {}).items():
        message[name] = value
    if html is not None and not body:
        message.set_content(html, subtype="html")
    else:
        message.set_content(body)
        if html is not None:
            message.add_alternative(html, subtype="html")
    for filename, content_type, content in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def future(days: int) -> str:
    return (dt.date.today() + dt.timedelta(days=days)).strftime("%m/%d/%Y")


def past(days: int) -> str:
    return (dt.date.today() - dt.timedelta(days=days)).strftime("%m/%d/%Y")


# Every test configuration shares one thread secret, as several daemons on PostgreSQL must.
TEST_SECRET_ENV = "INTAKE_TEST_SECRET"
os.environ.setdefault(TEST_SECRET_ENV, "intake-test-secret-shared-by-every-daemon")


def config_text(database_url: str, maildir: Path, max_message_bytes: int = 25 * 1024 * 1024,
                support: str = SUPPORT) -> str:
    """A configuration for tests; sections may be appended ([outgoing] is last), settings added with `with_settings`."""
    return ("[intake]\n"
            f'support_addresses = ["{support}"]\n'
            f'from_address = "{support}"\n'
            'from_name = "Campus Support"\n'
            'organisation = "Campus Support"\n'
            f"max_message_bytes = {max_message_bytes}\n"
            'timezone = "UTC"\n'
            f'template_dir = "{REPO / "templates" / "email"}"\n'
            "[database]\n"
            f'url = "{database_url}"\n'
            "[conversations]\n"
            f'secret_env = "{TEST_SECRET_ENV}"\n'
            "[outgoing]\n"
            f'maildir = "{maildir}"\n')


def with_settings(text: str, section: str, settings: str) -> str:
    """`text` with `settings` (TOML lines) added to its `[section]`, which is made at the end if missing."""
    header = f"[{section}]\n"
    if header not in text:
        return text + header + settings.rstrip("\n") + "\n"
    return text.replace(header, header + settings.rstrip("\n") + "\n", 1)


def free_port() -> int:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class CapturingRelay:
    """A real SMTP server (aiosmtpd) standing in for the organisation's relay; keeps what it is sent."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.received.append(envelope.original_content)  # type: ignore[attr-defined]
        self.recipients.append(list(envelope.rcpt_tos))  # type: ignore[attr-defined]
        return "250 2.0.0 Ok: queued"


@pytest.fixture
def relay() -> Iterator[tuple[CapturingRelay, int]]:
    from aiosmtpd.controller import Controller
    handler = CapturingRelay()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


class Intake:
    """One configured intake with the test contacts imported; commands run in-process.

    With a relay, outgoing mail goes to it over SMTP; without, to the Maildir sink.
    """

    def __init__(self, root: Path, database_url: str, capsys: pytest.CaptureFixture[str],
                 max_message_bytes: int = 25 * 1024 * 1024,
                 relay: tuple[CapturingRelay, int] | None = None, support: str = SUPPORT,
                 extra_config: str = "") -> None:
        self.root = root
        self.capsys = capsys
        self.maildir = root / "outgoing"
        self.relay = relay[0] if relay else None
        relay_settings = (f'relay_host = "127.0.0.1"\nrelay_port = {relay[1]}\nrelay_security = "none"\n'
                          if relay else "")
        self.config = root / "config.toml"
        self.config.write_text(config_text(database_url, self.maildir, max_message_bytes, support) + relay_settings
                               + extra_config)
        upgrade(database_url)  # `intake db upgrade`, as after installing
        self._count = 0

    def run(self, *args: str) -> Ran:
        self.capsys.readouterr()
        code = main(["--config", str(self.config), *args])
        captured = self.capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    def write(self, raw: bytes, name: str | None = None) -> Path:
        self._count += 1
        path = self.root / (name or f"message-{self._count}.eml")
        path.write_bytes(raw)
        return path

    def ingest(self, raw: bytes) -> Ran:
        return self.run("ingest", str(self.write(raw)))

    def cases(self) -> list[dict]:
        return self.run("cases", "--status", "all", "--json").json()  # type: ignore[return-value]

    def show(self, number: int) -> dict:
        return self.run("show", str(number), "--json").json()  # type: ignore[return-value]

    def outbox(self) -> list[dict]:
        return self.run("outbox", "--json").json()  # type: ignore[return-value]

    def messages(self) -> list[dict]:
        return self.run("messages", "--json").json()  # type: ignore[return-value]

    def last_outcome(self) -> dict:
        return self.messages()[-1]

    def sent_mail(self) -> list[EmailMessage]:
        """What intake delivered (to the relay, or the Maildir sink), oldest first."""
        if self.relay is not None:
            raws = list(self.relay.received)
        else:
            new = self.maildir / "new"
            files = sorted(new.iterdir(), key=lambda p: p.stat().st_mtime_ns) if new.is_dir() else []
            raws = [p.read_bytes() for p in files]
        return [email.message_from_bytes(raw, policy=email_policy.default) for raw in raws]  # type: ignore[misc]

    def last_reply_prose(self) -> str:
        """The last reply's text with its line wrapping undone: for finding a sentence in it."""
        return " ".join(self.last_reply_text().split())

    def last_reply_text(self) -> str:
        replies = self.outbox()
        assert replies, "no reply was queued"
        raw = self.root / "last.eml"
        message_id = replies[-1]["message_id"]
        for message in self.sent_mail():
            if message["Message-ID"].strip("<>") == message_id:
                raw.write_bytes(message.as_bytes())
                return message.get_body(preferencelist=("plain",)).get_content()
        raise AssertionError(f"reply {message_id} was not delivered")


@pytest.fixture
def intake(tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str],
           relay: tuple[CapturingRelay, int]) -> Intake:
    """An intake whose outgoing mail goes to a real SMTP relay on loopback."""
    instance = Intake(tmp_path, database_url, capsys, relay=relay)
    imported = instance.run("contacts", "import", str(DATA / "contacts.csv"))
    assert imported.code == 0, imported.err
    return instance


def refuse_cases_titled(engine: Engine, subject: str) -> None:
    """A real fault in the database: storing a case with this subject fails, as a broken disk or bug would."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(
                "CREATE FUNCTION refuse_case() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.subject = '{subject}' THEN RAISE EXCEPTION 'refused by the test''s trigger'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"))
            connection.execute(text("CREATE TRIGGER refuse_case BEFORE INSERT ON cases "
                                    "FOR EACH ROW EXECUTE FUNCTION refuse_case()"))
        else:
            connection.execute(text(
                f"CREATE TRIGGER refuse_case BEFORE INSERT ON cases WHEN NEW.subject = '{subject}' "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test''s trigger'); END"))
