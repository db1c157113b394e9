"""One verdict per message on whether its From address is genuine, as `[security] sender_auth` says to check."""
from __future__ import annotations

import logging

import dkim  # type: ignore[import-untyped]  # dkimpy ships no type information

from intake.config import SecurityConfig
from intake.trust.dns import DnsUnavailable, TxtLookup, txt_lookup
from parsers.submission import Submission
from routing.authenticity import SenderAuth, Verdict, dkim_verdict, read_authentication_results

__all__ = ["authenticate", "verify_dkim"]

log = logging.getLogger(__name__)


def authenticate(raw: bytes, submission: Submission, security: SecurityConfig,
                 lookup: TxtLookup | None = None) -> Verdict:
    """The verdict on ``raw``'s From address; DNS is asked only when sender_auth = dkim."""
    message = submission.message
    if security.sender_auth is SenderAuth.NONE or message is None or not message.from_address:
        return Verdict.unchecked()
    from_domain = message.from_address.rpartition("@")[2]
    if security.sender_auth is SenderAuth.AUTHENTICATION_RESULTS:
        return read_authentication_results(message.header_all("Authentication-Results"),
                                           security.trusted_authserv_ids, from_domain)
    return verify_dkim(raw, from_domain, lookup or txt_lookup(security.dns_server))


def verify_dkim(raw: bytes, from_domain: str, lookup: TxtLookup) -> Verdict:
    """Verify every DKIM signature of ``raw`` (dkimpy); authenticated when one aligned with the From domain passes."""
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # as the message travelled over SMTP
    passing: list[str] = []
    failures: list[str] = []
    checker = dkim.DKIM(raw)
    signatures = [value for name, value in checker.headers if name.lower() == b"dkim-signature"]
    for index, value in enumerate(signatures):
        domain = _tag(value, b"d") or "(no d= tag)"
        try:
            good = checker.verify(idx=index, dnsfunc=lookup)
        except DnsUnavailable as exc:
            failures.append(f"{domain}: DNS did not answer ({exc})")
            continue
        except dkim.DKIMException as exc:
            failures.append(f"{domain}: {exc}")
            continue
        except Exception as exc:  # dkimpy on hostile input: a signature we cannot check is not a pass
            log.info("DKIM check of %s raised %s", domain, type(exc).__name__)
            failures.append(f"{domain}: cannot be checked ({type(exc).__name__})")
            continue
        if good:
            passing.append(domain)
        else:
            failures.append(f"{domain}: the signature does not verify")
    return dkim_verdict(passing, from_domain, failures)


def _tag(value: bytes, name: bytes) -> str | None:
    for part in value.split(b";"):
        key, _, tag_value = part.partition(b"=")
        if key.strip() == name:
            return b"".join(tag_value.split()).decode("ascii", "replace").lower()
    return None
