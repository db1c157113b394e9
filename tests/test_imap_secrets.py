"""Where the IMAP poller finds its password or OAuth2 token, and how it backs off; no server needed."""
from __future__ import annotations

from pathlib import Path

import pytest

from intake.config import ImapMailbox
from intake.mailin.imap import Backoff, ImapUnavailable, read_oauth2_token, read_password, uses_oauth2


def mailbox(**secret: object) -> ImapMailbox:
    return ImapMailbox(name="support", host="imap.example", username="support@intake.example",
                       **secret)  # type: ignore[arg-type]


def test_the_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTAKE_IMAP_PASSWORD", "s3cret")
    assert read_password(mailbox(password_env="INTAKE_IMAP_PASSWORD")) == "s3cret"


def test_an_unset_password_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTAKE_IMAP_PASSWORD", raising=False)
    with pytest.raises(ImapUnavailable, match="INTAKE_IMAP_PASSWORD .* is not set"):
        read_password(mailbox(password_env="INTAKE_IMAP_PASSWORD"))


def test_the_password_file_is_read_without_its_newline(tmp_path: Path) -> None:
    (tmp_path / "password").write_text("s3cret\n")
    assert read_password(mailbox(password_file=tmp_path / "password")) == "s3cret"


def test_a_missing_password_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ImapUnavailable, match=r"cannot read password_file .*missing: No such file"):
        read_password(mailbox(password_file=tmp_path / "missing"))


def test_the_token_file_is_read_again_at_every_login(tmp_path: Path) -> None:
    token = tmp_path / "token"
    box = mailbox(oauth2_token_file=token)
    token.write_text("ya29.first\n")
    assert read_oauth2_token(box) == "ya29.first"
    token.write_text("ya29.refreshed\n")
    assert read_oauth2_token(box) == "ya29.refreshed"
    assert uses_oauth2(box)


def test_the_token_command_prints_the_token() -> None:
    assert read_oauth2_token(mailbox(oauth2_token_command="printf 'ya29.from-command\\n'")) == "ya29.from-command"


def test_a_failing_token_command_reports_its_status_and_message() -> None:
    box = mailbox(oauth2_token_command="echo 'refresh token revoked' >&2; exit 3")
    with pytest.raises(ImapUnavailable, match="exited with status 3: refresh token revoked"):
        read_oauth2_token(box)


def test_a_token_command_that_prints_nothing_is_an_error() -> None:
    with pytest.raises(ImapUnavailable, match="printed no token"):
        read_oauth2_token(mailbox(oauth2_token_command="true"))


def test_backoff_doubles_up_to_its_cap_and_starts_over_after_a_success() -> None:
    backoff = Backoff(initial=1, maximum=60)
    assert [backoff.next() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    backoff.reset()
    assert backoff.next() == 1
