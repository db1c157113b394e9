"""Sender authentication at the edge: the checks that need the network (DNS), before the decision.

store raw → parse → **authenticate** → decide → act. The rules of what
counts as authenticated are pure (`routing.authenticity`); here are only the
parts that look something up: DKIM public keys in DNS. `authenticate` returns
one `Verdict` per message, which the decision reads.
"""
from intake.trust.sender import authenticate

__all__ = ["authenticate"]
