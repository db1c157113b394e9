"""Importing support contacts from a CSV file: the contact registry's bulk edge.

This sits beside the mail flow, not in it: the worker decides who may file a
case from the Contact and Account rows, and this module fills those rows from
the spreadsheet the support desk keeps. It reads one file and adds or updates
rows in the session it is given; the caller commits, so a caller can show the
report and still choose to roll back.

The file is what Excel and people make of a spreadsheet: a header row whose
columns come in any order and any case, extra columns, a UTF-8 byte-order mark
or Windows-1252 text, quoted cells spanning lines, blank lines. A bad row is
reported with its physical line number and a reason a person can act on; the
good rows are imported regardless. A problem with the file as a whole (a
required column missing, broken quoting, undecodable bytes) raises
`ContactsFileError` and imports nothing.

Columns (names matched case-insensitively; spaces or hyphens may stand for
underscores): ``account``, ``email`` and ``contact_type`` are required;
``first_name``, ``last_name``, ``title``, ``primary_phone``,
``secondary_phone``, ``areas`` (separated by semicolons), ``schema_bootcamp``
(a date) and ``active`` (yes/no, default yes) are optional. A re-import matches
contacts by email and updates only the columns the file has; it adds account
memberships and never removes one.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from intake.store.models import Account, Contact
from parsers.values import read_address, read_date
from routing.schema import AREAS_OF_RESPONSIBILITY, ContactType

REQUIRED_COLUMNS = ("account", "email", "contact_type")
OPTIONAL_COLUMNS = ("first_name", "last_name", "title", "primary_phone", "secondary_phone", "areas",
                    "schema_bootcamp", "active")


class ContactsFileError(ValueError):
    """The file as a whole cannot be imported; the message says why."""


@dataclass(frozen=True)
class RowError:
    """A row that was not imported. ``str()`` gives ``line 4: <message>``."""

    line: int  # physical line in the file where the row starts; the header is line 1
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ImportReport:
    created: int = 0  # contacts new to the registry
    updated: int = 0  # existing contacts with a changed field or a new account membership
    accounts_created: int = 0
    errors: list[RowError] = field(default_factory=list)
    unchanged: int = 0  # existing contacts listed in the file exactly as they already were


@dataclass(frozen=True)
class ContactRow:
    """One good row: the contact's account, email, and the Contact attributes the row sets."""

    line: int
    account: str
    email: str
    attributes: dict[str, Any]


def import_contacts(session: Session, path: Path) -> ImportReport:
    """Add or update the contacts listed in the CSV file at ``path``; the caller commits."""
    importer = _Importer(session)
    for line, cells in _records(_read_text(path)):
        parsed = parse_row(line, cells)
        if isinstance(parsed, RowError):
            importer.report.errors.append(parsed)
        else:
            importer.apply(parsed)
    return importer.finish()


# Reading the file ---------------------------------------------------------

def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ContactsFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")  # Excel's "Unicode Text" export
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ContactsFileError(f"{path} is neither UTF-8 nor Windows-1252 text; save it from Excel as 'CSV UTF-8'")


def _records(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Each non-blank row after the header, with the line it starts on, keyed by known column name."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    columns: dict[str, int] | None = None
    end = 0  # the last physical line the reader has consumed
    try:
        for cells in reader:
            start, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if columns is None:
                columns = header_columns(cells)
                continue
            yield start, {name: cells[i].strip() if i < len(cells) else "" for name, i in columns.items()}
    except csv.Error as exc:
        raise ContactsFileError(f"line {end + 1}: the file's CSV quoting is broken ({exc})") from exc
    if columns is None:
        raise ContactsFileError("the file is empty: it has no header row")


def header_columns(header: list[str]) -> dict[str, int]:
    """Map each known column name to its index; raise when a required one is missing."""
    columns: dict[str, int] = {}
    for index, written in enumerate(header):
        name = _column_name(written)
        if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
            continue
        if name in columns:
            raise ContactsFileError(f"the header names column {name!r} twice")
        columns[name] = index
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        found = ", ".join(repr(cell.strip()) for cell in header) or "none"
        raise ContactsFileError(f"the header is missing required column(s) {', '.join(missing)}; "
                                f"columns found: {found}")
    return columns


def _column_name(written: str) -> str:
    return re.sub(r"[\s_-]+", "_", written.strip().lower())


# One row -------------------------------------------------------------------

class _Invalid(ValueError):
    """A cell's value cannot be used; the message is the reason shown to a person."""


def parse_row(line: int, cells: dict[str, str]) -> ContactRow | RowError:
    """Convert one row's cells, collecting every problem in it."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    for name, text in cells.items():
        try:
            values[name] = _CONVERTERS[name](text)
        except _Invalid as exc:
            problems.append(str(exc))
    if problems:
        return RowError(line, "; ".join(problems))
    account, email = values.pop("account"), values["email"]
    return ContactRow(line, account, email, values)


def _account(text: str) -> str:
    name = " ".join(text.split())
    if not name:
        raise _Invalid("account is empty")
    return _fits("account", name, _max_length(Account.__table__.c.name))


def _email(text: str) -> str:
    if not text:
        raise _Invalid("email is empty")
    address = read_address(text)
    if address is None:
        raise _Invalid(f"email {text!r} is not one email address like name@district.org")
    return _fits("email", address, _max_length(Contact.__table__.c.email))


_CONTACT_TYPES = {re.sub(r"[\s_-]", "", t.value.lower()): t for t in ContactType}
_CONTACT_TYPE_NAMES = ", ".join(t.value for t in ContactType)


def _contact_type(text: str) -> str:
    if not text:
        raise _Invalid(f"contact_type is empty; it must be one of {_CONTACT_TYPE_NAMES}")
    found = _CONTACT_TYPES.get(re.sub(r"[\s_-]", "", text.lower()))
    if found is None:
        raise _Invalid(f"contact_type {text!r} is not one of {_CONTACT_TYPE_NAMES}")
    return found.value


_AREAS = {area.lower(): area for area in AREAS_OF_RESPONSIBILITY}


def _areas(text: str) -> list[str]:
    areas: list[str] = []
    for written in (part.strip() for part in text.split(";")):
        if not written:
            continue
        area = _AREAS.get(" ".join(written.split()).lower())
        if area is None:
            raise _Invalid(f"area {written!r} is not one of {', '.join(AREAS_OF_RESPONSIBILITY)}")
        if area not in areas:
            areas.append(area)
    return areas


def _schema_bootcamp(text: str) -> dt.date | None:
    if not text:
        return None
    date, _ = read_date(text)
    if date is None:
        raise _Invalid(f"schema_bootcamp {text!r} is not a date like 2021-09-07")
    return date


_ACTIVE = {"yes": True, "y": True, "true": True, "1": True, "no": False, "n": False, "false": False, "0": False}


def _active(text: str) -> bool:
    if not text:
        return True
    try:
        return _ACTIVE[text.lower()]
    except KeyError:
        raise _Invalid(f"active {text!r} is not yes or no") from None


def _text(column: str) -> Callable[[str], str]:
    length = _max_length(Contact.__table__.c[column])

    def convert(text: str) -> str:
        return _fits(column, text, length)
    return convert


def _max_length(column: Any) -> int | None:
    return getattr(column.type, "length", None)


def _fits(column: str, value: str, length: int | None) -> str:
    # PostgreSQL refuses an over-long value (and the whole transaction with it); SQLite would keep it.
    if length is not None and len(value) > length:
        raise _Invalid(f"{column} is longer than {length} characters")
    return value


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "account": _account,
    "email": _email,
    "contact_type": _contact_type,
    "first_name": _text("first_name"),
    "last_name": _text("last_name"),
    "title": _text("title"),
    "primary_phone": _text("primary_phone"),
    "secondary_phone": _text("secondary_phone"),
    "areas": _areas,
    "schema_bootcamp": _schema_bootcamp,
    "active": _active,
}


# Into the session ------------------------------------------------------------

class _Importer:
    """Applies good rows to one session, remembering what this import already touched."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.report = ImportReport()
        self._accounts: dict[str, Account] = {}
        self._contacts: dict[str, Contact] = {}
        self._created: set[str] = set()
        self._changed: dict[str, bool] = {}  # existing contacts by email: did any row change them?

    def apply(self, row: ContactRow) -> None:
        account = self._account(row.account)
        contact = self._contact(row.email)
        if contact is None:
            contact = Contact(**row.attributes)
            self.session.add(contact)
            self._contacts[row.email] = contact
            self._created.add(row.email)
        changed = _update(contact, row.attributes)
        if account not in contact.accounts:
            contact.accounts.append(account)
            changed = True
        if row.email not in self._created:
            self._changed[row.email] = self._changed.get(row.email, False) or changed

    def finish(self) -> ImportReport:
        self.report.created = len(self._created)
        self.report.updated = sum(self._changed.values())
        self.report.unchanged = len(self._changed) - self.report.updated
        return self.report

    def _account(self, name: str) -> Account:
        account = self._accounts.get(name)
        if account is None:
            account = self.session.scalars(select(Account).where(Account.name == name)).first()
        if account is None:
            account = Account(name=name)
            self.session.add(account)
            self.report.accounts_created += 1
        self._accounts[name] = account
        return account

    def _contact(self, email: str) -> Contact | None:
        contact = self._contacts.get(email)
        if contact is None:
            contact = self.session.scalars(select(Contact).where(func.lower(Contact.email) == email)).first()
        if contact is not None:
            self._contacts[email] = contact
        return contact


def _update(contact: Contact, attributes: dict[str, Any]) -> bool:
    changed = False
    for name, value in attributes.items():
        if getattr(contact, name) != value:
            setattr(contact, name, value)
            changed = True
    return changed
