# -*- test-case-name: tests.test_sasl_external -*-
"""
SASL EXTERNAL for clients with TLS certificates (RFC 6120 13.8.4 and
9.3, XEP-0178 section 3).

With C{tls.client_ca} set, the c2s TLS layer asks clients for a
certificate and verifies it against that bundle
(L{convergence.tls.server_tls_context}).  The JIDs a verified certificate
speaks for are its XmppAddr (C{id-on-xmppAddr}) subjectAltNames that are
bare JIDs of the stream's domain; EXTERNAL is offered only on a stream
whose certificate names at least one.  The exchange:

  - an authzid (the initial response, or the answer to an empty
    challenge) must be one of those JIDs, else C{invalid-authzid};
  - without one, the certificate must name exactly one JID, else
    C{invalid-authzid} (the client must say which);
  - the account must exist, else C{not-authorized}.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from twisted.internet.defer import Deferred, succeed

from convergence.auth.errors import SaslError
from convergence.xmpp.jid import JID, InvalidJID
from convergence.xmpp.s2s.identity import xmpp_addrs
from convergence.xmpp.sasl import Challenge, Success

EXTERNAL = "EXTERNAL"


def certificate_jids(der: bytes | None, host: str) -> list[JID]:
    """The bare JIDs on C{host} a DER certificate's XmppAddrs name."""
    if not der:
        return []
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return []
    found: list[JID] = []
    for text in xmpp_addrs(cert):
        try:
            jid = JID.parse(text)
        except InvalidJID:
            continue
        if jid.user is not None and jid.resource is None and jid.host == host \
                and jid not in found:
            found.append(jid)
    return found


class ExternalMechanism:
    """One EXTERNAL exchange for the JIDs of the stream's certificate."""

    name = EXTERNAL

    def __init__(self, host: str, jids: list[JID], accounts: Any) -> None:
        self.host = host
        self.jids = jids
        self.accounts = accounts
        #: the bare JID tried, once known
        self.account: str | None = None

    def start(self, initial: bytes | None) -> Deferred:
        if initial is None:
            return succeed(Challenge(b""))
        return self.respond(initial)

    def respond(self, data: bytes) -> Deferred:
        jid = self._chosen(data)
        self.account = str(jid)

        def check(creds: Any) -> Success:
            if not creds:
                raise SaslError("not-authorized", "no such account")
            return Success(jid)

        return self.accounts.credentials(jid.user, jid.host).addCallback(check)

    def _chosen(self, data: bytes) -> JID:
        try:
            authzid = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SaslError("malformed-request", "authzid is not UTF-8") from None
        if not authzid:
            if len(self.jids) != 1:
                raise SaslError("invalid-authzid",
                                "the certificate names several JIDs: say which")
            return self.jids[0]
        try:
            wanted = JID.parse(authzid)
        except InvalidJID:
            raise SaslError("invalid-authzid", "not a JID") from None
        if wanted not in self.jids:
            raise SaslError("invalid-authzid", "the certificate does not name it")
        return wanted
