"""Helpers for the daemon's tests: a real `intake serve` process, real sockets, the real database.

`RunningIntake` writes a configuration file, imports the test contacts, starts
`intake serve` as a subprocess and waits (with a deadline) until its port
answers. What happened is read back from the database with SQLAlchemy.
"""
from __future__ import annotations

import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from conftest import DATA, REPO, SUPPORT, compose, config_text
from intake.store.migrate import upgrade
from intake.store.models import Case, InboundMessage, OutboundMessage

ZACK = "Zack Morris <zack.morris@bayside.example>"
ZACK_ADDRESS = "zack.morris@bayside.example"
QUESTION = "Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n"
STARTUP_SECONDS = 20.0
PROCESSING_SECONDS = 60.0
T = TypeVar("T")


SERVE_MODULE = "intake.cli"  # `python -m intake.cli` is the `intake` command


def wait_until(condition: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll `condition` until it is truthy; fail naming `what` when the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def case_message(subject: str = "Households", *, message_id: str | None = None, body: str = QUESTION) -> bytes:
    """A complete template message from an authorized contact: it makes a case."""
    return on_the_wire(compose(ZACK, subject, body, message_id=message_id))


def auto_reply(message_id: str) -> bytes:
    """An out-of-office answer: stored, ignored, never answered, no case."""
    return on_the_wire(compose(ZACK, "Out of office", "I am away until Monday.", message_id=message_id,
                               headers={"Auto-Submitted": "auto-replied"}))


def on_the_wire(raw: bytes) -> bytes:
    """CRLF line ends, as SMTP carries mail (smtplib sends bytes as they are)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def make_tls_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for localhost, made for this test."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        _certificate_with_cryptography(cert, key)
    except ImportError:
        require_command("openssl")  # under CI=true its absence fails the test
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                        "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"],
                       check=True, capture_output=True)
    return cert, key


def _certificate_with_cryptography(cert: Path, key: Path) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=1)).sign(private, hashes.SHA256()))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                          serialization.NoEncryption()))


@dataclass
class Stored:
    """What the database holds after a run, read back for assertions."""

    inbound: list[InboundMessage]
    cases: list[Case]
    outbox: list[OutboundMessage]

    def message_ids(self) -> list[str]:
        return [m.message_id for m in self.inbound if m.message_id]

    def by_message_id(self, message_id: str) -> list[InboundMessage]:
        return [m for m in self.inbound if m.message_id == message_id.strip("<>")]


class RunningIntake:
    """A configured intake with the test contacts, and its `intake serve` process when started."""

    def __init__(self, root: Path, database_url: str, *, port: int | None = None, lmtp: bool = False,
                 tls: tuple[Path, Path] | None = None, require_tls: bool = False,
                 max_message_bytes: int = 25 * 1024 * 1024, smtp: bool = True, imap: str = "",
                 database_url_for_daemon: str | None = None, relay_port: int | None = None,
                 smtp_settings: str = "", extra_config: str = "", maildir: Path | None = None) -> None:
        self.root = root
        self.database_url = database_url
        self.port = port or free_port()
        self.maildir = maildir or root / "outgoing"  # daemons on one database may share one
        self.config = root / "config.toml"
        self.log = root / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._engine: Engine | None = None
        smtp_table = "[smtp]\nenabled = false\n"  # the listener is on by default
        if smtp:
            smtp_table = (f"[smtp]\nenabled = true\nhost = \"127.0.0.1\"\nport = {self.port}\n"
                          f"lmtp = {'true' if lmtp else 'false'}\n{smtp_settings}")
            if tls:
                smtp_table += f'tls_cert = "{tls[0]}"\ntls_key = "{tls[1]}"\n'
                smtp_table += f"require_tls = {'true' if require_tls else 'false'}\n"
        # Outgoing mail to a relay on loopback (conftest's `relay`), else to the Maildir.
        relay = (f'relay_host = "127.0.0.1"\nrelay_port = {relay_port}\nrelay_security = "none"\n'
                 if relay_port else "")
        self.config.write_text(config_text(database_url_for_daemon or database_url, self.maildir, max_message_bytes)
                               + relay + smtp_table + imap + extra_config)

    # --- the command line -------------------------------------------------------

    def command(self, *args: str, module: str = "intake.cli", timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", module, "--config", str(self.config), *args],
                              capture_output=True, text=True, timeout=timeout, cwd=REPO)

    def import_contacts(self) -> RunningIntake:
        ran = self.command("contacts", "import", str(DATA / "contacts.csv"))
        assert ran.returncode == 0, ran.stderr
        return self

    def check(self) -> subprocess.CompletedProcess[str]:
        return self.command("serve", "--check", module=SERVE_MODULE)

    # --- the daemon -----------------------------------------------------------------

    def start(self, *serve_options: str, env: dict[str, str] | None = None) -> RunningIntake:
        """`intake serve` with `serve_options` (e.g. "--log-format", "json"), once its port answers;
        ``env`` adds to its environment."""
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", SERVE_MODULE, "--config", str(self.config),
                                             "serve", *serve_options], stdout=log, stderr=subprocess.STDOUT,
                                            cwd=REPO, env={**os.environ, **(env or {})},
                                            start_new_session=True)  # its worker processes: one group
        wait_until(self._accepting, timeout=STARTUP_SECONDS, what=f"intake serve to accept on port {self.port}")
        return self

    def _accepting(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"intake serve exited with {self.process.returncode}:\n{self.log_text()}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL to the daemon and its worker processes: no shutdown at all, as a power cut would do."""
        assert self.process is not None
        _kill_group(self.process)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait for the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"intake serve did not stop within {timeout} s:\n{self.log_text()}") from None

    def close(self) -> None:
        if self.process is not None:
            _kill_group(self.process)
            self.process.wait(timeout=10)
        if self._engine is not None:
            self._engine.dispose()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    # --- talking to it ------------------------------------------------------------

    def smtp(self, timeout: float = 30) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.port, timeout=timeout)

    def send(self, raw: bytes, *, to: Iterable[str] = (SUPPORT,), sender: str = ZACK_ADDRESS) -> None:
        """One message on its own connection; raises smtplib's errors on refusal."""
        with self.smtp() as client:
            client.sendmail(sender, list(to), raw)

    # --- what it stored -------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://"):]
            self._engine = create_engine(url)
        return self._engine

    def stored(self) -> Stored:
        with Session(self.engine) as session:
            return Stored(list(session.scalars(select(InboundMessage).order_by(InboundMessage.id))),
                          list(session.scalars(select(Case).order_by(Case.number))),
                          list(session.scalars(select(OutboundMessage).order_by(OutboundMessage.id))))

    def unprocessed(self) -> int:
        with Session(self.engine) as session:
            return int(session.scalar(select(func.count()).select_from(InboundMessage)
                                      .where(InboundMessage.outcome.is_(None))) or 0)

    def inbound_count(self) -> int:
        with Session(self.engine) as session:
            return int(session.scalar(select(func.count()).select_from(InboundMessage)) or 0)

    def wait_until_processed(self, count: int, timeout: float = PROCESSING_SECONDS) -> Stored:
        """Wait until at least `count` messages are stored and every stored one has an outcome."""
        def done() -> Stored | None:
            stored = self.stored()
            finished = len(stored.inbound) >= count and all(m.outcome for m in stored.inbound)
            return stored if finished else None
        return wait_until(done, timeout=timeout, what=f"{count} message(s) stored and processed", interval=0.2)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the daemon leads its group (start_new_session)
    except ProcessLookupError:  # the whole group has exited
        pass


def require_command(name: str) -> str:
    """The path of a system command; under CI=true a missing one fails, elsewhere it skips."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required under CI=true (apt-get install {name})")
        pytest.skip(f"{name} is not installed")
    return path


def smtp_reply(sock: socket.socket, timeout: float = 30) -> list[str]:
    """Read one complete (possibly multi-line) SMTP reply from a raw socket."""
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"connection closed; read so far: {data!r}")
        data += chunk
        lines = data.decode("utf-8", "replace").split("\r\n")
        complete = [line for line in lines[:-1]]
        if complete and len(complete[-1]) >= 4 and complete[-1][3] == " ":
            return complete


def converse(sock: socket.socket, line: str) -> list[str]:
    sock.sendall(line.encode() + b"\r\n")
    return smtp_reply(sock)


def dot_stuffed(raw: bytes) -> bytes:
    """The DATA payload of a message, as a client sends it (CRLF lines, leading dots doubled)."""
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)


def open_session(port: int, *, lmtp: bool = False, rcpts: Iterable[str] = (SUPPORT,)) -> socket.socket:
    """A raw connection that has said hello, given the envelope and started DATA (354 read)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    assert smtp_reply(sock)[0].startswith("220")
    assert converse(sock, f"{'LHLO' if lmtp else 'EHLO'} client.example")[-1].startswith("250")
    assert converse(sock, f"MAIL FROM:<{ZACK_ADDRESS}>")[0].startswith("250")
    for rcpt in rcpts:
        assert converse(sock, f"RCPT TO:<{rcpt}>")[0].startswith("250")
    assert converse(sock, "DATA")[0].startswith("354")
    return sock


@pytest.fixture
def make_intake(tmp_path: Path, database_url: str) -> Iterator[Callable[..., RunningIntake]]:
    """Make configured intakes (contacts imported; call `.start()`); their daemons are killed after the test."""
    yield from intakes_on(tmp_path, database_url)


def intakes_on(tmp_path: Path, database_url: str) -> Iterator[Callable[..., RunningIntake]]:
    """The body of `make_intake`, for fixtures on another database (several daemons on one PostgreSQL)."""
    made: list[RunningIntake] = []

    def make(**options: Any) -> RunningIntake:
        root = tmp_path / f"intake-{len(made) + 1}"  # one database, a folder of its own for each
        root.mkdir()
        instance = RunningIntake(root, database_url, **options)
        if not made:
            upgrade(database_url)  # `intake db upgrade`, as after installing
            instance.import_contacts()
        made.append(instance)
        return instance
    yield make
    for instance in made:
        instance.close()
        print(f"--- {instance.log} ---\n{instance.log_text()}")  # shown by pytest when the test failed
