"""What every measurement needs: engines, intake instances, timed child processes, servers on ports.

An `Instance` is one intake deployment made for one measurement: its own
folder, configuration file and database (a fresh SQLite file, or a fresh
PostgreSQL schema reached through `?options=-csearch_path%3D<schema>`), its
schema made by `intake db upgrade` and the corpus's contacts imported.
"""
from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
INTAKE = Path(sys.executable).with_name("intake")
PEAK = Path(__file__).resolve().parent / "peak.py"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# The benchmark's intake configuration. The reply cap and the rates of new cases are set far above anything
# the benchmark sends, so that they never hold or suppress its mail: a benchmark of what the pipeline does
# with every message, not of the limits that protect a real deployment.
CONFIG = """\
# Written by bench/run.py. Reply cap and case rates raised so they do not interfere with the benchmark.
[intake]
support_addresses = ["support@intake.example"]
data_dir = "{data_dir}"
max_message_bytes = {max_message_bytes}

[limits]
cases_per_hour_per_sender = 1000000
cases_per_hour_per_account = 1000000
max_attachment_bytes = {max_message_bytes}

[database]
url = "{url}"

[smtp]
host = "127.0.0.1"
port = {port}
max_sessions = 500

[conversations]
auto_replies_per_hour = 1000000
secret_file = "{data_dir}/secret"
"""
DEFAULT_MAX_BYTES = 26214400


@dataclass
class DatabaseEngine:
    """SQLite or PostgreSQL: where an instance's database goes, and its cleanup."""

    name: str
    run_id: str
    schemas: list[str] = field(default_factory=list)

    def url_for(self, folder: Path, label: str) -> str:
        if self.name == "sqlite":
            return f"sqlite:///{folder}/intake.db"
        schema = f"bench_{self.run_id}_{label}".lower()
        with admin_engine().begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        self.schemas.append(schema)
        return f"{POSTGRES}?options=-csearch_path%3D{schema}"

    def drop_all(self) -> None:
        if not self.schemas:
            return
        with admin_engine().begin() as conn:
            for schema in self.schemas:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        self.schemas.clear()


def admin_engine() -> Engine:
    return create_engine(POSTGRES, pool_pre_ping=True)


def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used here, or None when it can."""
    try:
        with admin_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver or connection error: the rows say "not available" and why
        return f"PostgreSQL at 127.0.0.1:5432 unavailable ({type(exc).__name__})"
    return None


@dataclass
class Instance:
    folder: Path
    config: Path
    url: str
    port: int

    def intake(self, *args: str) -> list[str]:
        return [str(INTAKE), "--config", str(self.config), *args]

    def engine(self) -> Engine:
        return create_engine(self.url)


def make_instance(workdir: Path, db: DatabaseEngine, label: str, contacts_csv: Path,
                  max_message_bytes: int = DEFAULT_MAX_BYTES) -> Instance:
    folder = workdir / f"{db.name}-{label}"
    folder.mkdir(parents=True)
    (folder / "data").mkdir()
    (folder / "data" / "secret").write_text("bench-secret-" + db.run_id + "\n")
    port = free_port()
    url = db.url_for(folder, label)
    config = folder / "config.toml"
    config.write_text(CONFIG.format(data_dir=folder / "data", url=url, port=port,
                                    max_message_bytes=max_message_bytes))
    instance = Instance(folder, config, url, port)
    quiet(instance.intake("db", "upgrade"), folder / "upgrade.log")
    quiet(instance.intake("contacts", "import", str(contacts_csv)), folder / "contacts.log")
    return instance


def quiet(command: Sequence[str], log: Path) -> None:
    with log.open("ab") as out:
        subprocess.run(command, stdout=out, stderr=out, check=True)


@dataclass(frozen=True)
class Timed:
    seconds: float
    peak_rss: int  # bytes, of the child process (and any children it waited for)
    returncode: int


def run_timed(command: Sequence[str], log: Path) -> Timed:
    """Run `command`, its output to `log`: its wall time and its own peak RSS (measured by bench/peak.py)."""
    result = log.with_suffix(".result.json")
    with log.open("ab") as out:
        subprocess.run([sys.executable, "-S", str(PEAK), str(result), *command], stdout=out, stderr=out, check=True)
    figures = json.loads(result.read_text())
    return Timed(figures["seconds"], figures["peak_rss"], figures["returncode"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.recv(100)  # the greeting: the server is really serving
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing answered on port {port} within {timeout:.0f} s")


@contextlib.contextmanager
def server(command: Sequence[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server process for the duration of the block, stopped with SIGTERM (then SIGKILL) after it."""
    with log.open("ab") as out:
        child = subprocess.Popen(command, stdout=out, stderr=out)
    try:
        wait_for_port(port)
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])

