"""`intake serve` runs the scheduled work: a maintenance starts at its time, the status page is regenerated
and the publish command copies it, with no command from staff."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

from smtp_helpers import RunningIntake, make_intake, wait_until

__all__ = ["make_intake"]  # the fixture
Make = Callable[..., RunningIntake]
COMMAND_MARGIN_SECONDS = 12


def _status(site: Path) -> dict | None:
    try:
        return json.loads((site / "status.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def test_the_daemon_starts_maintenance_at_its_time_and_publishes_the_status_page(make_intake: Make) -> None:
    intake = make_intake()
    site, copy = intake.root / "site", intake.root / "published"
    with intake.config.open("a", encoding="utf-8") as handle:
        handle.write(f'[notifications]\nstatus_page_dir = "{site}"\n'
                     f'status_page_publish_command = "mkdir -p {copy} && cp status.json index.html {copy}/"\n')
    intake.start()
    # Far enough ahead that the command has surely written its page before the start, even on a loaded
    # machine (a CLI start can take seconds there); the daemon then starts it on its own.
    starts = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=COMMAND_MARGIN_SECONDS)
    ran = intake.command("notify", "maintenance", "Database upgrade", "--starts", starts.strftime("%Y-%m-%d %H:%M:%S"),
                         "--ends", (starts + dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"), "--body",
                         "The SIS is unavailable.")
    assert ran.returncode == 0, ran.stderr
    assert _status(site)["open"][0]["status"] == "scheduled"  # the command refreshed the page itself

    def started() -> dict | None:
        # The publish command copies file by file: wait for the page as well as status.json, not one of them.
        status = _status(copy)
        page = copy / "index.html"
        copied = page.is_file() and "In Progress" in page.read_text(encoding="utf-8")
        return status if copied and status and status["open"] and status["open"][0]["status"] == "in progress" \
            else None

    published = wait_until(started, timeout=COMMAND_MARGIN_SECONDS + 40,
                           what="the daemon to start the maintenance and publish the page")
    assert published["banner"]["state"] == "maintenance"
    assert published["banner"]["text"] == "Maintenance is in progress: Database upgrade"
    assert "In Progress" in (copy / "index.html").read_text(encoding="utf-8")
    assert intake.stop() == 0
