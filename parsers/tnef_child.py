"""Reads one winmail.dat in a process of its own: `python -I -m parsers.tnef_child` < winmail.dat.

Run by `parsers.attachments.unpack_tnef`, never imported by intake. tnefparse
trusts the counts in the file: a corrupt property count makes it loop for
billions of steps, a corrupt multi-value count fill memory. In a process of its
own, under a memory limit and a timeout set by the caller, such a file costs
a few seconds and is kept whole, and the worker goes on.

Writes each file it finds as a 4-byte name length, a 4-byte data length (big-endian), the
name in UTF-8 and the data; exits non-zero with the error on stderr when the file cannot be read.
"""
from __future__ import annotations

import os
import resource
import struct
import sys

import tnefparse

MEMORY_LIMIT = 512 * 1024 * 1024  # bytes of address space: many times what a 25 MB winmail.dat needs
OUT_OF_MEMORY = 3  # the exit status when tnefparse needed more than MEMORY_LIMIT


def main() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    try:
        tnef = tnefparse.TNEF(sys.stdin.buffer.read())
    except MemoryError:
        os._exit(OUT_OF_MEMORY)  # the traceback still holds what filled memory: exit without allocating
    out = sys.stdout.buffer
    for found in tnef.attachments:
        if isinstance(found.data, bytes):
            name = str(found.long_filename() or found.name or "").encode("utf-8", "replace")
            out.write(struct.pack(">II", len(name), len(found.data)) + name + found.data)


if __name__ == "__main__":
    main()
