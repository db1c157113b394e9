"""Files as mail sources for `intake ingest`: .eml files, Maildir folders, mbox files.

Each path becomes a list of `Item`s: a label to print and a way to read the
raw bytes, or the reason the path cannot be read at all.
"""
from __future__ import annotations

import mailbox
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

MBOX_MAGIC = b"From "


@dataclass(frozen=True)
class Item:
    label: str
    read: Callable[[], bytes] | None
    error: str | None = None


def items_from(paths: Iterable[str | Path]) -> list[Item]:
    items: list[Item] = []
    for path in map(Path, paths):
        items.extend(_items_of(path))
    return items


def _items_of(path: Path) -> list[Item]:
    if not path.exists():
        return [Item(str(path), None, "no such file or folder")]
    if path.is_dir():
        if (path / "cur").is_dir() or (path / "new").is_dir():
            return _maildir(path)
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        return [item for f in files for item in _items_of(f)]
    try:
        with path.open("rb") as handle:
            start = handle.read(len(MBOX_MAGIC))
    except OSError as exc:
        return [Item(str(path), None, f"cannot read: {exc.strerror or exc}")]
    if start == MBOX_MAGIC:
        return _mbox(path)
    return [Item(str(path), path.read_bytes)]


def _maildir(path: Path) -> list[Item]:
    box = mailbox.Maildir(str(path), factory=None, create=False)
    return [Item(f"{path}:{key}", partial(box.get_bytes, key)) for key in sorted(box.keys())]


def _mbox(path: Path) -> list[Item]:
    box = mailbox.mbox(str(path), factory=None, create=False)
    return [Item(f"{path}:{number}", partial(box.get_bytes, key)) for number, key in enumerate(box.keys(), start=1)]
