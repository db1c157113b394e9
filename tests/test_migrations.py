"""The schema comes from the migrations: `intake db upgrade` / `current`, and who may upgrade.

On both backends: the migrations make exactly the models' schema, a second
upgrade changes nothing, a database ahead of the code is refused, and one made
before migrations is adopted when its tables are those of 0001. An embedded
SQLite database is upgraded by whichever command opens it; a PostgreSQL one
is never changed by opening it, and `intake serve` and the other commands
refuse to start until `intake db upgrade` has been run.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from conftest import REPO, Ran, config_text
from intake.cli import main
from intake.store import migrate
from intake.store.database import engine_for
from intake.store.models import Base
from smtp_helpers import RunningIntake

postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class Cli:
    """The `intake` command, in-process, on a configuration of its own (nothing upgraded beforehand)."""

    def __init__(self, root: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.config = root / "config.toml"
        self.config.write_text(config_text(database_url, root / "outgoing"))
        self.capsys = capsys

    def __call__(self, *args: str) -> Ran:
        self.capsys.readouterr()
        code = main(["--config", str(self.config), *args])
        captured = self.capsys.readouterr()
        return Ran(code, captured.out, captured.err)


@pytest.fixture
def cli(tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(tmp_path, database_url, capsys)


def differences(url: str) -> list[Any]:
    """What autogenerate would change to make the database match the models."""
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))
    finally:
        engine.dispose()


def snapshot(url: str) -> dict[str, Any]:
    """The schema as the database reports it, the revision, and how many accounts there are."""
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            tables = {table: ([(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
                              sorted(str(i) for i in inspector.get_indexes(table)),
                              sorted(str(u) for u in inspector.get_unique_constraints(table)),
                              sorted(str(f) for f in inspector.get_foreign_keys(table)),
                              str(inspector.get_pk_constraint(table)))
                      for table in inspector.get_table_names()}
            versions = (connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
                        if "alembic_version" in tables else None)
            accounts = (connection.execute(text("SELECT name FROM accounts ORDER BY name")).scalars().all()
                        if "accounts" in tables else None)
            return {"tables": tables, "versions": versions, "accounts": accounts}
    finally:
        engine.dispose()


def execute(url: str, *statements: str) -> None:
    engine = engine_for(url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def made_before_migrations(url: str, *, leave_out: str | None = None) -> None:
    """A database as intake made it before it had migrations, and some data.

    Its schema is the models' as they were then, which is what the first
    migration makes: the schema of 0001, without Alembic's version table.
    """
    engine = engine_for(url)
    try:
        with engine.begin() as connection:
            command.upgrade(migrate.alembic_config(connection), migrate.FIRST)
            connection.execute(text(f"DROP TABLE {migrate.VERSION_TABLE}"))
            if leave_out:
                connection.execute(text(f"DROP TABLE {leave_out}"))
    finally:
        engine.dispose()
    execute(url, "INSERT INTO accounts (name) VALUES ('Bayside School District')")


# --- the migrations make the models' schema ------------------------------------------------------


def test_db_upgrade_on_an_empty_database_makes_the_models_schema_and_a_second_run_changes_nothing(
        cli: Cli, database_url: str) -> None:
    before = cli("db", "current", "--json")
    assert before.code == 0, before.err
    assert before.json() == {"revision": None, "head": migrate.head(), "up_to_date": False, "state": "empty"}
    text_before = cli("db", "current")
    assert "revision: none" in text_before.out and "intake db upgrade` creates it" in text_before.out

    first = cli("db", "upgrade")
    assert first.code == 0, first.err
    assert f"upgraded from none (empty) to {migrate.head()}" in first.out
    assert differences(database_url) == []  # the models and the migrations agree

    execute(database_url, "INSERT INTO accounts (name) VALUES ('Bayside School District')")
    upgraded = snapshot(database_url)
    second = cli("db", "upgrade")
    assert second.code == 0, second.err
    assert f"up to date at revision {migrate.head()}; nothing changed" in second.out
    assert snapshot(database_url) == upgraded
    assert upgraded["versions"] == [migrate.head()] and upgraded["accounts"] == ["Bayside School District"]

    after = cli("db", "current", "--json").json()
    assert after == {"revision": migrate.head(), "head": migrate.head(), "up_to_date": True, "state": "current"}
    assert "up to date" in cli("db", "current").out
    assert migrate.current(database_url) == migrate.head()


def test_two_upgrades_at_once_make_the_schema_once(tmp_path: Path, database_url: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(config_text(database_url, tmp_path / "outgoing"))
    command = [sys.executable, "-m", "intake.cli", "--config", str(config), "db", "upgrade"]
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
               for _ in range(2)]
    results = [process.communicate(timeout=60) + (process.returncode,) for process in running]
    assert [code for _, _, code in results] == [0, 0], results
    outs = [out for out, _, _ in results]
    assert sorted("nothing changed" in out for out in outs) == [False, True], outs  # the second waited
    assert sum("upgraded from none (empty)" in out for out in outs) == 1, outs
    assert differences(database_url) == []


# --- SQLite upgrades itself ----------------------------------------------------------------------------


@sqlite_only
def test_any_command_creates_a_fresh_sqlite_database_at_the_head_revision(cli: Cli, database_url: str) -> None:
    listed = cli("cases")
    assert listed.code == 0, listed.err
    assert migrate.current(database_url) == migrate.head()
    assert differences(database_url) == []


@sqlite_only
def test_intake_serve_creates_a_fresh_sqlite_database_itself(tmp_path: Path, database_url: str) -> None:
    intake = RunningIntake(tmp_path, database_url)  # nothing run before it: no upgrade, no contacts
    try:
        intake.start()
        assert intake.stop() == 0
    finally:
        intake.close()
    assert migrate.current(database_url) == migrate.head()
    assert f"event=database_upgraded before=none after={migrate.head()}" in intake.log_text()


@sqlite_only
def test_a_sqlite_database_made_before_migrations_is_stamped_by_the_first_command(cli: Cli, database_url: str
                                                                                ) -> None:
    made_before_migrations(database_url)
    assert cli("db", "current", "--json").json()["state"] == "unversioned"
    listed = cli("cases")
    assert listed.code == 0, listed.err
    after = snapshot(database_url)
    assert after["versions"] == [migrate.head()] and after["accounts"] == ["Bayside School District"]


# --- PostgreSQL: only `intake db upgrade` changes it --------------------------------------------------------


@postgresql_only
def test_postgresql_behind_the_code_refuses_serve_and_commands_until_db_upgrade(tmp_path: Path,
                                                                                database_url: str) -> None:
    intake = RunningIntake(tmp_path, database_url)
    try:
        refused = intake.command("serve", timeout=30)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "`intake db upgrade`" in refused.stderr and "no intake schema yet" in refused.stderr
        assert "SchemaError" not in refused.stderr  # the message for a person, not the Python class

        listed = intake.command("cases")
        assert listed.returncode != 0 and "`intake db upgrade`" in listed.stderr, listed.stderr
        checked = intake.check()
        assert checked.returncode == 1 and "`intake db upgrade`" in checked.stdout, checked.stdout
        assert snapshot(database_url) == {"tables": {}, "versions": None, "accounts": None}  # nothing created

        upgraded = intake.command("db", "upgrade")
        assert upgraded.returncode == 0 and f"to {migrate.head()}" in upgraded.stdout, upgraded.stderr
        intake.import_contacts()
        intake.start()
        assert intake.stop() == 0
    finally:
        intake.close()


@postgresql_only
def test_a_postgresql_database_made_before_migrations_is_refused_until_db_upgrade_adopts_it(
        cli: Cli, database_url: str) -> None:
    made_before_migrations(database_url)
    listed = cli("cases")
    assert listed.code == 2 and "made before intake had schema migrations" in listed.err, listed.err
    assert "`intake db upgrade`" in listed.err
    assert snapshot(database_url)["versions"] is None

    adopted = cli("db", "upgrade")
    assert adopted.code == 0, adopted.err
    assert f"made before migrations; its tables are those of revision {migrate.FIRST}, stamped" in adopted.out
    after = snapshot(database_url)
    assert after["versions"] == [migrate.head()] and after["accounts"] == ["Bayside School District"]
    assert differences(database_url) == []
    assert cli("cases").code == 0


# --- refused everywhere ---------------------------------------------------------------------------------------


def test_a_database_made_before_migrations_whose_tables_differ_is_not_adopted(cli: Cli, database_url: str) -> None:
    made_before_migrations(database_url, leave_out="imap_state")
    refused = cli("db", "upgrade")
    assert refused.code == 2 and "no table imap_state" in refused.err and "cannot be adopted" in refused.err
    listed = cli("cases")  # SQLite would adopt it, and cannot; PostgreSQL sends to `intake db upgrade`
    expected = "no table imap_state" if database_url.startswith("sqlite") else "`intake db upgrade`"
    assert listed.code == 2 and expected in listed.err, listed.err
    assert snapshot(database_url)["versions"] is None and "imap_state" not in snapshot(database_url)["tables"]


def test_a_database_ahead_of_the_code_is_refused_and_left_alone(tmp_path: Path, cli: Cli, database_url: str) -> None:
    migrate.upgrade(database_url)
    execute(database_url, "UPDATE alembic_version SET version_num = '9999'")
    ahead = snapshot(database_url)

    listed = cli("cases")
    assert listed.code == 2 and "revision 9999, which this intake does not know" in listed.err, listed.err
    upgraded = cli("db", "upgrade")
    assert upgraded.code == 2 and "upgraded by a newer intake" in upgraded.err
    assert cli("db", "current", "--json").json() == {"revision": "9999", "head": migrate.head(),
                                                     "up_to_date": False, "state": "ahead"}
    (tmp_path / "daemon").mkdir()
    started = RunningIntake(tmp_path / "daemon", database_url).command("serve", timeout=30)
    assert started.returncode == 1 and "revision 9999" in started.stderr, started.stderr
    assert snapshot(database_url) == ahead
