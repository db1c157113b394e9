"""The case-type schema: one declarative table of the seed's case types and fields.

Everything that differs between case types lives here as data: which fields a
type shows ("Displays on Case Types"), which are required, the department a type
routes to, whether it may be billable, and which contact types may file it.
Parsing, validation, templates and replies all read this table; nothing else
in the code branches on a case type's name.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field


class FieldKind(enum.Enum):
    TEXT = "text"
    MULTILINE = "multi-line text"
    DATE = "date"
    ENUM = "enum"
    MULTI_CHOICE = "multi-choice"
    EMAIL = "email"
    PHONE = "phone"
    CONSENT = "consent"  # a written statement that must affirm (Written Permission)


class ContactType(str, enum.Enum):
    AUTHORIZED = "Authorized"
    TECHNICAL = "Technical"
    READ_ONLY = "Read Only"


class CaseType(str, enum.Enum):
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

# "The top most reported modules in alphabetical order", plus the seed's escape hatch.
MODULES = (
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
    "Not Applicable",
)

TECHNICAL_SERVICES_TYPES = (
    "Existing Custom Project",
    "Custom Report, Report Card, or Transcript",
    "Data Import/Export/Modification",
    "Integration with 3rd Party Application",
    "Other Services",
)

SERVER_ACCESS_REQUEST_TYPES = ("Server", "SQL Server", "SSRS")
SQL_SERVER_ACCESS = "SQL Server"

CONTACT_REQUEST_TYPES = ("Add", "Modify", "Replace", "Remove")


@dataclass(frozen=True)
class Field:
    """One field of a case form.

    ``label`` is written exactly as the seed writes it; it is the key of the
    field everywhere (stored case fields, JSON output, templates). ``aliases``
    are other labels a person might type. ``choices`` lists the allowed values
    of an enum or multi-choice field; ``choice_aliases`` maps other spellings to
    one of them. ``hint`` is shown in the blank template.
    """

    label: str
    kind: FieldKind
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    choice_aliases: dict[str, str] = field(default_factory=dict)
    hint: str = ""
    future_only: bool = False  # a date that must be after the day the mail arrives


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
               choice_aliases={"N/A": "Not Applicable", "NA": "Not Applicable", "None": "Not Applicable",
                               "Gradebook": "Grade Book", "Grades": "Grade Book"},
               hint="; ".join(MODULES))
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
STEPS_TO_REPRODUCE = Field("Steps to Reproduce", FieldKind.MULTILINE, ("Steps", "How to Reproduce", "Reproduction Steps"),
                           hint="click-by-click steps")
ENVIRONMENT_CHANGES = Field("Environment Changes", FieldKind.MULTILINE, ("Recent Changes",))
ERROR_MESSAGE = Field("Error Message", FieldKind.MULTILINE, ("Error", "Error Text"))
EXPECTED_RESULTS = Field("Expected Results", FieldKind.MULTILINE, ("Expected Result", "Expected Behavior", "Expected Behaviour"))
WHO_IS_IMPACTED = Field("Who is impacted?", FieldKind.TEXT, ("Who is impacted", "Impacted Users", "Who is affected"))
ISSUE_BEGAN = Field("Issue Began", FieldKind.DATE, ("Issue Start Date", "Date Issue Began"))
LOCATION_WITHIN_PRODUCT = Field("Location within Product", FieldKind.TEXT, ("Product Location", "Where in Campus"))
TRAINING_REQUEST_TYPE = Field("Request Type", FieldKind.TEXT, ("Training Type", "Kind of Request"),
                              hint="e.g. Campus Learning training for teachers")
PREFERRED_TRAINING_DATE = Field("Preferred Training Date", FieldKind.DATE,
                                ("Preferred Training Date 1", "First Choice Training Date", "Training Date", "First Choice Date"),
                                future_only=True, hint="first choice")
PREFERRED_TRAINING_DATE_2 = Field("Preferred Training Date 2", FieldKind.DATE,
                                  ("Second Choice Training Date", "Second Choice Date"), future_only=True, hint="second choice")
PREFERRED_TRAINING_DATE_3 = Field("Preferred Training Date 3", FieldKind.DATE,
                                  ("Third Choice Training Date", "Third Choice Date"), future_only=True, hint="third choice")
APPROXIMATE_DATE_OF_LOSS = Field("Approximate Date of Loss", FieldKind.DATE, ("Date of Loss", "Date Deleted", "Loss Date"),
                                 hint="data is kept for 30 days")
REASON_FOR_RESTORE = Field("Reason for Restore", FieldKind.MULTILINE, ("Restore Reason",))
WRITTEN_PERMISSION = Field("Written Permission", FieldKind.CONSENT, ("Permission", "Permission to Restore", "Authorization"),
                           hint="state that you give written permission to restore, e.g. "
                                "'Yes, I give permission to restore this data'")
SERVER_ACCESS_REQUEST_TYPE = Field("Request Type", FieldKind.ENUM, ("Access Type", "Kind of Request"),
                                   choices=SERVER_ACCESS_REQUEST_TYPES,
                                   choice_aliases={"SQL": SQL_SERVER_ACCESS, "Database": SQL_SERVER_ACCESS,
                                                   "Server Access": "Server",
                                                   "SQL Server Access": SQL_SERVER_ACCESS, "SSRS Access": "SSRS"},
                                   hint="Server, SQL Server or SSRS (SQL Server needs Schema Bootcamp)")
CONTACT_REQUEST_TYPE = Field("Request Type", FieldKind.ENUM, ("Change", "Kind of Request"), choices=CONTACT_REQUEST_TYPES,
                             choice_aliases={"New": "Add", "Update": "Modify", "Delete": "Remove", "Change": "Modify"},
                             hint="Add, Modify, Replace or Remove")
CONTACT_FIRST_NAME = Field("Contact First Name", FieldKind.TEXT, ("First Name",))
CONTACT_LAST_NAME = Field("Contact Last Name", FieldKind.TEXT, ("Last Name",))
CONTACT_EMAIL = Field("Contact Email", FieldKind.EMAIL, ("Contact Email Address",))
CONTACT_TITLE = Field("Contact Title", FieldKind.TEXT, ("Job Title",))
CONTACT_PRIMARY_PHONE = Field("Contact Primary Phone", FieldKind.PHONE, ("Primary Phone",))
CONTACT_SECONDARY_PHONE = Field("Contact Secondary Phone", FieldKind.PHONE, ("Secondary Phone", "Alternate Phone"))
CONTACT_TYPE = Field("Contact Type", FieldKind.ENUM, (), choices=tuple(t.value for t in ContactType),
                     choice_aliases={"Read-Only": "Read Only", "ReadOnly": "Read Only", "Tech": "Technical"},
                     hint="Authorized, Technical or Read Only")
AREA_OF_RESPONSIBILITY = Field("Area of Responsibility", FieldKind.MULTI_CHOICE,
                               ("Areas of Responsibility",), choices=AREAS_OF_RESPONSIBILITY,
                               hint="one or more, separated by commas: " + ", ".join(AREAS_OF_RESPONSIBILITY))
CONTACT_REPLACEMENT_NAME = Field("Contact Replacement Name", FieldKind.TEXT,
                                 ("Replacement Name", "Replacing", "Contact to Remove", "Contact Being Replaced"),
                                 hint="if replacing, the contact to remove")
PREFERRED_CONSULT_DATE = Field("Preferred Consult Date", FieldKind.DATE,
                               ("Preferred Consult Date 1", "Consult Date", "First Choice Consult Date"), future_only=True)
PREFERRED_CONSULT_DATE_2 = Field("Preferred Consult Date 2", FieldKind.DATE, ("Second Choice Consult Date",), future_only=True)
PREFERRED_CONSULT_DATE_3 = Field("Preferred Consult Date 3", FieldKind.DATE, ("Third Choice Consult Date",), future_only=True)
DESIRED_COMPLETION_DATE = Field("Desired Completion Date", FieldKind.DATE, ("Completion Date", "Due Date", "Deadline"),
                                future_only=True)

COMMON_FIELDS = (ACCOUNT, CONTACT, CASE_TYPE, PRIORITY, SUBJECT, DESCRIPTION)

ALL_CONTACT_TYPES = frozenset(ContactType)
AUTHORIZED_ONLY = frozenset({ContactType.AUTHORIZED})


@dataclass(frozen=True)
class CaseTypeSpec:
    """One row of the case-type table."""

    case_type: CaseType
    description: str
    department: str
    may_be_billable: bool
    fields: tuple[Field, ...]  # the type's own fields, in form order
    required: frozenset[str]  # labels, common fields included
    filed_by: frozenset[ContactType]
    # (label, value, labels): when the field `label` has `value`, `labels` are required too.
    required_when: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def field(self, label: str) -> Field | None:
        for f in self.all_fields:
            if f.label == label:
                return f
        return None

    @property
    def all_fields(self) -> tuple[Field, ...]:
        return COMMON_FIELDS + self.fields


def _spec(case_type: CaseType, description: str, department: str, fields: tuple[Field, ...],
          required: tuple[str, ...] = (), *, billable: bool = False,
          filed_by: frozenset[ContactType] | None = None,
          required_when: tuple[tuple[str, str, tuple[str, ...]], ...] = ()) -> CaseTypeSpec:
    if filed_by is None:
        # Technical contacts may not ask for anything that may be billed.
        filed_by = AUTHORIZED_ONLY if billable else frozenset({ContactType.AUTHORIZED, ContactType.TECHNICAL})
    return CaseTypeSpec(case_type, description, department, billable, fields,
                        frozenset(("Subject", "Description") + required), filed_by, required_when)


CASE_TYPES: dict[CaseType, CaseTypeSpec] = {s.case_type: s for s in (
    _spec(CaseType.APPLICATION_ISSUE, "Campus is not working as expected or you are experiencing a problem.",
          "Application Support",
          (APPLICATION_TYPE, MODULE, STEPS_TO_REPRODUCE, ENVIRONMENT_CHANGES, ERROR_MESSAGE, EXPECTED_RESULTS,
           WHO_IS_IMPACTED, ISSUE_BEGAN),
          ("Module", "Steps to Reproduce", "Expected Results", "Who is impacted?")),
    _spec(CaseType.ASK_A_QUESTION, "Ask a how-to question or for advice.", "Application Support",
          (MODULE, LOCATION_WITHIN_PRODUCT), ("Module",)),
    _spec(CaseType.REPORT_AN_OUTAGE, "Campus is inaccessible for all (or most) users.", "Hosting Operations",
          (ERROR_MESSAGE,)),
    _spec(CaseType.REQUEST_TRAINING, "Enter a request to schedule Infinite Campus training.", "Training",
          (TRAINING_REQUEST_TYPE, PREFERRED_TRAINING_DATE, PREFERRED_TRAINING_DATE_2, PREFERRED_TRAINING_DATE_3),
          ("Request Type", "Preferred Training Date")),
    _spec(CaseType.DATA_RESTORE, "Request lost or deleted data be restored. We require your written permission.",
          "Hosting Operations",
          (MODULE, APPROXIMATE_DATE_OF_LOSS, REASON_FOR_RESTORE, WRITTEN_PERMISSION),
          ("Module", "Approximate Date of Loss", "Reason for Restore", "Written Permission")),
    _spec(CaseType.SERVER_ISSUE, "Report an issue with your campus server.", "Hosting Operations",
          (MODULE, ERROR_MESSAGE, ISSUE_BEGAN), ("Module",)),
    _spec(CaseType.SERVER_ACCESS, "Request Server, SQL Server, or SSRS Access.", "Hosting Operations",
          (SERVER_ACCESS_REQUEST_TYPE,), ("Request Type",), filed_by=AUTHORIZED_ONLY),
    _spec(CaseType.MODIFY_SUPPORT_CONTACTS, "Update or Replace your current Authorized Contacts.", "Client Services",
          (CONTACT_REQUEST_TYPE, CONTACT_FIRST_NAME, CONTACT_LAST_NAME, CONTACT_EMAIL, CONTACT_TITLE,
           CONTACT_PRIMARY_PHONE, CONTACT_SECONDARY_PHONE, CONTACT_TYPE, AREA_OF_RESPONSIBILITY,
           CONTACT_REPLACEMENT_NAME),
          ("Request Type", "Contact First Name", "Contact Last Name", "Contact Email"), filed_by=AUTHORIZED_ONLY,
          required_when=(("Request Type", "Add", ("Contact Type", "Area of Responsibility", "Contact Primary Phone")),
                         ("Request Type", "Replace", ("Contact Type", "Area of Responsibility",
                                                      "Contact Replacement Name")))),
    _spec(CaseType.REQUEST_CONSULTING, "Request time with an Infinite Campus Business Consultant.", "Business Consulting",
          (PREFERRED_CONSULT_DATE, PREFERRED_CONSULT_DATE_2, PREFERRED_CONSULT_DATE_3), ("Preferred Consult Date",),
          billable=True),
    _spec(CaseType.REQUEST_TECHNICAL_SERVICES,
          "Report an issue with an existing Technical Services project, request a new project, or modify one.",
          "Technical Services",
          (TECHNICAL_SERVICES_TYPE, MODULE, DESIRED_COMPLETION_DATE), ("Type", "Module"), billable=True),
)}


def spec_for(case_type: CaseType) -> CaseTypeSpec:
    return CASE_TYPES[case_type]


def known_labels() -> dict[str, list[str]]:
    """Every label and alias any case type knows, mapped to canonical labels.

    A name may be canonical for fields of several types (``Type``,
    ``Request Type``); the template parser only needs to know a line starts a
    field, so it maps each spelling to the canonical label text.
    """
    names: dict[str, list[str]] = {}
    for spec in CASE_TYPES.values():
        for f in spec.all_fields:
            for name in (f.label, *f.aliases):
                labels = names.setdefault(name, [])
                if f.label not in labels:
                    labels.append(f.label)
    return names
