"""The case-type schema: one declarative table of the seed's case types and fields.

Everything that differs between case types lives here as data: which fields a
type shows ("Displays on Case Types"), which are required, the department a type
routes to, whether it may be billable, and which contact types may file it.
Parsing, validation, templates and replies all read this table; nothing else
in the code branches on a case type's name.
"""
from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from parsers.fields import Field, FieldKind, FormSchema
from routing.checks import CaseCheck, CaseNote, backed_up_nightly, loss_within_retention, needs_schema_bootcamp


class ContactType(enum.StrEnum):
    AUTHORIZED = "Authorized"
    TECHNICAL = "Technical"
    READ_ONLY = "Read Only"


class CaseType(enum.StrEnum):
    APPLICATION_ISSUE = "Application Issue"
    ASK_A_QUESTION = "Ask a Question"
    REPORT_AN_OUTAGE = "Report an Outage"
    REQUEST_TRAINING = "Request Training"
    DATA_RESTORE = "Data Restore"
    SERVER_ISSUE = "Server Issue"
    SERVER_ACCESS = "Server Access"
    MODIFY_SUPPORT_CONTACTS = "Modify Support Contacts"
    REQUEST_CONSULTING = "Request Consulting"
    REQUEST_TECHNICAL_SERVICES = "Request Technical Services"


PRIORITIES = ("Critical", "High", "Medium", "Low")
DEFAULT_PRIORITY = "Medium"

AREAS_OF_RESPONSIBILITY = (
    "SIS",
    "Food Service",
    "Human Resources",
    "Finance",
    "Online Payments",
    "Voice Messenger",
    "State Edition",
)

# "The top most reported modules in alphabetical order". The seed names none, so
# these are ours; a deployment lists its own in config.toml ([case_types] modules).
LISTED_MODULES = (
    "Ad Hoc Reporting",
    "Attendance",
    "Behavior",
    "Campus Learning",
    "Campus Parent",
    "Campus Student",
    "Census",
    "Data Extract Utility",
    "Fees",
    "Finance",
    "Food Service",
    "Grade Book",
    "Grading and Standards",
    "Health",
    "Human Resources",
    "Messenger",
    "Online Payments",
    "Online Registration",
    "Reports",
    "Scheduling",
    "State Reporting",
    "Student Information",
    "System Administration",
    "Transcripts",
)
# The seed's escape hatch: "If the module is not listed, please select Not Applicable."
NOT_APPLICABLE = "Not Applicable"
MODULES = (*LISTED_MODULES, NOT_APPLICABLE)


def _module_hint(modules: Sequence[str]) -> str:
    return f"one of {'; '.join(modules)}; if yours is not listed, {NOT_APPLICABLE} (or write its name: it is kept)"

TECHNICAL_SERVICES_TYPES = (
    "Existing Custom Project",
    "Custom Report, Report Card, or Transcript",
    "Data Import/Export/Modification",
    "Integration with 3rd Party Application",
    "Other Services",
)

# The kinds of training districts ask for most; the field is free text, so these are suggestions
# (a close spelling is read as one of them) and anything else is taken as written.
TRAINING_REQUEST_TYPES = (
    "Campus Learning",
    "Grade Book",
    "Scheduling",
    "Attendance",
    "State Reporting",
    "New User",
)

SERVER_ACCESS_REQUEST_TYPES = ("Server", "SQL Server", "SSRS")
SQL_SERVER_ACCESS = "SQL Server"



class ContactRequest(enum.StrEnum):
    """What an approved Modify Support Contacts case does to the contact registry."""

    ADD = "Add"
    MODIFY = "Modify"
    REPLACE = "Replace"
    REMOVE = "Remove"


CONTACT_REQUEST_TYPES = tuple(r.value for r in ContactRequest)
DATA_RETENTION_DAYS = 30


# Fields every case type shows. Account and Contact are resolved against the
# contact registry rather than typed here; they still appear in templates.
ACCOUNT = Field("Account", FieldKind.TEXT, ("District",), hint="your district, if you are a contact of several")
CONTACT = Field("Contact", FieldKind.TEXT, ("Reported By", "On Behalf Of"),
                hint="name or email of another contact of your district, to submit on their behalf")
CASE_TYPE = Field("Case Type", FieldKind.ENUM, ("Type of Case",),
                  choices=tuple(t.value for t in CaseType),
                  choice_aliases={
                      "Campus Application": CaseType.APPLICATION_ISSUE.value,
                      "Application": CaseType.APPLICATION_ISSUE.value,
                      "Issue": CaseType.APPLICATION_ISSUE.value,
                      "Question": CaseType.ASK_A_QUESTION.value,
                      "How To": CaseType.ASK_A_QUESTION.value,
                      "Outage": CaseType.REPORT_AN_OUTAGE.value,
                      "Training": CaseType.REQUEST_TRAINING.value,
                      "Restore": CaseType.DATA_RESTORE.value,
                      "Modify Contacts": CaseType.MODIFY_SUPPORT_CONTACTS.value,
                      "Support Contacts": CaseType.MODIFY_SUPPORT_CONTACTS.value,
                      "Consulting": CaseType.REQUEST_CONSULTING.value,
                      "Technical Services": CaseType.REQUEST_TECHNICAL_SERVICES.value,
                  })
PRIORITY = Field("Priority", FieldKind.ENUM, ("Severity", "Urgency"), choices=PRIORITIES,
                 hint="Critical (outages only), High, Medium or Low; Medium if left out")
SUBJECT = Field("Subject", FieldKind.TEXT, ("Summary",), hint="brief and specific")
DESCRIPTION = Field("Description", FieldKind.MULTILINE, ("Details", "Issue Description"),
                    hint="who, what, where, when, why and how")

MODULE = Field("Module", FieldKind.ENUM, ("Campus Module", "Product Module"), choices=MODULES,
               choice_aliases={"N/A": NOT_APPLICABLE, "NA": NOT_APPLICABLE, "None": NOT_APPLICABLE,
                               "Gradebook": "Grade Book", "Grades": "Grade Book"},
               unlisted=NOT_APPLICABLE, hint=_module_hint(LISTED_MODULES))
APPLICATION_TYPE = Field("Type", FieldKind.TEXT, ("Application Type",),
                         hint="the application the issue is in, e.g. Campus Application, Campus Learning")
TECHNICAL_SERVICES_TYPE = Field("Type", FieldKind.ENUM, ("Request Kind", "Project Type"),
                                choices=TECHNICAL_SERVICES_TYPES,
                                choice_aliases={"Custom Report": "Custom Report, Report Card, or Transcript",
                                                "Report Card": "Custom Report, Report Card, or Transcript",
                                                "Custom Report Card": "Custom Report, Report Card, or Transcript",
                                                "Custom Transcript": "Custom Report, Report Card, or Transcript",
                                                "Transcript": "Custom Report, Report Card, or Transcript",
                                                "Data Import": "Data Import/Export/Modification",
                                                "Data Export": "Data Import/Export/Modification",
                                                "Integration": "Integration with 3rd Party Application",
                                                "Existing Project": "Existing Custom Project",
                                                "New Project": "Other Services",
                                                "Other": "Other Services"},
                                hint="; ".join(TECHNICAL_SERVICES_TYPES))
STEPS_TO_REPRODUCE = Field("Steps to Reproduce", FieldKind.MULTILINE,
                           ("Steps", "How to Reproduce", "Reproduction Steps"),
                           hint="click-by-click steps")
ENVIRONMENT_CHANGES = Field("Environment Changes", FieldKind.MULTILINE, ("Recent Changes",))
ERROR_MESSAGE = Field("Error Message", FieldKind.MULTILINE, ("Error", "Error Text"))
EXPECTED_RESULTS = Field("Expected Results", FieldKind.MULTILINE,
                         ("Expected Result", "Expected Behavior", "Expected Behaviour"))
WHO_IS_IMPACTED = Field("Who is impacted?", FieldKind.TEXT, ("Who is impacted", "Impacted Users", "Who is affected"))
ISSUE_BEGAN = Field("Issue Began", FieldKind.DATE, ("Issue Start Date", "Date Issue Began"))
LOCATION_WITHIN_PRODUCT = Field("Location within Product", FieldKind.TEXT, ("Product Location", "Where in Campus"))
TRAINING_REQUEST_TYPE = Field("Request Type", FieldKind.TEXT, ("Training Type", "Kind of Request"),
                              choices=TRAINING_REQUEST_TYPES,
                              hint="e.g. " + ", ".join(TRAINING_REQUEST_TYPES) + ", or in your own words")
PREFERRED_TRAINING_DATE = Field("Preferred Training Date", FieldKind.DATE,
                                ("Preferred Training Date 1", "First Choice Training Date", "Training Date",
                                 "First Choice Date"),
                                future_only=True, hint="first choice")
PREFERRED_TRAINING_DATE_2 = Field("Preferred Training Date 2", FieldKind.DATE,
                                  ("Second Choice Training Date", "Second Choice Date"), future_only=True,
                                  hint="second choice")
PREFERRED_TRAINING_DATE_3 = Field("Preferred Training Date 3", FieldKind.DATE,
                                  ("Third Choice Training Date", "Third Choice Date"), future_only=True,
                                  hint="third choice")
APPROXIMATE_DATE_OF_LOSS = Field("Approximate Date of Loss", FieldKind.DATE,
                                 ("Date of Loss", "Date Deleted", "Loss Date"),
                                 hint="data is kept for 30 days")
REASON_FOR_RESTORE = Field("Reason for Restore", FieldKind.MULTILINE, ("Restore Reason",))
WRITTEN_PERMISSION = Field("Written Permission", FieldKind.CONSENT,
                           ("Permission", "Permission to Restore", "Authorization"),
                           hint="state that you give written permission to restore, e.g. "
                                "'Yes, I give permission to restore this data'")
SERVER_ACCESS_REQUEST_TYPE = Field("Request Type", FieldKind.ENUM, ("Access Type", "Kind of Request"),
                                   choices=SERVER_ACCESS_REQUEST_TYPES,
                                   choice_aliases={"SQL": SQL_SERVER_ACCESS, "Database": SQL_SERVER_ACCESS,
                                                   "Server Access": "Server",
                                                   "SQL Server Access": SQL_SERVER_ACCESS, "SSRS Access": "SSRS"},
                                   hint="Server, SQL Server or SSRS (SQL Server needs Schema Bootcamp)")
CONTACT_REQUEST_TYPE = Field("Request Type", FieldKind.ENUM, ("Change", "Kind of Request"),
                             choices=CONTACT_REQUEST_TYPES,
                             choice_aliases={"New": "Add", "Update": "Modify", "Delete": "Remove", "Change": "Modify"},
                             hint="Add, Modify, Replace or Remove")
CONTACT_FIRST_NAME = Field("Contact First Name", FieldKind.TEXT, ("First Name",), contact_attribute="first_name")
CONTACT_LAST_NAME = Field("Contact Last Name", FieldKind.TEXT, ("Last Name",), contact_attribute="last_name")
CONTACT_EMAIL = Field("Contact Email", FieldKind.EMAIL, ("Contact Email Address",))
CONTACT_TITLE = Field("Contact Title", FieldKind.TEXT, ("Job Title",), contact_attribute="title")
CONTACT_PRIMARY_PHONE = Field("Contact Primary Phone", FieldKind.PHONE, ("Primary Phone",),
                              contact_attribute="primary_phone")
CONTACT_SECONDARY_PHONE = Field("Contact Secondary Phone", FieldKind.PHONE, ("Secondary Phone", "Alternate Phone"),
                                contact_attribute="secondary_phone")
CONTACT_TYPE = Field("Contact Type", FieldKind.ENUM, (), choices=tuple(t.value for t in ContactType),
                     choice_aliases={"Read-Only": "Read Only", "ReadOnly": "Read Only", "Tech": "Technical"},
                     hint="Authorized, Technical or Read Only", contact_attribute="contact_type")
AREA_OF_RESPONSIBILITY = Field("Area of Responsibility", FieldKind.MULTI_CHOICE,
                               ("Areas of Responsibility",), choices=AREAS_OF_RESPONSIBILITY,
                               hint="one or more, separated by commas: " + ", ".join(AREAS_OF_RESPONSIBILITY),
                               contact_attribute="areas")
CONTACT_REPLACEMENT_NAME = Field("Contact Replacement Name", FieldKind.TEXT,
                                 ("Replacement Name", "Replacing", "Contact to Remove", "Contact Being Replaced"),
                                 hint="if replacing, the contact to remove")
PREFERRED_CONSULT_DATE = Field("Preferred Consult Date", FieldKind.DATE,
                               ("Preferred Consult Date 1", "Consult Date", "First Choice Consult Date"),
                               future_only=True)
PREFERRED_CONSULT_DATE_2 = Field("Preferred Consult Date 2", FieldKind.DATE, ("Second Choice Consult Date",),
                                 future_only=True)
PREFERRED_CONSULT_DATE_3 = Field("Preferred Consult Date 3", FieldKind.DATE, ("Third Choice Consult Date",),
                                 future_only=True)
DESIRED_COMPLETION_DATE = Field("Desired Completion Date", FieldKind.DATE, ("Completion Date", "Due Date", "Deadline"),
                                future_only=True)

COMMON_FIELDS = (ACCOUNT, CONTACT, CASE_TYPE, PRIORITY, SUBJECT, DESCRIPTION)

ALL_CONTACT_TYPES = frozenset(ContactType)
AUTHORIZED_ONLY = frozenset({ContactType.AUTHORIZED})


@dataclass(frozen=True)
class RequiredWhen:
    """When `field` has `value`, `fields` are required too (Modify Support Contacts: Add needs a Contact Type)."""

    field: Field
    value: str
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class CaseTypeSpec:
    """One row of the case-type table."""

    case_type: CaseType
    description: str
    department: str
    may_be_billable: bool
    fields: tuple[Field, ...]  # the type's own fields, in form order
    required: frozenset[Field]  # common fields included
    filed_by: frozenset[ContactType]
    required_when: tuple[RequiredWhen, ...] = ()
    checks: tuple[CaseCheck, ...] = ()  # the type's own rules, run after the generic ones
    notes: tuple[CaseNote, ...] = ()  # what the acknowledgement tells the contact about a case made all the same
    allows_critical: bool = False  # Priority Critical is for outages only
    changes_contacts: bool = False  # approving the case applies it to the contact registry

    def field(self, label: str) -> Field | None:
        return next((f for f in self.all_fields if f.label == label), None)

    @property
    def all_fields(self) -> tuple[Field, ...]:
        return COMMON_FIELDS + self.fields

    def required_note(self, field: Field) -> str:
        """"required", "required when Request Type is Add or Replace", or ""."""
        if field is CASE_TYPE or field in self.required:
            return "required"
        conditions = [c for c in self.required_when if field in c.fields]
        if not conditions:
            return ""
        return f"required when {conditions[0].field.label} is " + " or ".join(c.value for c in conditions)


def _spec(case_type: CaseType, description: str, department: str, fields: tuple[Field, ...],
          required: tuple[Field, ...] = (), *, billable: bool = False,
          filed_by: frozenset[ContactType] | None = None, required_when: tuple[RequiredWhen, ...] = (),
          checks: tuple[CaseCheck, ...] = (), notes: tuple[CaseNote, ...] = (), allows_critical: bool = False,
          changes_contacts: bool = False) -> CaseTypeSpec:
    if filed_by is None:
        # Technical contacts may not ask for anything that may be billed.
        filed_by = AUTHORIZED_ONLY if billable else frozenset({ContactType.AUTHORIZED, ContactType.TECHNICAL})
    return CaseTypeSpec(case_type, description, department, billable, fields,
                        frozenset((SUBJECT, DESCRIPTION) + required), filed_by, required_when, checks, notes,
                        allows_critical, changes_contacts)


CASE_TYPES: dict[CaseType, CaseTypeSpec] = {s.case_type: s for s in (
    _spec(CaseType.APPLICATION_ISSUE, "Campus is not working as expected or you are experiencing a problem.",
          "Application Support",
          (APPLICATION_TYPE, MODULE, STEPS_TO_REPRODUCE, ENVIRONMENT_CHANGES, ERROR_MESSAGE, EXPECTED_RESULTS,
           WHO_IS_IMPACTED, ISSUE_BEGAN),
          (MODULE, STEPS_TO_REPRODUCE, EXPECTED_RESULTS, WHO_IS_IMPACTED)),
    _spec(CaseType.ASK_A_QUESTION, "Ask a how-to question or for advice.", "Application Support",
          (MODULE, LOCATION_WITHIN_PRODUCT), (MODULE,)),
    _spec(CaseType.REPORT_AN_OUTAGE, "Campus is inaccessible for all (or most) users.", "Hosting Operations",
          (ERROR_MESSAGE,), allows_critical=True),
    _spec(CaseType.REQUEST_TRAINING, "Enter a request to schedule Infinite Campus training.", "Training",
          (TRAINING_REQUEST_TYPE, PREFERRED_TRAINING_DATE, PREFERRED_TRAINING_DATE_2, PREFERRED_TRAINING_DATE_3),
          (TRAINING_REQUEST_TYPE, PREFERRED_TRAINING_DATE)),
    _spec(CaseType.DATA_RESTORE, "Request lost or deleted data be restored. We require your written permission.",
          "Hosting Operations",
          (MODULE, APPROXIMATE_DATE_OF_LOSS, REASON_FOR_RESTORE, WRITTEN_PERMISSION),
          (MODULE, APPROXIMATE_DATE_OF_LOSS, REASON_FOR_RESTORE, WRITTEN_PERMISSION),
          checks=(loss_within_retention(APPROXIMATE_DATE_OF_LOSS, DATA_RETENTION_DAYS),),
          notes=(backed_up_nightly(APPROXIMATE_DATE_OF_LOSS),)),
    _spec(CaseType.SERVER_ISSUE, "Report an issue with your campus server.", "Hosting Operations",
          (MODULE, ERROR_MESSAGE, ISSUE_BEGAN), (MODULE,)),
    _spec(CaseType.SERVER_ACCESS, "Request Server, SQL Server, or SSRS Access.", "Hosting Operations",
          (SERVER_ACCESS_REQUEST_TYPE,), (SERVER_ACCESS_REQUEST_TYPE,), filed_by=AUTHORIZED_ONLY,
          checks=(needs_schema_bootcamp(SERVER_ACCESS_REQUEST_TYPE, SQL_SERVER_ACCESS),)),
    _spec(CaseType.MODIFY_SUPPORT_CONTACTS, "Update or Replace your current Authorized Contacts.", "Client Services",
          (CONTACT_REQUEST_TYPE, CONTACT_FIRST_NAME, CONTACT_LAST_NAME, CONTACT_EMAIL, CONTACT_TITLE,
           CONTACT_PRIMARY_PHONE, CONTACT_SECONDARY_PHONE, CONTACT_TYPE, AREA_OF_RESPONSIBILITY,
           CONTACT_REPLACEMENT_NAME),
          (CONTACT_REQUEST_TYPE, CONTACT_FIRST_NAME, CONTACT_LAST_NAME, CONTACT_EMAIL), filed_by=AUTHORIZED_ONLY,
          required_when=(
              RequiredWhen(CONTACT_REQUEST_TYPE, ContactRequest.ADD.value,
                           (CONTACT_TYPE, AREA_OF_RESPONSIBILITY, CONTACT_PRIMARY_PHONE)),
              RequiredWhen(CONTACT_REQUEST_TYPE, ContactRequest.REPLACE.value,
                           (CONTACT_TYPE, AREA_OF_RESPONSIBILITY, CONTACT_REPLACEMENT_NAME))),
          changes_contacts=True),
    _spec(CaseType.REQUEST_CONSULTING, "Request time with an Infinite Campus Business Consultant.",
          "Business Consulting",
          (PREFERRED_CONSULT_DATE, PREFERRED_CONSULT_DATE_2, PREFERRED_CONSULT_DATE_3), (PREFERRED_CONSULT_DATE,),
          billable=True),
    _spec(CaseType.REQUEST_TECHNICAL_SERVICES,
          "Report an issue with an existing Technical Services project, request a new project, or modify one.",
          "Technical Services",
          (TECHNICAL_SERVICES_TYPE, MODULE, DESIRED_COMPLETION_DATE), (TECHNICAL_SERVICES_TYPE, MODULE), billable=True),
)}


def spec_for(case_type: CaseType) -> CaseTypeSpec:
    """The row of the built-in table (the shipped lists); a deployment's own is `CaseTypeTable.spec_for`."""
    return CASE_TYPES[case_type]


def known_labels(case_types: Mapping[CaseType, CaseTypeSpec] = CASE_TYPES) -> dict[str, list[str]]:
    """Every label and alias any case type knows, mapped to canonical labels.

    A name may be canonical for fields of several types (``Type``,
    ``Request Type``); the template parser only needs to know a line starts a
    field, so it maps each spelling to the canonical label text.
    """
    names: dict[str, list[str]] = {}
    for spec in case_types.values():
        for f in spec.all_fields:
            for name in (f.label, *f.aliases):
                labels = names.setdefault(name, [])
                if f.label not in labels:
                    labels.append(f.label)
    return names


def form_schema(case_types: Mapping[CaseType, CaseTypeSpec] = CASE_TYPES) -> FormSchema:
    """The table as the parse stage reads it (see `parsers.fields.FormSchema`)."""
    return FormSchema(labels=known_labels(case_types), case_type=CASE_TYPE, subject=SUBJECT, description=DESCRIPTION,
                      fields_by_type={t.value: spec.all_fields for t, spec in case_types.items()},
                      not_typed=frozenset((ACCOUNT.label, CONTACT.label, CASE_TYPE.label)),
                      common=frozenset(f.label for f in COMMON_FIELDS))


FORMS = form_schema()


# --- the open lists, as a deployment names them ----------------------------------------


@dataclass(frozen=True)
class OpenLists:
    """The lists the seed leaves open, as config.toml's [case_types] names them; the defaults are ours."""

    modules: tuple[str, ...] = LISTED_MODULES  # Not Applicable is always added
    technical_services_types: tuple[str, ...] = TECHNICAL_SERVICES_TYPES
    training_request_types: tuple[str, ...] = TRAINING_REQUEST_TYPES


@dataclass(frozen=True)
class CaseTypeTable:
    """The case-type table with a deployment's lists, and the same as the parse stage reads it."""

    case_types: Mapping[CaseType, CaseTypeSpec]
    forms: FormSchema

    def spec_for(self, case_type: CaseType) -> CaseTypeSpec:
        return self.case_types[case_type]


def case_type_table(lists: OpenLists | None = None) -> CaseTypeTable:
    """The table with `lists` in place of the shipped ones: the same rows, with the listed fields' choices."""
    if lists is None or lists == OpenLists():
        return DEFAULT_TABLE
    listed = {
        MODULE: _listed(MODULE, (*lists.modules, NOT_APPLICABLE),
                        lambda choices: _module_hint([c for c in choices if c != NOT_APPLICABLE])),
        TECHNICAL_SERVICES_TYPE: _listed(TECHNICAL_SERVICES_TYPE, lists.technical_services_types, "; ".join),
        TRAINING_REQUEST_TYPE: _listed(TRAINING_REQUEST_TYPE, lists.training_request_types, _suggestions_hint),
    }
    case_types = {t: _with_fields(spec, listed) for t, spec in CASE_TYPES.items()}
    return CaseTypeTable(case_types, form_schema(case_types))


def _suggestions_hint(choices: Sequence[str]) -> str:
    return "e.g. " + ", ".join(choices) + ", or in your own words"


def _listed(field: Field, choices: Sequence[str], hint: Callable[[Sequence[str]], str]) -> Field:
    unique = tuple(dict.fromkeys(c.strip() for c in choices if c.strip()))
    return dataclasses.replace(field, choices=unique, hint=hint(unique))


def _with_fields(spec: CaseTypeSpec, replaced: Mapping[Field, Field]) -> CaseTypeSpec:
    """`spec` with some of its fields replaced, wherever the row names them."""
    def new(f: Field) -> Field:
        return replaced.get(f, f)

    return dataclasses.replace(
        spec, fields=tuple(map(new, spec.fields)), required=frozenset(map(new, spec.required)),
        required_when=tuple(dataclasses.replace(c, field=new(c.field), fields=tuple(map(new, c.fields)))
                            for c in spec.required_when))


DEFAULT_TABLE = CaseTypeTable(CASE_TYPES, FORMS)
