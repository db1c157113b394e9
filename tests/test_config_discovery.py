"""Where intake finds its configuration, where it keeps its data, and the template override.

Everything runs the real command line in-process, in folders of the test's own:
the working directory, $INTAKE_CONFIG and the system-wide file are each set
(the last by pointing intake.config.SYSTEM_CONFIG into the test's folder, so
that /etc is never read or written).
"""
from __future__ import annotations

import dataclasses
import email
import mailbox
import tomllib
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

import intake.config
from conftest import DATA, REPO, compose
from intake.cli import main
from intake.config import ConfigError, config_from_mapping, load_config

ZACK = "Zack Morris <zack.morris@bayside.example>"


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An empty working directory, no $INTAKE_CONFIG, and a system-wide file that does not exist (yet)."""
    work = tmp_path / "work"
    work.mkdir()
    system = tmp_path / "etc" / "intake" / "config.toml"
    monkeypatch.chdir(work)
    monkeypatch.delenv("INTAKE_CONFIG", raising=False)
    monkeypatch.setattr(intake.config, "SYSTEM_CONFIG", system)
    return {"work": work, "system": system, "root": tmp_path}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def delivered(maildir: Path) -> list[EmailMessage]:
    box = mailbox.Maildir(str(maildir), factory=None, create=False)
    return [email.message_from_bytes(box.get_bytes(key), policy=policy.default)  # type: ignore[misc]
            for key in box.iterkeys()]


# --- finding the file --------------------------------------------------------------------------------


def test_with_no_configuration_anywhere_intake_exits_2_naming_every_place_it_looked(
        places: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "cases")
    assert code == 2 and out == ""
    assert err.startswith("intake: error: no configuration file found")
    for place in ("--config", "$INTAKE_CONFIG", str(places["work"] / "config.toml"), str(places["system"])):
        assert place in err
    assert list(places["work"].iterdir()) == []  # nothing made where it stands


def test_the_places_are_tried_in_order_config_env_cwd_system(places: dict[str, Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    root = places["root"]
    system = write(places["system"])
    assert load_config().path == system
    here = write(places["work"] / "config.toml")
    assert load_config().path == here
    named = write(root / "named" / "intake.toml")
    monkeypatch.setenv("INTAKE_CONFIG", str(named))
    assert load_config().path == named
    given = write(root / "given.toml")
    assert load_config(given).path == given


def test_intake_config_names_the_file_and_its_folder_holds_the_data(
        places: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(places["root"] / "conf" / "config.toml", '[intake]\ntimezone = "UTC"\n')
    write(places["work"] / "config.toml", "[intake]\nnot_a_setting = 1\n")  # would fail if it were read
    monkeypatch.setenv("INTAKE_CONFIG", str(config))
    code, _, err = run(capsys, "contacts", "import", str(DATA / "contacts.csv"))
    assert code == 0, err
    assert (config.parent / "var" / "intake.db").is_file()
    assert (config.parent / "var" / "secret").is_file()
    assert sorted(p.name for p in places["work"].iterdir()) == ["config.toml"]  # no ./var


def test_intake_config_naming_a_missing_file_is_an_error_that_says_so(
        places: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    write(places["work"] / "config.toml")  # present, and still not used instead
    missing = places["root"] / "nowhere.toml"
    monkeypatch.setenv("INTAKE_CONFIG", str(missing))
    code, _, err = run(capsys, "cases")
    assert code == 2
    assert f"{missing} (named by $INTAKE_CONFIG): no such configuration file" in err


# --- one source of defaults ---------------------------------------------------------------------------


def test_the_shipped_config_and_an_empty_file_give_the_same_settings(tmp_path: Path) -> None:
    shipped = write(tmp_path / "config.toml", (REPO / "config.toml").read_text(encoding="utf-8"))
    empty = write(tmp_path / "empty.toml")
    from_shipped, from_empty = load_config(shipped), load_config(empty)
    assert dataclasses.replace(from_shipped, path=None) == dataclasses.replace(from_empty, path=None)
    # what the README promises of the default: SMTP on loopback, everything under var/ beside the file
    assert (from_empty.smtp.enabled, from_empty.smtp.host, from_empty.smtp.port) == (True, "127.0.0.1", 2525)
    assert from_empty.data_dir == tmp_path / "var"
    assert from_empty.database_url == f"sqlite:///{tmp_path / 'var' / 'intake.db'}"
    assert from_empty.outgoing_maildir == tmp_path / "var" / "outgoing"
    assert from_empty.template_dir is None


def test_data_dir_moves_the_database_maildir_and_secret_and_other_paths_stay_beside_the_file(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"  # absolute, as "/var/lib/intake" in deploy/config.toml.example
    moved = load_config(write(tmp_path / "a" / "config.toml", f'[intake]\ndata_dir = "{elsewhere}"\n'))
    assert moved.database_url == f"sqlite:///{elsewhere / 'intake.db'}"
    assert moved.outgoing_maildir == elsewhere / "outgoing"
    assert (elsewhere / "secret").is_file()
    relative = write(tmp_path / "b" / "config.toml",
                     '[intake]\ndata_dir = "state"\n[outgoing]\nmaildir = "mail/out"\n'
                     '[database]\nurl = "sqlite:///db/intake.db"\n')
    config = load_config(relative)
    assert config.data_dir == tmp_path / "b" / "state"
    assert config.outgoing_maildir == tmp_path / "b" / "mail" / "out"
    assert config.database_url == f"sqlite:///{tmp_path / 'b' / 'db' / 'intake.db'}"
    assert (tmp_path / "b" / "state" / "secret").is_file()


def test_data_dir_of_a_missing_folder_is_made_on_first_use_with_the_maildir_under_it(
        places: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    data = places["root"] / "deep" / "state"
    config = write(places["root"] / "config.toml", f'[intake]\ndata_dir = "{data}"\n')
    assert run(capsys, "--config", str(config), "contacts", "import", str(DATA / "contacts.csv"))[0] == 0
    code, _, err = run(capsys, "--config", str(config), "ingest", str(DATA / "seed_case_example.eml"))
    assert code == 0, err
    assert [m["Subject"] for m in delivered(data / "outgoing")] == ["[Case #1] Teachers unable to post grades"]


def test_a_template_dir_that_is_not_a_folder_is_a_configuration_error(tmp_path: Path) -> None:
    config = write(tmp_path / "config.toml", '[intake]\ntemplate_dir = "my-templates"\n')
    with pytest.raises(ConfigError, match="template_dir .*my-templates is not a folder"):
        load_config(config)


# --- overriding one template --------------------------------------------------------------------------

OVERRIDE = """{% extends "_base.txt" %}
{% block body %}
Our own words: case #{{ case.number }} is with {{ case.department }}.
{% endblock %}
"""


def test_a_template_dir_holding_one_template_changes_it_and_keeps_the_rest(
        places: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    root = places["root"]
    write(root / "ours" / "acknowledgement.txt", OVERRIDE)
    config = write(root / "config.toml", '[intake]\ntemplate_dir = "ours"\n')
    assert run(capsys, "--config", str(config), "contacts", "import", str(DATA / "contacts.csv"))[0] == 0
    code, _, err = run(capsys, "--config", str(config), "ingest", str(DATA / "seed_case_example.eml"))
    assert code == 0, err
    missing = write(root / "missing.eml", compose(ZACK, "Help", "Case Type: Data Restore\n").decode())
    code, _, err = run(capsys, "--config", str(config), "ingest", str(missing))
    assert code == 0, err

    replies = {m["Subject"]: m for m in delivered(root / "var" / "outgoing")}
    acknowledgement = replies["[Case #1] Teachers unable to post grades"]
    text = acknowledgement.get_body(preferencelist=("plain",)).get_content()
    assert "Our own words: case #1 is with Application Support." in text
    assert text.startswith("Hello")            # the built-in _base.txt it extends
    assert "What we understood" not in text     # the built-in acknowledgement.txt is not used
    html = acknowledgement.get_body(preferencelist=("html",)).get_content()
    assert "What we understood" in html and "Our own words" not in html  # still the built-in

    others = [m for subject, m in replies.items() if not subject.startswith("[Case #1]")]
    assert len(others) == 1  # the request for the missing information, entirely built-in
    other = others[0].get_body(preferencelist=("plain",)).get_content()
    assert "Our own words" not in other and "Written Permission" in other


def test_a_template_that_does_not_compile_is_named_by_the_check(tmp_path: Path) -> None:
    from intake.mailout.templates import template_problem
    assert template_problem(None) is None  # the built-ins
    ours = tmp_path / "ours"
    write(ours / "refusal.txt", "{% if %}\n")
    problem = template_problem(ours)
    assert problem is not None and "TemplateSyntaxError" in problem and "refusal.txt" in problem


def test_the_example_server_configuration_is_valid_and_keeps_its_data_in_var_lib_intake(tmp_path: Path) -> None:
    example = tomllib.loads((REPO / "deploy" / "config.toml.example").read_text(encoding="utf-8"))
    assert example["intake"]["data_dir"] == "/var/lib/intake"
    example["intake"]["data_dir"] = str(tmp_path / "lib")  # not the real /var/lib
    del example["conversations"]["secret_file"]            # /etc/intake/secret is the server's
    config = config_from_mapping(example, base=tmp_path, path=None)
    assert config.outgoing_maildir == tmp_path / "lib" / "outgoing"
    assert config.database_url.startswith("postgresql") and config.template_dir is None


def test_the_maildir_sink_makes_its_missing_parents(tmp_path: Path) -> None:
    """On PostgreSQL with a secret_file nothing else makes data_dir: the first reply must not wait for a retry."""
    from intake.mailout.delivery import MaildirSink
    maildir = tmp_path / "data" / "not" / "made" / "outgoing"
    MaildirSink(maildir).send("support@intake.example", ["zack@bayside.example"], compose(ZACK, "Hello", "Hi"),
                               "hello.1@intake.example")
    assert [m["Subject"] for m in delivered(maildir)] == ["Hello"]
