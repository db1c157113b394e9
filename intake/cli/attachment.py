"""`intake attachment CASE NAME_OR_INDEX [--out PATH] [--force]`: take a file out of a case.

Every byte of an attachment's name came from mail, so the name a file is
written under is the sanitised one (`parsers.attachments.sanitise_filename`: no
directories, no control characters, no leading dots, never empty), in the
working directory or in the folder ``--out`` names; only ``--out FILE``, which
staff typed themselves, names a path. An existing file is never replaced
without ``--force``, and then atomically (a new file renamed over it, so a
symbolic link there is replaced, not followed). The content is checked
against the SHA-256 stored with it before anything is written.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from intake.cli.common import EXIT_OK, CommandError, command, print_json
from intake.cli.text import out
from intake.config import Config
from intake.store.database import open_store
from intake.store.models import Attachment, Case
from parsers.attachments import sanitise_filename


def add_commands(commands: Any) -> None:
    attachment = command(commands, "attachment", _attachment,
                         "write one of a case's attachments to a file, under its sanitised name")
    attachment.add_argument("number", type=int, metavar="CASE")
    attachment.add_argument("which", metavar="NAME_OR_INDEX",
                            help="the attachment's file name, or its number as `intake show` lists it (from 1)")
    attachment.add_argument("--out", metavar="PATH", help="a folder to write into, or the file to write "
                                                          "(default: the working directory)")
    attachment.add_argument("--force", action="store_true", help="replace a file that is there already")
    attachment.add_argument("--json", action="store_true")


def _attachment(args: argparse.Namespace, config: Config) -> int:
    store = open_store(config.database_url)
    with store.session() as session:
        case = session.get(Case, args.number)
        if case is None:
            raise CommandError(f"there is no case #{args.number}")
        index, chosen = choose_attachment(list(case.attachments), args.which, case.number)
        if hashlib.sha256(chosen.content).hexdigest() != chosen.sha256:
            raise CommandError(f"attachment {index} of case #{case.number} does not match its stored SHA-256")
        target = target_path(chosen, index, args.out)
        write_file(target, chosen.content, force=args.force)
    shown = {"case": case.number, "index": index, "filename": chosen.filename, "path": str(target),
             "content_type": chosen.content_type, "size": chosen.size, "sha256": chosen.sha256}
    if args.json:
        print_json(shown)
    else:
        out(f"wrote attachment {index} of case #{case.number} ({chosen.content_type}, {chosen.size} bytes) to "
            f"{target}")
    return EXIT_OK


def choose_attachment(attachments: list[Attachment], which: str, number: int) -> tuple[int, Attachment]:
    """The attachment `which` names, by its number in the case (from 1) or by its file name."""
    if not attachments:
        raise CommandError(f"case #{number} has no attachments")
    if which.isdigit():
        index = int(which)
        if not 1 <= index <= len(attachments):
            raise CommandError(f"case #{number} has {len(attachments)} attachment(s); {which} is not one of them")
        return index, attachments[index - 1]
    for same in (lambda a: a.filename == which, lambda a: a.filename.casefold() == which.casefold()):
        found = [(i, a) for i, a in enumerate(attachments, start=1) if same(a)]
        if len(found) == 1:
            return found[0]
        if found:
            numbers = ", ".join(str(i) for i, _ in found)
            raise CommandError(f"case #{number} has {len(found)} attachments named {which!r} (numbers {numbers}); "
                               f"give the number")
    names = ", ".join(f"{i} {a.filename!r}" for i, a in enumerate(attachments, start=1))
    raise CommandError(f"case #{number} has no attachment named {which!r}; it has: {names}")


def target_path(attachment: Attachment, index: int, out_option: str | None) -> Path:
    """Where to write: the sanitised name in the working directory or in the folder --out names, or --out itself."""
    name = sanitise_filename(attachment.filename, index, attachment.content_type)
    if out_option is None:
        return Path.cwd() / name
    chosen = Path(out_option)
    return chosen / name if chosen.is_dir() else chosen


def write_file(path: Path, content: bytes, *, force: bool) -> None:
    """Write `content` to `path`: a new file only, unless `force`, then replacing what is there atomically."""
    if not path.parent.is_dir():
        raise CommandError(f"{path.parent} is not a folder")
    if not force:
        try:
            with open(path, "xb") as handle:
                handle.write(content)
        except FileExistsError:
            raise CommandError(f"{path} exists already; give --force to replace it") from None
        return
    if path.is_dir():
        raise CommandError(f"{path} is a folder")
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".intake-attachment-")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
