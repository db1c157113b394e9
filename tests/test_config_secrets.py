"""The thread-token secret is read like every other secret the configuration names."""
from __future__ import annotations

from pathlib import Path

import pytest

from intake.config import ConfigError, config_from_mapping


def load(tmp_path: Path, conversations: dict[str, str]) -> str:
    return config_from_mapping({"conversations": conversations}, base=tmp_path, path=None).conversations.secret


def test_secret_from_a_file_beside_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("  s3cret-from-file \n")
    assert load(tmp_path, {"secret_file": "secret"}) == "s3cret-from-file"


def test_secret_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTAKE_TEST_SECRET", "s3cret-from-env")
    assert load(tmp_path, {"secret_env": "INTAKE_TEST_SECRET"}) == "s3cret-from-env"


@pytest.mark.parametrize(("setting", "problem"), [
    ({"secret_env": "INTAKE_TEST_UNSET"}, "INTAKE_TEST_UNSET (secret_env) is not set"),
    ({"secret_file": "missing"}, "cannot read secret_file"),
    ({"secret_file": "empty"}, "is empty"),
])
def test_an_unusable_secret_is_a_configuration_error_that_says_which(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: dict[str, str], problem: str) -> None:
    monkeypatch.delenv("INTAKE_TEST_UNSET", raising=False)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="conversations") as raised:
        load(tmp_path, setting)
    assert problem in str(raised.value)
