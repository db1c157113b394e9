"""What a form field is, as the parse stage reads it: its label, kind, spellings and choices.

The ground both stages stand on: `parsers` types the text written under a
label by its `Field`, and `routing.schema` builds the case-type table out of
`Field`s. Defined here, below both, so that parsing needs nothing from routing
and is handed the table as data (`FormSchema`).
"""
from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Field", "FieldKind", "FormSchema"]


class FieldKind(enum.Enum):
    TEXT = "text"
    MULTILINE = "multi-line text"
    DATE = "date"
    ENUM = "enum"
    MULTI_CHOICE = "multi-choice"
    EMAIL = "email"
    PHONE = "phone"
    CONSENT = "consent"  # a written statement that must affirm (Written Permission)

    @property
    def single_line(self) -> bool:
        """A date, a choice, an address or a phone number is one line: what follows it is not part of it."""
        return self in _SINGLE_LINE_KINDS


_SINGLE_LINE_KINDS = frozenset({FieldKind.DATE, FieldKind.ENUM, FieldKind.EMAIL, FieldKind.PHONE})


# eq=False: a field is one object of the table, compared and hashed by identity,
# so typed references (`spec.required`, `RequiredWhen.fields`) are sets of fields.
@dataclass(frozen=True, eq=False)
class Field:
    """One field of a case form.

    ``label`` is written exactly as the seed writes it; it is the key of the
    field everywhere (stored case fields, JSON output, templates). ``aliases``
    are other labels a person might type. ``choices`` lists the allowed values
    of an enum or multi-choice field; ``choice_aliases`` maps other spellings to
    one of them. ``unlisted`` is the choice a value that names none of them is
    filed under (the text as written is kept beside it), for the lists that are
    open by nature (Module: "If the module is not listed, please select Not
    Applicable"); without it, an unknown value is an error for the sender to
    fix. A text field's ``choices`` are suggestions: a close spelling is read
    as one of them, anything else is taken as written. ``hint`` is shown in the blank template. ``contact_attribute``
    names the attribute of a support contact the field sets when a Modify
    Support Contacts case is approved.
    """

    label: str
    kind: FieldKind
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    choice_aliases: Mapping[str, str] = field(default_factory=dict)
    unlisted: str | None = None
    hint: str = ""
    future_only: bool = False  # a date that must be after the day the mail arrives
    contact_attribute: str | None = None


@dataclass(frozen=True)
class FormSchema:
    """The case-type table as the parse stage needs it, handed in by routing.

    ``labels`` maps every spelling of every label to its canonical labels;
    ``case_type`` is the field that names the type; ``fields_by_type`` maps a
    case type's name to all its fields in form order; ``not_typed`` are labels
    the parse stage leaves as written, because routing resolves them against
    the contact registry (Account, Contact) or has read them already (Case Type).
    """

    labels: Mapping[str, Sequence[str]]
    case_type: Field
    subject: Field  # filled from the email's subject when the body gives none
    description: Field  # filled from the free text before the template when the body gives none
    fields_by_type: Mapping[str, tuple[Field, ...]]
    not_typed: frozenset[str]
    common: frozenset[str]  # labels every type shares; the rest are the type's own fields
