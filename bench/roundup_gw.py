"""The peer for `intake ingest`: Roundup's mail gateway, on the same mbox.

Roundup (PyPI `roundup`) goes into a virtualenv of its own under
~/.cache/intake-bench (or $XDG_CACHE_HOME/intake-bench), made on first use and
kept outside the checkout so no linter or test run walks into it. Each run
gets a fresh `classic` tracker on Roundup's SQLite backend with every corpus sender registered as a user, so its mail is
accepted; the [mailgw] settings make it as forgiving as intake is (a
`[Case Type]` subject prefix is kept in the title, HTML-only mail converted,
quoted text dropped), and outgoing mail goes to a file instead of a server.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "intake-bench"
VENV = CACHE / "roundup-venv"

# Run by the Roundup venv's Python: registers the users in one transaction (roundup-admin per user is slow).
_REGISTER = """
import sys
from roundup import instance
db = instance.open(sys.argv[1]).open("admin")
for n, address in enumerate(sys.stdin.read().split()):
    db.user.create(username=f"user{n}", address=address, roles="User")
db.commit()
db.close()
"""

SETTINGS = {  # (section, option): value, written into the tracker's config.ini
    ("mail", "debug"): "outgoing-mail.txt",
    ("mailgw", "subject_prefix_parsing"): "loose",
    ("mailgw", "subject_suffix_parsing"): "loose",
    ("mailgw", "keep_quoted_text"): "no",
    ("mailgw", "convert_htmltotext"): "dehtml",
}


def ensure_installed(log: Path) -> Path | None:
    """The venv's roundup-mailgw, installing Roundup first if needed; None (reason in `log`) if that fails."""
    mailgw = VENV / "bin" / "roundup-mailgw"
    if mailgw.exists():
        return mailgw
    CACHE.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        made = subprocess.run([sys.executable, "-m", "venv", str(VENV)], stdout=out, stderr=out)
        if made.returncode == 0:
            subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "roundup"], stdout=out, stderr=out)
    return mailgw if mailgw.exists() else None


def version() -> str:
    done = subprocess.run([str(VENV / "bin" / "python"), "-c", "import roundup; print(roundup.__version__)"],
                          capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def make_tracker(home: Path, addresses: Iterable[str]) -> None:
    """A fresh classic tracker at `home` (removed first) whose users are `addresses`."""
    shutil.rmtree(home, ignore_errors=True)
    admin = str(VENV / "bin" / "roundup-admin")
    options = ("mail_domain=intake.example,mail_host=localhost,tracker_web=http://localhost/,"
               "admin_email=support@intake.example,dispatcher_email=support@intake.example")
    subprocess.run([admin, "-i", str(home), "install", "classic", "sqlite", options], check=True,
                   capture_output=True)
    _configure(home / "config.ini")
    subprocess.run([admin, "-i", str(home), "initialise", "admin"], check=True, capture_output=True)
    subprocess.run([str(VENV / "bin" / "python"), "-c", _REGISTER, str(home)], input="\n".join(addresses),
                   text=True, check=True, capture_output=True)


def _configure(config: Path) -> None:
    text = config.read_text(encoding="utf-8")
    for (section, option), value in SETTINGS.items():
        block = re.search(rf"^\[{section}\]$.*?(?=^\[|\Z)", text, re.M | re.S)
        assert block is not None, f"no [{section}] in Roundup's config.ini"
        changed = re.sub(rf"^{option} = .*$", f"{option} = {value}", block.group(0), count=1, flags=re.M)
        text = text[:block.start()] + changed + text[block.end():]
    config.write_text(text, encoding="utf-8")


def mailgw_command(home: Path, mbox: Path) -> list[str]:
    """Roundup's gateway reading a Unix mbox (which it empties: give it a copy)."""
    return [str(VENV / "bin" / "roundup-mailgw"), str(home), "mailbox", str(mbox)]


def issue_count(home: Path) -> int:
    script = ("import sys\nfrom roundup import instance\n"
              "db = instance.open(sys.argv[1]).open('admin')\nprint(len(db.issue.list()))")
    done = subprocess.run([str(VENV / "bin" / "python"), "-c", script, str(home)], capture_output=True, text=True)
    return int(done.stdout.strip() or -1)
