"""A problem with a message, in words for the person who sent it."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Problem"]


@dataclass(frozen=True)
class Problem:
    """Something wrong with a message, in words for the person who sent it.

    `refuse` marks problems the sender cannot fix by editing and resending
    (not authorized, data older than the retention window); the others ask
    for more information.
    """

    message: str
    label: str | None = None
    refuse: bool = False
