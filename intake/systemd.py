"""systemd's notify protocol (sd_notify): READY=1 once serving, WATCHDOG=1 while alive, STOPPING=1 at the end.

With `Type=notify` and `WatchdogSec=` in the unit (deploy/intake.service),
systemd knows when intake is ready and restarts it when it stops answering.
Outside systemd (no $NOTIFY_SOCKET) every call does nothing. The protocol is
one datagram on a Unix socket, so no library is needed.
"""
from __future__ import annotations

import os
import socket

__all__ = ["notify", "watchdog_seconds"]


def notify(state: str) -> bool:
    """Send `state` (e.g. "READY=1") to systemd; False when not run by systemd or the socket is gone."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)  # never stall the event loop on a reader that is behind
            sock.connect(address)
            sock.send(state.encode())
    except OSError:  # gone, or its queue is full (BlockingIOError): the next beat tries again
        return False
    return True


def watchdog_seconds() -> float | None:
    """How often systemd wants WATCHDOG=1 (half its WatchdogSec), or None when it does not watch."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(int(usec) / 2_000_000, 0.5)
    except ValueError:
        return None
