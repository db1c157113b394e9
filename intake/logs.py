"""One logging helper and one line format for every part of the daemon."""
from __future__ import annotations

import logging
import sys
from typing import Any


def logfmt(**fields: Any) -> str:
    """`key=value` pairs; values with spaces, quotes or `=` are quoted."""
    parts = []
    for key, value in fields.items():
        text = "" if value is None else str(value)
        if not text or any(ch in text for ch in ' "=\\') or not text.isprintable():
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        parts.append(f"{key}={text}")
    return " ".join(parts)


def configure_logging(level: int = logging.INFO) -> None:
    """Structured (logfmt) lines on stderr, where systemd's journal picks them up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command chatter
