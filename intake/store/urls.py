"""Database URLs: the one reader of what an SQLite URL names."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

__all__ = ["sqlite_file", "sqlite_url"]


def sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names; None for another engine or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"
