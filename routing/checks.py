"""A case's own checks: small pure functions of its typed fields, each naming what is wrong.

Two kinds. The generic checks (`missing_required`, `dates_in_future`) run on
every case type and read the type's row of the table. The rules particular to
one case type (the 30 days data is kept for a restore, Schema Bootcamp before
SQL Server access) are made by the factories below and stored in that type's
row (`CaseTypeSpec.checks`), so nothing branches on a case type's name.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from parsers.fields import Field, FieldKind
from routing.problems import Problem

if TYPE_CHECKING:
    from routing.contacts import ContactView
    from routing.schema import CaseTypeSpec

__all__ = ["CaseCheck", "CaseNote", "CheckInput", "backed_up_nightly", "dates_in_future", "loss_within_retention",
           "missing_required", "needs_schema_bootcamp"]


@dataclass(frozen=True)
class CheckInput:
    """What a check may look at: the case type, its typed fields, the day, and whom the case is for."""

    spec: CaseTypeSpec
    values: Mapping[str, Any]  # label → typed value
    written: Mapping[str, str]  # label → text as written
    today: dt.date
    contact: ContactView | None  # None while the contact could not be resolved


CaseCheck = Callable[[CheckInput], list[Problem]]
# What the contact should know about a case that is made all the same, one sentence each.
CaseNote = Callable[[CheckInput], list[str]]


def missing_required(case: CheckInput) -> list[Problem]:
    spec = case.spec
    required = set(spec.required)
    for condition in spec.required_when:
        if case.values.get(condition.field.label) == condition.value:
            required.update(condition.fields)
    return [Problem(f"{f.label} is required for {spec.case_type.value} cases{_hint(f)}.", f.label)
            for f in spec.all_fields if f in required and _empty(case, f.label)]


def _empty(case: CheckInput, label: str) -> bool:
    return case.values.get(label) in (None, "", []) and not case.written.get(label, "").strip()


def _hint(field: Field) -> str:
    return f" ({field.hint})" if field.hint else ""


def dates_in_future(case: CheckInput) -> list[Problem]:
    return [Problem(f"{f.label} must be a date after today ({case.today:%m/%d/%Y}); "
                    f"'{case.written[f.label]}' is not.", f.label)
            for f in case.spec.all_fields
            if f.kind is FieldKind.DATE and f.future_only
            and isinstance(case.values.get(f.label), dt.date) and case.values[f.label] <= case.today]


def loss_within_retention(date_of_loss: Field, days: int) -> CaseCheck:
    """Data is backed up nightly and kept for `days` days: a loss must fall inside that window."""

    def check(case: CheckInput) -> list[Problem]:
        lost = case.values.get(date_of_loss.label)
        if not isinstance(lost, dt.date):
            return []
        if lost > case.today:
            return [Problem(f"{date_of_loss.label} ({lost:%m/%d/%Y}) is in the future.", date_of_loss.label)]
        age = (case.today - lost).days
        if age <= days:
            return []
        oldest = case.today - dt.timedelta(days=days)
        return [Problem(f"Data is retained for {days} days, so data lost on {lost:%m/%d/%Y} ({age} days ago) "
                        f"can no longer be restored; the oldest restorable date is {oldest:%m/%d/%Y}.",
                        date_of_loss.label, refuse=True)]
    return check


def needs_schema_bootcamp(request_type: Field, value: str) -> CaseCheck:
    """Schema Bootcamp training is required before `request_type` may be `value` (SQL Server access)."""

    def check(case: CheckInput) -> list[Problem]:
        contact = case.contact
        if case.values.get(request_type.label) != value or contact is None or contact.schema_bootcamp is not None:
            return []
        others = " and ".join(choice for choice in request_type.choices if choice != value)
        return [Problem(f"{value} access requires Infinite Campus Schema Bootcamp training, and our records show "
                        f"{contact.full_name} has not completed it. Once the training is complete, send the "
                        f"request again; {others} access do not need it.", request_type.label, refuse=True)]
    return check


def backed_up_nightly(date_of_loss: Field) -> CaseNote:
    """"Data is backed up nightly": data lost the day it was entered may be in no backup yet."""

    def note(case: CheckInput) -> list[str]:
        if case.values.get(date_of_loss.label) != case.today:
            return []
        return [f"Data is backed up nightly, so data entered and lost today ({case.today:%m/%d/%Y}) may not be "
                f"in any backup yet, and we may not be able to restore it. We have made the case all the same."]
    return note
