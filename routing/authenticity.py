"""Is the From address genuine? The rules of sender authentication, as pure functions.

Anyone can write any From. Whether the sender's own domain vouches for a
message is told by DMARC (RFC 7489): a pass of SPF or DKIM for a domain
*aligned* with the From domain (relaxed alignment: the same organisational
domain, by the public suffix list). intake learns this in one of two ways,
chosen by `[security] sender_auth`:

- ``authentication-results``: the receiving mail server checked SPF, DKIM
  and DMARC and wrote an RFC 8601 Authentication-Results header. Only the
  topmost header whose authserv-id is configured as ours is believed; copies
  further down (anyone can write one) are ignored.
- ``dkim``: intake verified the DKIM signatures itself (`intake.trust`),
  and hands the domains whose signatures passed to `dkim_verdict`.

Both fail closed: no trusted result, or one that cannot be read, is "not
authenticated". ``none`` means the network in front of intake is trusted
(the embedded demo's default) and nothing is checked.
"""
from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import authres
from publicsuffixlist import PublicSuffixList

__all__ = ["SenderAuth", "Verdict", "aligned", "dkim_verdict", "organisational_domain",
           "read_authentication_results"]


class SenderAuth(enum.StrEnum):
    """`[security] sender_auth`: how intake learns whether the From address is genuine."""

    NONE = "none"
    AUTHENTICATION_RESULTS = "authentication-results"
    DKIM = "dkim"


@dataclass(frozen=True)
class Verdict:
    """What sender authentication found: ``checked`` is False when nothing was checked (sender_auth = none)."""

    checked: bool
    authenticated: bool
    reason: str

    @classmethod
    def unchecked(cls) -> Verdict:
        return cls(checked=False, authenticated=False, reason="sender_auth = none: the sender is not checked")

    @classmethod
    def passed(cls, reason: str) -> Verdict:
        return cls(checked=True, authenticated=True, reason=reason)

    @classmethod
    def failed(cls, reason: str) -> Verdict:
        return cls(checked=True, authenticated=False, reason=reason)


@functools.cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the list shipped with the package, read once


def organisational_domain(domain: str) -> str:
    """The registrable domain DMARC aligns on: mail.bayside.k12.ca.us → bayside.k12.ca.us."""
    name = domain.strip().strip(".").lower()
    return _suffixes().privatesuffix(name) or name


def aligned(domain: str, from_domain: str) -> bool:
    """Relaxed DMARC alignment: both domains belong to the same organisational domain."""
    if not domain or not from_domain:
        return False
    return organisational_domain(domain) == organisational_domain(from_domain)


def dkim_verdict(passing_domains: Iterable[str], from_domain: str, failures: Sequence[str] = ()) -> Verdict:
    """Authenticated when a DKIM signature that verified was made by a domain aligned with the From domain."""
    domains = [d.lower() for d in passing_domains]
    match = next((d for d in domains if aligned(d, from_domain)), None)
    if match:
        return Verdict.passed(f"DKIM signature of {match} verified, aligned with {from_domain}")
    if domains:
        return Verdict.failed(f"DKIM signatures verified only for {', '.join(domains)}, not aligned with "
                              f"the From domain {from_domain}")
    if failures:
        return Verdict.failed("no DKIM signature verified: " + "; ".join(failures))
    return Verdict.failed("the message has no DKIM signature")


def read_authentication_results(values: Sequence[str], trusted_ids: frozenset[str], from_domain: str) -> Verdict:
    """The verdict of the topmost Authentication-Results header a trusted server added.

    ``values`` are the header's values in the order they appear (topmost, the
    last one added, first). Our MTA adds its header on top; any header below
    it with our authserv-id was written by someone else and is not read.
    """
    header = next((value for value in values if _authserv_id(value) in trusted_ids), None)
    if header is None:
        return Verdict.failed(f"no Authentication-Results header from a trusted server "
                              f"({', '.join(sorted(trusted_ids))})")
    try:
        parsed = authres.AuthenticationResultsHeader.parse("Authentication-Results: " + " ".join(header.split()))
    except Exception as exc:  # authres raises several kinds on bad syntax; any of them is "cannot read"
        return Verdict.failed(f"the Authentication-Results header of {_authserv_id(header)} cannot be read "
                              f"({type(exc).__name__})")
    server = str(parsed.authserv_id).lower()
    results = [(str(r.method).lower(), str(r.result).lower(), _properties(r)) for r in parsed.results]
    dmarc = next((result for method, result, _ in results if method == "dmarc"), None)
    if dmarc == "pass":
        return Verdict.passed(f"DMARC pass ({server})")
    if dmarc is not None and dmarc not in ("none", "neutral"):
        return Verdict.failed(f"DMARC {dmarc} for {from_domain} ({server})")
    # No DMARC verdict (the domain publishes no record, or the server does not check DMARC):
    # an SPF or DKIM pass for a domain aligned with the From domain is what DMARC would require.
    for method, result, properties in results:
        if result != "pass":
            continue
        if method == "spf":
            domain = _domain_of(properties.get("smtp.mailfrom") or properties.get("smtp.helo") or "")
        elif method == "dkim":
            domain = _domain_of(properties.get("header.d") or properties.get("header.i") or "")
        else:
            continue
        if aligned(domain, from_domain):
            return Verdict.passed(f"{method.upper()} pass for {domain}, aligned with {from_domain} ({server})")
    summary = ", ".join(f"{method}={result}" for method, result, _ in results) or "no results"
    return Verdict.failed(f"no SPF or DKIM pass aligned with {from_domain} ({server}: {summary})")


def _authserv_id(value: str) -> str:
    """The authserv-id of a header value, read without the full parser (so an unreadable header is still known)."""
    first = value.split(";", 1)[0].strip()
    return first.split()[0].lower() if first else ""


def _properties(result: object) -> dict[str, str]:
    return {f"{p.type}.{p.name}".lower(): str(p.value) for p in getattr(result, "properties", [])}


def _domain_of(value: str) -> str:
    return value.rpartition("@")[2].strip().strip(".").lower()
