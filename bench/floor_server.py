"""The floor: a do-nothing aiosmtpd server (accepts every message, stores nothing).

No Python SMTP server built on aiosmtpd can accept mail faster than this one on
the same machine, so intake's acceptance rate is reported as a ratio to it.
Run as `python bench/floor_server.py PORT [CAPTURE_FILE]`; with CAPTURE_FILE the
first message is written there (to see what the load client sends).
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session


class DoNothing:
    def __init__(self, capture: Path | None) -> None:
        self.capture = capture

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.capture is not None:
            self.capture.write_bytes(envelope.original_content or b"")
            self.capture = None
        return "250 2.0.0 OK"


async def serve(port: int, capture: Path | None) -> None:
    loop = asyncio.get_running_loop()
    handler = DoNothing(capture)
    server = await loop.create_server(lambda: SMTP(handler, hostname="floor.localhost"), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None))
