"""The Jinja2 environment of every outgoing mail's templates.

The built-in templates are the repository's top-level templates/email/. They
ship inside the package as intake/templates/email: in the checkout that path
is a symbolic link to templates/, in the wheel the files themselves. So the
same lookup works from a wheel, an editable install and the test suite.

`[intake] template_dir` names an optional folder searched first: it holds only
the templates a deployment changes (say acknowledgement.txt) and inherits the
rest, including the partials they extend, from the built-ins.

Each environment is made once per process and compiles each template once:
the files are not looked at again for changes (Jinja's auto_reload is off, so
rendering a reply costs no stat of its template and partials). A changed
template is used from the next start, as a changed configuration is.
"""
from __future__ import annotations

import datetime as dt
import re
import textwrap
from functools import cache
from pathlib import Path

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateError,
    select_autoescape,
)

BUILTIN_PACKAGE = "intake"
BUILTIN_FOLDER = "templates/email"
# The kinds of reply every installation must be able to send.
REQUIRED = ("acknowledgement.txt", "acknowledgement.html", "needs_information.txt", "needs_information.html",
            "refusal.txt", "refusal.html")


# Plain-text mail is read in terminals and quoted in replies: prose is wrapped to this width.
TEXT_WIDTH = 72
_PREFORMATTED = re.compile(r"^[ \t>]")


def format_date(value: dt.date | dt.datetime) -> str:
    return value.strftime("%m/%d/%Y")


def wrap_prose(text: str, width: int = TEXT_WIDTH) -> str:
    """Each line of rendered prose wrapped to `width` at spaces, never inside a word or an address.

    Applied after the values are in (`{% filter wrap %}`), so a long subject
    or name makes tidy lines instead of a ragged paragraph; the templates
    write each paragraph on one line. Lines that start with a space or a tab
    (a pasted log, an indented list) or with ">" (a quote) are left as they are.
    """
    return "\n".join(textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False)
                     if line.strip() and not _PREFORMATTED.match(line) else line for line in text.split("\n"))


def underline(heading: str) -> str:
    """A plain-text heading with a line of dashes as long as it is."""
    return f"{heading}\n{'-' * len(heading)}"


@cache
def template_environment(template_dir: Path | None) -> Environment:
    """The templates of `template_dir` first (when given), then the built-in ones."""
    loaders: list[BaseLoader] = [FileSystemLoader(template_dir)] if template_dir is not None else []
    loaders.append(PackageLoader(BUILTIN_PACKAGE, BUILTIN_FOLDER))
    environment = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    environment.filters["mdy"] = format_date
    environment.filters["wrap"] = wrap_prose
    environment.filters["underline"] = underline
    return environment


def template_problem(template_dir: Path | None) -> str | None:
    """Why the templates cannot be used (a required one missing, one that does not compile), or None."""
    where = f"template_dir {template_dir}" if template_dir is not None else "the built-in templates"
    try:
        environment = template_environment(template_dir)
        names = environment.list_templates()
    except (OSError, ValueError) as exc:  # the built-ins not installed, the folder unreadable
        return f"{where}: {type(exc).__name__}: {exc}"
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        return f"{where}: no {', '.join(missing)}"
    for name in names:
        try:
            environment.get_template(name)
        except (TemplateError, OSError) as exc:
            line = getattr(exc, "lineno", None)
            return f"{where}: {name}{f' line {line}' if line else ''}: {type(exc).__name__}: {exc}"
    return None
