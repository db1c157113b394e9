"""Several `intake serve` processes on one database: what they must share, and who does what.

On PostgreSQL any number of daemons, on any number of hosts, serve one
database. They must share the thread secret (a token one writes must verify
on every other), so `serve` refuses to start there without a configured one.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from conftest import TEST_SECRET_ENV, Intake


def _without_configured_secret(intake: Intake) -> None:
    text = intake.config.read_text()
    assert f'secret_env = "{TEST_SECRET_ENV}"\n' in text
    intake.config.write_text(text.replace(f'secret_env = "{TEST_SECRET_ENV}"\n', ""))


def test_serve_refuses_postgresql_without_a_shared_secret_and_says_how_to_set_one(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    intake = Intake(tmp_path, database_url, capsys)
    _without_configured_secret(intake)
    check = intake.run("serve", "--check")
    if make_url(database_url).get_backend_name() == "postgresql":
        served = intake.run("serve")
        assert served.code == 1
        assert "every intake serve must share one thread secret" in served.err
        assert "set [conversations] secret_env or secret_file" in served.err
        assert check.code == 1
        assert "FAIL  configuration" in check.out and "secret_env or secret_file" in check.out
    else:  # SQLite is one machine's database: the secret generated beside it serves
        assert "ok    configuration" in check.out
