"""A real Dovecot IMAP server for tests, run unprivileged from a temporary directory.

Tests talk to a real server, as the SMTP tests talk to a real aiosmtpd: the
poller's IDLE, MOVE fallbacks, reconnects and UIDVALIDITY handling are only
worth something against the server's actual behaviour. What it takes to run
Dovecot as a test fixture on these machines is in
/work/shared/notes/dovecot-for-tests.md: every path inside one directory, login
processes as `dovenull` without chroot, mail processes as `dovecot`, and a
static passdb that accepts any user name with one password.

`Dovecot` can be stopped and started again on the same port (a server going
away mid-poll), can advertise fewer capabilities (`without=("MOVE",)`) to test
fallbacks, and can offer STARTTLS and implicit TLS with a self-signed
certificate. When Dovecot is not installed the tests using it are skipped, or
fail under CI=true, where it must be there.
"""
from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from imapclient import IMAPClient  # type: ignore[import-untyped]

START_DEADLINE_SECONDS = 20.0
STOP_DEADLINE_SECONDS = 20.0

# Dovecot 2.3's capability list after login. `imap_capability` replaces the
# whole list, so leaving something out means writing the rest of it.
DEFAULT_CAPABILITIES = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS "
    "THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS "
    "LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS "
    "BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY"
).split()


def require_dovecot() -> str:
    """The dovecot binary, or skip the test (fail it under CI=true)."""
    binary = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)
    if binary and os.geteuid() == 0:
        return binary
    why = "dovecot is not installed (apt-get install dovecot-imapd)" if not binary else "Dovecot tests run as root"
    if os.environ.get("CI") == "true":
        pytest.fail(f"IMAP tests need a real Dovecot under CI=true: {why}")
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class Dovecot:
    """One Dovecot instance with its own directory, port and single password."""

    binary: str
    root: Path
    password: str = "correct-horse-battery-staple"
    user: str = "support@intake.example"
    without: Sequence[str] = ()
    tls: bool = False
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    instance: str = field(default_factory=lambda: f"intake-test-{uuid.uuid4().hex[:10]}")

    @property
    def conf(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def pidfile(self) -> Path:
        return self.root / "run" / "master.pid"

    @property
    def log(self) -> Path:
        return self.root / "dovecot.log"

    @property
    def ca_file(self) -> Path:
        return self.root / "cert.pem"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's self-signed certificate."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.check_hostname = False  # the certificate names "localhost"; we connect to 127.0.0.1
        return context

    # --- running ---------------------------------------------------------------

    def start(self) -> None:
        self._write_conf()
        # Output goes to a file, not a pipe: the daemon keeps its stderr open,
        # and a pipe would never reach end-of-file.
        errors = self.root / "start.err"
        with errors.open("wb") as stderr:
            started = subprocess.run([self.binary, "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=stderr, stderr=stderr)
        if started.returncode != 0:
            raise RuntimeError(f"dovecot did not start: {errors.read_text().strip()}\n{self.log_text()}")
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while not (self.pidfile.exists() and port_accepts(self.port)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not listen on {self.port} in time\n{self.log_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the master, then the mail processes it leaves serving open connections.

        Dovecot's master does not end running `imap` processes; a server that
        "goes away" in a test must take its clients' connections with it.
        """
        if not self.pidfile.exists():
            return
        master = int(self.pidfile.read_text().split()[0])
        _terminate([master])
        _terminate(_session_members(master))

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"

    # --- putting mail in and looking at it ------------------------------------

    def client(self) -> IMAPClient:
        client = IMAPClient(self.host, self.port, ssl=False, timeout=10)
        client.login(self.user, self.password)
        return client

    def append(self, raw: bytes, folder: str = "INBOX", flags: Sequence[bytes] = ()) -> None:
        with self.client() as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.append(folder, raw, flags=tuple(flags))

    def messages(self, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        """UID → flags of every message in the folder (without changing anything)."""
        with self.client() as client:
            if not client.folder_exists(folder):
                return {}
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            return {uid: tuple(data[b"FLAGS"]) for uid, data in client.fetch(uids, ["FLAGS"]).items()} if uids else {}

    def uid_validity(self, folder: str = "INBOX") -> int:
        with self.client() as client:
            return int(client.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])

    def doveadm(self, *args: str) -> str:
        ran = subprocess.run(["doveadm", "-c", str(self.conf), *args], capture_output=True, text=True)
        if ran.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)}: {ran.stderr.strip()}")
        return ran.stdout

    # --- configuration ---------------------------------------------------------

    def _write_conf(self) -> None:
        for directory in ("run", "state", "mail"):
            (self.root / directory).mkdir(exist_ok=True)
        shutil.chown(self.root / "mail", "dovecot", "dovecot")
        capabilities = ""
        if self.without:
            kept = [c for c in DEFAULT_CAPABILITIES if c not in set(self.without)]
            capabilities = f"protocol imap {{\n  imap_capability = {' '.join(kept)}\n}}\n"
        self.conf.write_text(
            f"instance_name = {self.instance}\n"
            f"base_dir = {self.root / 'run'}\n"
            f"state_dir = {self.root / 'state'}\n"
            f"log_path = {self.log}\n"
            "protocols = imap\n"
            "listen = 127.0.0.1\n"
            "disable_plaintext_auth = no\n"
            "auth_mechanisms = plain login xoauth2\n"
            # Refused logins are answered at once, not after the usual 2 s, so
            # tests of retrying after a wrong password stay quick (and see anvil).
            "auth_failure_delay = 0\n"
            "default_login_user = dovenull\n"
            "default_internal_user = dovecot\n"
            "default_internal_group = dovecot\n"
            "mail_location = maildir:~/Maildir\n"
            # IDLE learns of new mail through inotify; when the machine's inotify
            # instances run out (several suites at once), Dovecot falls back to
            # checking every mailbox_idle_check_interval, 30 s by default: longer
            # than the tests wait. Checking every second keeps IDLE prompt either way.
            "mailbox_idle_check_interval = 1 secs\n"
            # Mail processes run as the unprivileged `dovecot` user, a system
            # uid below Dovecot's default first_valid_uid of 500.
            f"first_valid_uid = {pwd.getpwnam('dovecot').pw_uid}\n"
            f"first_valid_gid = {grp.getgrnam('dovecot').gr_gid}\n"
            f"passdb {{\n  driver = static\n  args = password={self.password}\n}}\n"
            f"userdb {{\n  driver = static\n  args = uid=dovecot gid=dovecot home={self.root / 'mail'}/%u\n}}\n"
            + self._ssl_settings()
            + "service imap-login {\n  chroot =\n"
            f"  inet_listener imap {{\n    port = {self.port}\n  }}\n"
            f"  inet_listener imaps {{\n    port = {self.tls_port if self.tls else 0}\n"
            f"    ssl = {'yes' if self.tls else 'no'}\n  }}\n}}\n"
            # Without this socket Dovecot's growing per-IP penalty after failed
            # logins (up to 15 s) is off.
            "service anvil {\n  chroot =\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n"
            + capabilities)

    def _ssl_settings(self) -> str:
        if not self.tls:
            return "ssl = no\n"
        key = self.root / "key.pem"
        if not self.ca_file.exists():
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                            "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(self.ca_file)],
                           check=True, capture_output=True)
        return f"ssl = yes\nssl_cert = <{self.ca_file}\nssl_key = <{key}\n"


def _terminate(pids: Sequence[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + STOP_DEADLINE_SECONDS
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"dovecot processes {list(pids)} did not stop in time")
        time.sleep(0.05)


def _session_members(session: int) -> list[int]:
    """Live processes in the session the Dovecot master led (it calls setsid)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # ended while we looked
        if int(fields[3]) == session and _alive(int(stat.parent.name)):
            members.append(int(stat.parent.name))
    return members


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting for its parent."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@contextmanager
def running_dovecot(*, without: Sequence[str] = (), tls: bool = False,
                    password: str = "correct-horse-battery-staple") -> Iterator[Dovecot]:
    """Start a Dovecot for the duration of the block, then stop it and remove its files."""
    binary = require_dovecot()
    # pytest's tmp_path is private to root (0700); Dovecot's mail processes run
    # as `dovecot` and must be able to reach their home below this directory.
    root = Path(tempfile.mkdtemp(prefix="intake-dovecot-"))
    root.chmod(0o755)
    server = Dovecot(binary, root, password=password, without=tuple(without), tls=tls)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)
