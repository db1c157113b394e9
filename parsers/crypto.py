"""Signed and encrypted mail (S/MIME, OpenPGP): what was signed is read as the message; encryption is recognised.

Part of the parse stage (store raw → **parse** → decide → act). Nothing here
verifies a signature (intake has no keys to trust and does not need them: a
signature proves nothing about who may file a case; sender authentication
does that) or decrypts anything. It finds the text a signature covers, so
that text is the case, and it says when a message is encrypted, so the
decision can refuse it without anything quoting the ciphertext.

- ``multipart/signed`` (S/MIME and PGP/MIME): the MIME parser already reads
  the first part as the message and the signature as an attachment.
- Opaque S/MIME (``application/pkcs7-mime; smime-type=signed-data``): the
  signed entity is inside the CMS structure; `opaque_signed_entity` takes it
  out (asn1crypto reads the DER) to be parsed as the message.
- Inline cleartext signatures (``-----BEGIN PGP SIGNED MESSAGE-----``,
  RFC 4880 section 7): `split_cleartext_signed` gives the signed text and the
  armoured signature.
- Encrypted: S/MIME enveloped data, PGP/MIME ``multipart/encrypted`` and
  inline ``-----BEGIN PGP MESSAGE-----``: `encryption_of` names which.
"""
from __future__ import annotations

import email.message
from collections.abc import Callable

from asn1crypto import cms

__all__ = ["PGP_SIGNATURE_NAME", "encryption_of", "opaque_signed_entity", "split_cleartext_signed"]

PGP_SIGNATURE_NAME = "signature.asc"

_PKCS7_MIME = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
_ENVELOPED = frozenset({"enveloped-data", "authenveloped-data"})
_ENVELOPED_CMS = frozenset({"enveloped_data", "authenticated_enveloped_data"})
_PGP_MESSAGE = "-----BEGIN PGP MESSAGE-----"
# RFC 4880 section 7: this line, armour headers (Hash: ...), an empty line, the text, then the signature.
_BEGIN_SIGNED = "-----BEGIN PGP SIGNED MESSAGE-----"
_BEGIN_SIGNATURE = "-----BEGIN PGP SIGNATURE-----"
_END_SIGNATURE = "-----END PGP SIGNATURE-----"


def encryption_of(structure: email.message.Message, text_parts: list[str]) -> str | None:
    """How the message is encrypted ("S/MIME", "PGP/MIME" or "inline PGP"), or None when it is not."""
    content_type = structure.get_content_type()
    if content_type == "multipart/encrypted":
        return "PGP/MIME"
    if content_type in _PKCS7_MIME and _is_enveloped(structure):
        return "S/MIME"
    if any(part.lstrip().startswith(_PGP_MESSAGE) for part in text_parts):
        return "inline PGP"
    return None


def opaque_signed_entity(structure: email.message.Message) -> bytes | None:
    """The MIME entity an opaque S/MIME signature wraps, as bytes to be parsed as the message; None if there is none.

    Only the message itself is unwrapped: a signed ``.p7m`` attached to a
    message is a file someone forwarded, kept as it is.
    """
    if structure.get_content_type() not in _PKCS7_MIME:
        return None
    if structure.get_param("smime-type", "signed-data").lower() != "signed-data":  # type: ignore[union-attr]
        return None
    info = _content_info(structure)
    if info is None or info["content_type"].native != "signed_data":
        return None
    try:
        content = info["content"]["encap_content_info"]["content"].native
    except (ValueError, TypeError, KeyError, IndexError, OverflowError):
        return None
    return content if isinstance(content, bytes) and content.strip() else None


def split_cleartext_signed(text: str) -> tuple[str, tuple[str, ...]]:
    """`text` with each cleartext-signed block replaced by the text it signed; and the armoured signatures.

    Text outside a block (a footer a list added) stays. The signed text is
    dash-unescaped: a line the signer began with ``-`` arrives as ``- -``. A
    block without its signature is left as it is, and so is all text after it.
    """
    if _BEGIN_SIGNED not in text:
        return text, ()
    lines = text.replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    signatures: list[str] = []
    at = 0
    while at < len(lines):
        if lines[at].rstrip() != _BEGIN_SIGNED:
            kept.append(lines[at])
            at += 1
            continue
        block = _signed_block(lines, at + 1)
        if block is None:
            kept += lines[at:]
            break
        signed, signature, at = block
        kept += [line[2:] if line.startswith("- ") else line for line in signed]
        signatures.append("\n".join(signature))
    return "\n".join(kept), tuple(signatures)


def _signed_block(lines: list[str], start: int) -> tuple[list[str], list[str], int] | None:
    """From after the BEGIN line: the signed lines, the signature's lines, and the line after it; None if cut short.

    Each search only goes forward, and a failed one ends the reading, so hostile text costs one pass.
    """
    text_start = _index(lines, start, lambda line: not line.strip())  # armour headers (Hash: ...) end at a blank line
    signature_start = _index(lines, text_start + 1, lambda line: line.rstrip() == _BEGIN_SIGNATURE) \
        if text_start >= 0 else -1
    signature_end = _index(lines, signature_start + 1, lambda line: line.rstrip() == _END_SIGNATURE) \
        if signature_start >= 0 else -1
    if signature_end < 0:
        return None
    return lines[text_start + 1:signature_start], lines[signature_start:signature_end + 1], signature_end + 1


def _index(lines: list[str], start: int, wanted: Callable[[str], bool]) -> int:
    return next((at for at in range(start, len(lines)) if wanted(lines[at])), -1)


def _is_enveloped(structure: email.message.Message) -> bool:
    smime_type = structure.get_param("smime-type")
    if isinstance(smime_type, str):
        return smime_type.lower() in _ENVELOPED
    info = _content_info(structure)  # old clients leave smime-type out: the CMS structure says
    return info is not None and info["content_type"].native in _ENVELOPED_CMS


def _content_info(structure: email.message.Message) -> cms.ContentInfo | None:
    payload = structure.get_payload(decode=True)
    if not isinstance(payload, bytes) or not payload:
        return None
    try:
        info = cms.ContentInfo.load(payload)
        info["content_type"].native  # noqa: B018 - asn1crypto parses lazily: reading the field checks the bytes
    except (ValueError, TypeError, KeyError, IndexError, OverflowError):  # what asn1crypto raises on broken DER
        return None
    return info
