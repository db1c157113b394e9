"""TXT records from DNS, for DKIM public keys: the system's resolver, or the one `[security] dns_server` names."""
from __future__ import annotations

from collections.abc import Callable

import dns.exception
import dns.resolver

__all__ = ["TxtLookup", "txt_lookup"]

# dkimpy's dnsfunc: a name (bytes) → the TXT record's text (bytes), or None when there is none.
TxtLookup = Callable[..., bytes | None]

LOOKUP_SECONDS = 5.0


class DnsUnavailable(Exception):
    """The resolver did not answer in time; the signature is neither good nor bad."""


def txt_lookup(server: str | None = None) -> TxtLookup:
    """A TXT lookup through ``server`` ("HOST" or "HOST:PORT"), or the system's resolver when None."""
    resolver = dns.resolver.Resolver(configure=server is None)
    if server is not None:
        host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
        resolver.nameservers = [host or server]
        if port:
            resolver.port = int(port)

    def lookup(name: bytes, timeout: float = LOOKUP_SECONDS) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode("ascii"), "TXT", lifetime=timeout, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers, UnicodeDecodeError):
            return None
        except (dns.exception.Timeout, dns.resolver.NoResolverConfiguration) as exc:
            raise DnsUnavailable(str(exc)) from exc
        for record in answer.rrset or ():
            return b"".join(record.strings)
        return None

    return lookup
