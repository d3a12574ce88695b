# -*- test-case-name: tests.test_metrics -*-
"""
The XMPP service's operational counters: plain integers bumped where the
event happens, read by the metrics collector (L{convergence.metrics}) only
when it is scraped, so counting costs an addition on the hot paths.
"""

from __future__ import annotations

from convergence.config import KNOWN_MECHANISMS

#: SASL failure conditions the server sends (RFC 6120 6.5); others count
#: as "other", so a peer cannot make up label values
SASL_CONDITIONS = frozenset((
    "aborted", "account-disabled", "credentials-expired", "encryption-required",
    "incorrect-encoding", "invalid-authzid", "invalid-mechanism", "malformed-request",
    "mechanism-too-weak", "not-authorized", "temporary-auth-failure",
))
_MECHANISMS = frozenset(KNOWN_MECHANISMS) | {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "EXTERNAL"}


class XmppStats:
    """Counters of one L{XmppServer} (connections, logins, offline storage)."""

    __slots__ = ("accepted", "logins", "sasl_failures", "offline_stored",
                 "offline_delivered")

    def __init__(self) -> None:
        #: client connections accepted, by transport label ("tcp", "tls" …)
        self.accepted: dict[str, int] = {}
        #: successful SASL authentications, by mechanism
        self.logins: dict[str, int] = {}
        #: failed SASL exchanges, by (mechanism, condition)
        self.sasl_failures: dict[tuple[str, str], int] = {}
        #: messages committed to offline storage / written to a client from it
        self.offline_stored = 0
        self.offline_delivered = 0

    def connection_accepted(self, transport: str) -> None:
        self.accepted[transport] = self.accepted.get(transport, 0) + 1

    def login(self, mechanism: str) -> None:
        self.logins[mechanism] = self.logins.get(mechanism, 0) + 1

    def sasl_failure(self, mechanism: str, condition: str) -> None:
        """One failed exchange; unknown names are counted as C{other}."""
        key = (mechanism if mechanism in _MECHANISMS else "other",
               condition if condition in SASL_CONDITIONS else "other")
        self.sasl_failures[key] = self.sasl_failures.get(key, 0) + 1
