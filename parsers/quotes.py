"""The new text of a reply, without the quoted history or the signature: part of the parse stage.

When a contact answers on a case's thread, the worker turns the reply into a
comment on the case (store raw → **parse** → decide → act), and a comment must
hold only what the contact wrote this time. Two maintained libraries do the
stripping, each for what it does best:

* quotequail (Close) finds where the quoted message starts: "On … wrote:"
  attributions in English, German, French, Spanish, Portuguese, Dutch and
  Swedish, forward and "-----Original Message-----" separators, Outlook's
  underscore line, blocks of ``>`` lines, and in HTML the same plus Outlook's
  border-top header box. It also returns the text *below* a quote, so a
  bottom-posted or interleaved answer is kept, not thrown away.
* mail-parser-reply then cuts at the reply headers quotequail does not know:
  Outlook's bare "From:/Sent:/To:/Subject:" block and its translations
  (Von/Gesendet, De/Envoyé, Van/Verzonden, …) and the Italian, Danish and
  Norwegian attributions.

Only mail-parser-reply's header detection is used, not its signature removal:
that treats any line starting with "Thanks," or "- " as the start of a
signature and drops everything after it, which loses real text ("Thanks, that
worked. But now …", a list of steps). The small amount of glue that remains
(``>`` lines left between interleaved answers, the "-- " separator, the
one-line footers of mobile mail apps, no-break spaces) is kept apart below and
says why it is needed. Pure functions: no database, no network.
"""
from __future__ import annotations

import re

import lxml.etree
import lxml.html
import quotequail
from mailparser_reply import EmailReplyParser

from parsers.inline_reply import answers_in_context, is_inline_reply
from parsers.message import html_to_text

__all__ = ["may_hold_quote", "visible_reply"]

# Languages whose reply headers mail-parser-reply should look for. Polish is
# left out on purpose: its pattern cuts at a single "Data:" or "Do:" line,
# which is ordinary text in a support reply.
REPLY_HEADER_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "sv", "da", "cs")

_REPLY_HEADERS = EmailReplyParser(languages=list(REPLY_HEADER_LANGUAGES))


def visible_reply(text: str, html: str | None = None, *, reply: bool = True) -> str:
    """The text the sender wrote in this reply: quoted history and signature removed.

    ``text`` is the message's plain body (or its HTML rendered as text when it
    had no plain part) and ``html`` its HTML part, as in ``ParsedMessage``. The
    plain part is read when there is one, because that is what the sender's
    client wrote as text; the HTML is read only when the text was made from
    it, since the HTML keeps the quote's structure that the rendering lost.
    Never empty while the reply holds any line that is not ``>``-quoted.

    ``reply=False`` says the headers name no earlier message (see
    `parsers.submission`): then, when the plain text also shows nothing either
    library could take for quoted history (`may_hold_quote`), they are not run,
    for they would find nothing; the result is the same, at a fraction of the cost.
    """
    text = _normalise(text)
    rendered = bool(html) and _is_rendering_of(text, html or "")
    if not reply and not rendered and not may_hold_quote(text):
        return _strip_signature(_without_quoted_lines(text))
    inline = _html_inline_reply(html) if html and rendered else None
    source = inline if inline is not None else _html_new_text(html) if html and rendered else None
    new = _strip_signature(_strip_quotes(source if source is not None else text))
    return new if new else _without_quoted_lines(text)


# --- what the libraries could react to -------------------------------------------

# Words that every attribution ("On … wrote:") and forward separator the two
# libraries know contains, lowercased (their patterns are matched against text
# joined across a line break, hence the search in text with its whitespace collapsed).
# tests/test_parsers_quotes.py checks that each of the libraries' patterns holds one.
QUOTE_WORDS = (
    "wrote", "schrieb", "écrit", "escribió", "написал", "skrev", "escreveu", "schreef", "geschreven",
    "scritto", "napsal", "original message", "forwarded message", "weitergeleiteten e-mail",
    "message réexpédié", "mensaje reenviado", "vidarebefordrat meddelande", "doorgestuurd bericht",
    "ursprüngliche nachricht", "mensaje original", "oorspronkelijk bericht", "message transféré",
    "origineel bericht", "пересылаемое сообщение",
)
# The names of the header lines of a quoted or forwarded message ("From: …", "Gesendet: …"), lowercased:
# quotequail's and mail-parser-reply's together. Both need two such lines at least.
HEADER_NAMES = frozenset({
    "", "a", "aan", "an", "antwoord aan", "antwort an", "asunto", "bcc", "betreff", "blindkopie", "cc", "cco",
    "da", "data", "date", "dato", "datum", "de", "emne", "enviado", "enviado el", "enviados", "envoyé", "fecha",
    "fra", "from", "från", "gesendet", "inviato", "komu", "kopi", "kopia", "kopie", "objet", "od", "odesláno",
    "oggetto", "onderwerp", "organisation", "organization", "organización", "para", "pour", "předmět",
    "received", "reply-to", "responder a", "répondre à", "sendt", "sent", "skickat", "subject", "sujet", "til",
    "till", "to", "van", "vedhæftet", "verzonden", "von", "à", "ämne", "дата", "кому", "от кого", "тема",
})
_HEADER_LINE = re.compile(r"^[>\s*]*([^:\n]{0,30}?)[ \t*]*:", re.MULTILINE)
_ANY_QUOTED_LINE = re.compile(r"^[ \t]*>", re.MULTILINE)
# Gmail's "2021/09/07 Zack Morris <zack@…>" attribution, and Outlook's separator line.
_GMAIL_DATE = re.compile(r"[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}")
_SEPARATOR_LINE = re.compile(r"[_-]{32}")


def may_hold_quote(text: str) -> bool:
    """Whether ``text`` shows anything quotequail or mail-parser-reply could take for quoted history.

    Conservative: True for any ``>`` line, attribution or forward word, Gmail
    date, separator line, or two lines named like mail headers; False only
    when neither library could find a quote, so skipping them changes nothing.
    """
    if _ANY_QUOTED_LINE.search(text) or _GMAIL_DATE.search(text) or _SEPARATOR_LINE.search(text):
        return True
    collapsed = " ".join(text.split()).casefold()  # as wide as the libraries' IGNORECASE
    if any(word in collapsed for word in QUOTE_WORDS):
        return True
    headers = (m.group(1).strip().casefold() for m in _HEADER_LINE.finditer(text))
    return sum(name in HEADER_NAMES for name in headers) >= 2


# --- quoted history: the libraries ---------------------------------------------

def _strip_quotes(text: str) -> str:
    """Text above and below the quoted message, cut again at any reply header left."""
    unwrapped = quotequail.unwrap(text)
    if is_inline_reply(text):
        top = _cut_at_reply_header(unwrapped.get("text_top", "")) if unwrapped is not None else None
        return answers_in_context(text, top)
    if unwrapped is not None:
        text = _join_paragraphs(unwrapped.get("text_top", ""), unwrapped.get("text_bottom", ""))
    return _cut_at_reply_header(_without_quoted_lines(text))


def _cut_at_reply_header(text: str) -> str:
    """The text before the first reply header mail-parser-reply recognises.

    The library strips the whitespace off every line before matching; its answer is mapped back
    onto the original lines so that indentation (pasted logs, nested lists)
    survives. When the mapping does not hold, the library's text is used.
    """
    latest = _REPLY_HEADERS.parse_reply(text) or ""
    lines = text.split("\n")
    stripped = "\n".join(line.strip() for line in lines)
    start = stripped.find(latest)
    if not latest or start < 0:
        return latest
    kept = stripped[: start + len(latest)].count("\n") + 1
    return "\n".join(lines[:kept]).strip("\n")


def _html_new_text(html: str) -> str | None:
    """The new text of an HTML-only reply, or None when quotequail finds no quote."""
    unwrapped = quotequail.unwrap_html(html)
    if unwrapped is None:
        return None
    parts = (html_to_text(unwrapped[key]) for key in ("html_top", "html_bottom") if unwrapped.get(key))
    return _join_paragraphs(*parts)


def _html_inline_reply(html: str) -> str | None:
    """An HTML-only reply that answers between <blockquote>s, as text with the quotes as ``>`` lines
    (for `parsers.inline_reply`); None when it is no such reply.

    inscriptis renders a blockquote as indented text, which loses where the
    quote ends; so each blockquote, innermost first, is rendered on its own
    and put back as ``>``-prefixed preformatted lines. The indentation of the
    rest is only that of the HTML's nesting and is dropped.
    """
    if "<blockquote" not in html.lower():
        return None
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return None
    for quote in reversed(list(root.iter("blockquote"))):
        inner = html_to_text(lxml.html.tostring(quote, encoding="unicode"))
        lines = lxml.html.Element("pre")
        lines.text = "\n".join(f"> {line.strip()}".rstrip() for line in inner.split("\n"))
        lines.tail = quote.tail
        parent = quote.getparent()
        if parent is not None:
            parent.replace(quote, lines)
    text = "\n".join(line.strip() for line in html_to_text(lxml.html.tostring(root, encoding="unicode")).split("\n"))
    return _normalise(text) if is_inline_reply(text) else None


def _is_rendering_of(text: str, html: str) -> bool:
    """True when ``text`` is the message's HTML rendered as text (no plain part was sent)."""
    return text.strip() == _normalise(html_to_text(html)).strip()


# --- glue the libraries leave to us --------------------------------------------

# A ">" line that is still there after the libraries ran is quoted text between
# the paragraphs of an interleaved answer: quotequail reports the first quote
# block only, and mail-parser-reply keeps quoted lines inside a reply.
_QUOTED_LINE = re.compile(r"^[ \t]*>")

# RFC 3676's signature separator. Many clients trim the trailing space, and
# text converted from HTML indents it with its <div> ("  --"): any indentation counts.
_SIGNATURE_SEPARATOR = re.compile(r"^[ \t]*-- ?[ \t]*$")

# One-line footers that mobile and desktop mail apps add under the new text.
# mail-parser-reply only knows some of them, and only through the signature
# removal that is too eager to use (see the module docstring).
_APP_FOOTER = re.compile(
    r"""^(?:
        Sent\ from\ my\ [\w .-]{1,40}
      | Sent\ from\ (?:Mail|Outlook|Yahoo\ Mail)(?:\ for\ [\w .-]{1,30})?
      | Get\ Outlook\ for\ (?:iOS|Android|Mac|Windows)
      | Von\ meinem\ [\w .-]{1,40}\ gesendet
      | Gesendet\ von\ (?:meinem\ )?[\w .-]{1,40}
      | Envoyé\ (?:de|depuis)\ (?:mon\ )?[\w .-]{1,40}
      | Enviado\ (?:desde\ mi|do\ meu|de\ meu)\ [\w .-]{1,40}
      | Inviato\ da\ [\w .-]{1,40}
      | Verzonden\ (?:vanaf|met)\ (?:mijn\ )?[\w .-]{1,40}
      | Skickat\ från\ (?:min\ )?[\w .-]{1,40}
      | Sendt\ fra\ (?:min\ )?[\w .-]{1,40}
    )$""",
    re.VERBOSE | re.IGNORECASE,
)
# "Get Outlook for iOS<https://aka.ms/o0ukef>": the text part keeps the link target.
_LINK_TARGET = re.compile(r"<(?:https?|mailto):[^>\s]*>")

_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")

# Gmail wraps its attribution at 78 columns, often right after the "<" of the
# address ("… skrev Intake Support <\nsupport@intake.example>:"). quotequail
# joins only wraps its own patterns allow for, and mail-parser-reply's
# Scandinavian patterns do not cross lines, so the address is rejoined first.
_WRAPPED_ADDRESS = re.compile(r"<\n([^\s<>@]+@[^\s<>]+>)")


def _normalise(text: str) -> str:
    """Unix newlines, plain spaces for no-break spaces, addresses unwrapped.

    French clients put a no-break space before the colon ("a écrit :",
    "De :"); the libraries' patterns expect a plain space.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00a0", " ").replace("\u202f", " ")
    return _WRAPPED_ADDRESS.sub(r"<\1", text)


def _strip_signature(text: str) -> str:
    """The text above a "-- " separator, without trailing app footers."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if _SIGNATURE_SEPARATOR.match(line):
            lines = lines[:index]
            break
    # A quoted line left last is the context of an inline answer that was only a footer or a signature.
    while lines and (not lines[-1].strip() or _is_app_footer(lines[-1]) or _QUOTED_LINE.match(lines[-1])):
        lines.pop()
    return _tidy("\n".join(lines))


def _is_app_footer(line: str) -> bool:
    return bool(_APP_FOOTER.match(_LINK_TARGET.sub("", line).strip()))


def _without_quoted_lines(text: str) -> str:
    return _tidy("\n".join(line for line in text.split("\n") if not _QUOTED_LINE.match(line)))


def _join_paragraphs(*parts: str) -> str:
    return "\n\n".join(part.strip("\n") for part in parts if part.strip())


def _tidy(text: str) -> str:
    """No trailing spaces, no runs of blank lines left where quotes were cut out."""
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip("\n")
