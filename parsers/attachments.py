"""Attached files as people really send them: names made safe to show and store.

Part of the parse stage (store raw → **parse** → decide → act). A name from
mail is hostile before and after it is decoded; what leaves here is a bare
file name, never a path. Nothing here touches a database, the network or the
file system.
"""
from __future__ import annotations

import mimetypes
import unicodedata

__all__ = ["MAX_FILENAME_LENGTH", "sanitise_filename"]

MAX_FILENAME_LENGTH = 200


def sanitise_filename(name: str, number: int, content_type: str) -> str:
    """A bare file name: no directories, control characters or leading dots; never empty."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip().lstrip(".").strip()
    if not name:
        name = f"attachment-{number}{mimetypes.guess_extension(content_type) or ''}"
    return _truncate(name)


def _truncate(name: str) -> str:
    if len(name) <= MAX_FILENAME_LENGTH:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and 0 < len(extension) <= 10 and stem:
        return stem[: MAX_FILENAME_LENGTH - len(extension) - 1] + "." + extension
    return name[:MAX_FILENAME_LENGTH]
