"""intake's benchmark, side by side with its peers, in one command: `python bench/run.py [--quick]`.

Run it with the Python that has intake installed (`.venv/bin/python bench/run.py`). It makes a
realistic corpus and contacts in a temporary folder, installs what it compares against when
missing (Debian's `postfix` package for smtp-source/smtp-sink, as root, the service never
started; Roundup from PyPI into ~/.cache/intake-bench), measures, prints one Markdown table and writes
it to bench/results/. Every ratio compares figures taken in this run, interleaved A/B/A/B and
reported as medians: on a shared, noisy machine, never compare with a figure from another day.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import roundup_gw  # noqa: E402  (bench/ is put on the path just above)
from corpus import make_corpus, write_contacts_csv, write_mbox  # noqa: E402
from harness import ROOT, DatabaseEngine, admin_engine, loadavg, postgres_problem  # noqa: E402
from measure import MEASUREMENTS, Context, ingest_vs_roundup  # noqa: E402
from report import Row, document  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ORDER = ("smtp", "ingest", "e2e", "memory", "full-db", "broadcast")  # ingest before e2e: e2e's peer is Roundup's rate


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    started = dt.datetime.now(dt.UTC)
    load_before = loadavg()
    workdir = Path(tempfile.mkdtemp(prefix="intake-bench-"))
    (workdir / "logs").mkdir()
    ctx = _context(args, workdir)
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    rows = [row for engine in engines for row in _measure_engine(ctx, engine, args.only)]
    heading = _heading(argv, started, load_before, args, ctx)
    text = document(heading, rows)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{started:%Y%m%d-%H%M%S}.md"
    out.write_text(text, encoding="utf-8")
    print(f"written to {out}; logs and databases in {workdir}" if args.keep else f"written to {out}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run: smaller corpus, fewer rounds")
    parser.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--only", action="append", choices=ORDER, help="run only this measurement (repeatable)")
    parser.add_argument("--rounds", type=int, help="rounds of each A/B pair (default 2 with --quick, else 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, databases)")
    return parser.parse_args(argv)


def _context(args: argparse.Namespace, workdir: Path) -> Context:
    problems: dict[str, str] = {}
    source, sink = ensure_postfix_tools(problems)
    roundup = roundup_gw.ensure_installed(workdir / "logs" / "roundup-install.log")
    if roundup is None:
        problems["roundup"] = "pip could not install roundup (see logs/roundup-install.log)"
    count = 1_000 if args.quick else 10_000
    started = time.perf_counter()
    corpus = make_corpus(count)
    contacts_csv = workdir / "contacts.csv"
    write_contacts_csv(contacts_csv, corpus.contacts)
    write_mbox(workdir / "corpus.mbox", corpus.messages)
    print(f"corpus of {count:,} messages made in {time.perf_counter() - started:.0f} s in {workdir}", file=sys.stderr)
    rounds = args.rounds or (2 if args.quick else 3)
    return Context(workdir, corpus, contacts_csv, args.quick, rounds, source, sink, roundup, problems)


def ensure_postfix_tools(problems: dict[str, str]) -> tuple[str | None, str | None]:
    """smtp-source and smtp-sink, installing Debian's postfix package first if needed (as root only)."""
    found = shutil.which("smtp-source", path="/usr/sbin:/usr/bin"), shutil.which("smtp-sink", path="/usr/sbin:/usr/bin")
    if all(found):
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        problems["postfix"] = "smtp-source/smtp-sink missing; run as root with apt-get to install Debian's postfix"
        return None, None
    _install_postfix()
    found = shutil.which("smtp-source", path="/usr/sbin:/usr/bin"), shutil.which("smtp-sink", path="/usr/sbin:/usr/bin")
    if not all(found):
        problems["postfix"] = "apt-get install postfix did not provide smtp-source/smtp-sink"
        return None, None
    return found


def _install_postfix() -> None:
    """Install the package without letting it configure or start a mail server (a policy-rc.d refusing starts)."""
    policy = Path("/usr/sbin/policy-rc.d")
    added = not policy.exists()
    if added:
        policy.write_text("#!/bin/sh\n# bench/run.py: install postfix without starting it\nexit 101\n")
        policy.chmod(0o755)
    try:
        subprocess.run(["debconf-set-selections"], input="postfix postfix/main_mailer_type select No configuration\n",
                       text=True, check=False)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "postfix"], env=env, check=False, stdout=subprocess.DEVNULL)
    finally:
        if added:
            policy.unlink()


def _measure_engine(ctx: Context, engine: str, only: list[str] | None) -> list[Row]:
    if engine == "postgresql" and (problem := postgres_problem()):
        return [Row(name, engine, note=f"not available: {problem}") for name in (only or ORDER)]
    db = DatabaseEngine(engine, f"{os.getpid()}")
    rows: list[Row] = []
    try:
        for name in only or ORDER:
            print(f"[{dt.datetime.now(dt.UTC):%H:%M:%S}] {engine}: {name}", file=sys.stderr, flush=True)
            rows.extend(_one(ctx, db, name))
    finally:
        db.drop_all()
    return rows


def _one(ctx: Context, db: DatabaseEngine, name: str) -> list[Row]:
    try:
        if name == "ingest":
            return ingest_vs_roundup(ctx, db, ctx.workdir / "corpus.mbox")
        return MEASUREMENTS[name](ctx, db)
    except Exception as exc:  # one broken measurement must not lose the others' figures
        (ctx.workdir / "logs" / f"{db.name}-{name}-error.txt").write_text(traceback.format_exc())
        return [Row(name, db.name, note=f"failed: {type(exc).__name__}: {str(exc)[:200]}")]


# --- what the table is headed with --------------------------------------------------------------------------


def _heading(argv: list[str] | None, started: dt.datetime, load_before: str, args: argparse.Namespace,
             ctx: Context) -> list[str]:
    command = " ".join(["python bench/run.py", *(sys.argv[1:] if argv is None else argv)])
    return [
        f"## intake benchmark, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"- command: `{command}` ({(dt.datetime.now(dt.UTC) - started).total_seconds() / 60:.0f} min)",
        f"- machine: {os.cpu_count()} cores, {_cpu_model()}, {platform.system()} {platform.release()}; "
        f"load average before {load_before}, after {loadavg()}",
        f"- versions: {_versions()}",
        f"- corpus: {len(ctx.corpus.messages):,} generated messages (new cases in all ten case types, replies "
        f"quoting history from five mail clients, attachments, non-ASCII, HTML-only), "
        f"{len(ctx.corpus.contacts)} contacts in 20 districts",
        "- intake's configuration here raises the reply cap (`[conversations] auto_replies_per_hour`) and the case "
        "rates (`[limits] cases_per_hour_per_sender`, `cases_per_hour_per_account`) to 1,000,000 so they do not "
        "interfere",
        f"- each pair interleaved A/B/A/B, {ctx.rounds} rounds, medians; ratio = intake / peer "
        "(for memory: intake's extra peak RSS / the attachment)",
    ]


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown CPU"


def _versions() -> str:
    import aiosmtpd
    parts = [f"Python {platform.python_version()}", f"intake {_commit()}", f"aiosmtpd {aiosmtpd.__version__}",
             f"Postfix {_postfix_version()}", f"Roundup {roundup_gw.version()}", f"SQLite {sqlite3.sqlite_version}",
             f"PostgreSQL {_postgres_version()}"]
    return ", ".join(parts)


def _commit() -> str:
    """The checkout's commit, and the last one that changed the product (bench/ commits change no figure)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()
    product = ("intake", "parsers", "routing", "templates")
    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--", *product) else ""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    last = git("log", "-1", "--format=%h", "--", *product)
    return f"{head} (product code as of {last}){dirty}" if last and last != head else head + dirty


def _postfix_version() -> str:
    if not shutil.which("postconf", path="/usr/sbin:/usr/bin"):
        return "not installed"
    done = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def _postgres_version() -> str:
    if postgres_problem():
        return "unavailable"
    from sqlalchemy import text
    with admin_engine().connect() as conn:
        return str(conn.scalar(text("SHOW server_version"))).split()[0]


if __name__ == "__main__":
    sys.exit(main())
