"""Importing the contact registry from CSV, on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from intake.store.contacts_csv import ContactsFileError, ImportReport, RowError, import_contacts
from intake.store.database import Store
from intake.store.models import Account, Contact

HEADER = ("account,email,first_name,last_name,title,primary_phone,secondary_phone,"
          "contact_type,areas,schema_bootcamp,active")


def write_csv(tmp_path: Path, text: str, *, encoding: str = "utf-8", name: str = "contacts.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def run_import(store: Store, path: Path) -> ImportReport:
    with store.session() as session, session.begin():
        return import_contacts(session, path)


def contact(store: Store, email: str) -> Contact:
    with store.session() as session:
        found = session.scalars(select(Contact).where(Contact.email == email)).one()
        assert found.accounts is not None  # loads the memberships before the session closes
        return found


def count(store: Store, model: type) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_every_column_is_stored(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER + "\n"
                     "Springfield USD,Edna.Krabappel@Springfield.example,Edna,Krabappel,Teacher,"
                     "555-0100,555-0101,Authorized,SIS; food service,Sep 7 2021,no\n")

    report = run_import(store, path)

    assert report == ImportReport(created=1, updated=0, accounts_created=1, errors=[])
    edna = contact(store, "edna.krabappel@springfield.example")
    assert (edna.first_name, edna.last_name, edna.title) == ("Edna", "Krabappel", "Teacher")
    assert (edna.primary_phone, edna.secondary_phone) == ("555-0100", "555-0101")
    assert edna.contact_type == "Authorized"
    assert edna.areas == ["SIS", "Food Service"]
    assert edna.schema_bootcamp == dt.date(2021, 9, 7)
    assert edna.active is False
    assert [a.name for a in edna.accounts] == ["Springfield USD"]


def test_columns_in_any_order_with_extra_columns(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path,
                     " Contact_Type ,Notes,EMAIL,Account,Last_Name,schema_bootcamp\n"
                     "read-only,likes chalk,willie@springfield.example,  Springfield   USD ,MacDougal,09/07/2021\n"
                     "readonly,,otto@springfield.example,Springfield USD,Mann,2021-09-07\n")

    report = run_import(store, path)

    assert (report.created, report.accounts_created, report.errors) == (2, 1, [])
    willie = contact(store, "willie@springfield.example")
    assert willie.contact_type == "Read Only"
    assert willie.last_name == "MacDougal"
    assert willie.schema_bootcamp == dt.date(2021, 9, 7)
    assert willie.active is True
    assert willie.areas == []
    assert [a.name for a in willie.accounts] == ["Springfield USD"]
    assert contact(store, "otto@springfield.example").schema_bootcamp == dt.date(2021, 9, 7)


def test_a_missing_required_column_rejects_the_file(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "Account,E-mail address,First Name\nSpringfield USD,a@b.example,A\n")

    with store.session() as session:
        with pytest.raises(ContactsFileError) as raised:
            import_contacts(session, path)

    message = str(raised.value)
    assert "email" in message and "contact_type" in message
    assert "'E-mail address'" in message and "'First Name'" in message
    assert count(store, Contact) == 0


def test_bad_rows_are_reported_by_line_and_good_rows_kept(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path,
                     "account,email,contact_type,areas,schema_bootcamp,active\n"  # line 1
                     "Springfield USD,good1@springfield.example,Technical,SIS,,\n"  # 2
                     "\n"  # 3
                     "Springfield USD,boss@springfield.example,Boss,SIS,,\n"  # 4
                     "Springfield USD,not an address,Technical,,,\n"  # 5
                     '"Springfield USD","multi@springfield.example","Technical","SIS;\n'  # 6: a quoted cell
                     'Lunch",,\n'  # 7: ... spanning two lines
                     "Springfield USD,date@springfield.example,Technical,,Sep 2021,\n"  # 8
                     "Springfield USD,active@springfield.example,Technical,,,maybe\n"  # 9
                     ",noaccount@springfield.example,,,,\n"  # 10
                     "Springfield USD,good2@springfield.example,Authorized,,,\n")  # 11

    report = run_import(store, path)

    assert [(e.line, e.message.split()[0]) for e in report.errors] == [
        (4, "contact_type"), (5, "email"), (6, "area"), (8, "schema_bootcamp"), (9, "active"), (10, "account")]
    assert str(report.errors[0]) == "line 4: contact_type 'Boss' is not one of Authorized, Technical, Read Only"
    assert report.errors[1] == RowError(5, "email 'not an address' is not one email address like name@district.org")
    assert "'Lunch' is not one of SIS, Food Service" in report.errors[2].message
    # Every problem of a row is reported at once.
    assert "account is empty" in report.errors[5].message and "contact_type is empty" in report.errors[5].message
    assert report.created == 2
    with store.session() as session:
        assert session.scalars(select(Contact.email).order_by(Contact.email)).all() == [
            "good1@springfield.example", "good2@springfield.example"]


def test_one_contact_under_two_accounts(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path,
                     "account,email,contact_type,title\n"
                     "Springfield USD,skinner@springfield.example,Authorized,Principal\n"
                     "Shelbyville USD,SKINNER@springfield.example,Authorized,Principal\n")

    report = run_import(store, path)

    assert (report.created, report.updated, report.accounts_created) == (1, 0, 2)
    skinner = contact(store, "skinner@springfield.example")
    assert [a.name for a in skinner.accounts] == ["Shelbyville USD", "Springfield USD"]
    assert count(store, Contact) == 1


def test_reimport_updates_rather_than_duplicates(store: Store, tmp_path: Path) -> None:
    first = write_csv(tmp_path, "account,email,contact_type,title,primary_phone\n"
                      "Springfield USD,skinner@springfield.example,Authorized,Principal,555-0100\n"
                      "Springfield USD,chalmers@springfield.example,Authorized,Superintendent,555-0200\n",
                      name="first.csv")
    run_import(store, first)
    # The second file has no primary_phone column: phones stay as they were.
    second = write_csv(tmp_path, "account,email,contact_type,title\n"
                       "Shelbyville USD,skinner@springfield.example,Technical,Former Principal\n"
                       "Springfield USD,chalmers@springfield.example,Authorized,Superintendent\n",
                       name="second.csv")

    report = run_import(store, second)

    assert (report.created, report.updated, report.unchanged, report.accounts_created) == (0, 1, 1, 1)
    assert count(store, Contact) == 2
    assert count(store, Account) == 2
    skinner = contact(store, "skinner@springfield.example")
    assert (skinner.contact_type, skinner.title, skinner.primary_phone) == ("Technical", "Former Principal", "555-0100")
    # Memberships are added, never removed by an import.
    assert [a.name for a in skinner.accounts] == ["Shelbyville USD", "Springfield USD"]


def test_excel_utf8_with_bom_and_quoting(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path,
                     "\ufeffAccount,Email,Contact_Type,Last_Name,Title\r\n"
                     '"Springfield USD","nahasapeemapetilon@springfield.example","Technical","Nahasapeemapetilon",'
                     '"Owner, ""Kwik-E-Mart"" — Café"\r\n', encoding="utf-8")

    report = run_import(store, path)

    assert report.errors == [] and report.created == 1
    apu = contact(store, "nahasapeemapetilon@springfield.example")
    assert apu.title == 'Owner, "Kwik-E-Mart" — Café'


def test_windows_1252_file(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "account,email,contact_type,first_name,last_name\r\n"
                     "Springfield USD,zoe@springfield.example,Technical,Zoë,Ñúñez\r\n", encoding="cp1252")

    report = run_import(store, path)

    assert report.errors == [] and report.created == 1
    zoe = contact(store, "zoe@springfield.example")
    assert (zoe.first_name, zoe.last_name) == ("Zoë", "Ñúñez")


def test_broken_quoting_rejects_the_file(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "account,email,contact_type\n"
                     "Springfield USD,a@springfield.example,Technical\n"
                     '"Springfield USD,b@springfield.example,Technical\n'
                     "Springfield USD,c@springfield.example,Technical\n")

    with store.session() as session:
        with pytest.raises(ContactsFileError, match="quoting"):
            import_contacts(session, path)
