"""Secrets named by the configuration: read from an environment variable or a file, never from the file itself.

Read afresh at each use, so a rotated password or token needs no restart.
"""
from __future__ import annotations

import os
from pathlib import Path


class SecretUnavailable(Exception):
    """The secret cannot be read; the message says which setting and why."""


def read_secret(env: str | None, file: Path | None, *, env_setting: str, file_setting: str) -> str:
    """The secret from the environment variable `env`, else from `file`."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise SecretUnavailable(f"environment variable {env} ({env_setting}) is not set")
        return value
    if file:
        return read_secret_file(file, file_setting)
    raise SecretUnavailable(f"neither {env_setting} nor {file_setting} is configured")


def read_secret_file(path: Path, setting: str) -> str:
    try:
        secret = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretUnavailable(f"cannot read {setting} {path}: {exc.strerror or exc}") from exc
    if not secret:
        raise SecretUnavailable(f"{setting} {path} is empty")
    return secret
