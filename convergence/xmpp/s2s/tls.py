# -*- test-case-name: tests.test_s2s_identity -*-
"""
TLS for server-to-server streams, on pyOpenSSL through Twisted's
C{startTLS} (federation has few streams; the memory-lean stdlib layer of
L{convergence.starttls} cannot ask a client for a certificate it will not
verify during the handshake).  Both sides present the server certificate
and ask for the peer's; the handshake accepts whatever comes, and
L{convergence.xmpp.s2s.identity} judges it afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from OpenSSL import SSL
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
)
from zope.interface import implementer

#: ALPN protocol of server streams over direct TLS (XEP-0368)
ALPN_XMPP_SERVER = b"xmpp-server"


def _accept_any(connection: Any, cert: Any, errno: int, depth: int, ok: int) -> bool:
    return True


def context(certificate: Path, private_key: Path | None = None,
            alpn: bool = False) -> SSL.Context:
    """A TLS 1.2+ context presenting our certificate, asking for the peer's."""
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_options(SSL.OP_NO_RENEGOTIATION if hasattr(SSL, "OP_NO_RENEGOTIATION") else 0)
    ctx.use_certificate_chain_file(str(certificate))
    ctx.use_privatekey_file(str(private_key or certificate))
    ctx.set_verify(SSL.VERIFY_PEER, _accept_any)
    if alpn:
        ctx.set_alpn_protos([ALPN_XMPP_SERVER])
    return ctx


@implementer(IOpenSSLServerConnectionCreator)
class ServerTls:
    """The receiving side's TLS (STARTTLS on the s2s port)."""

    def __init__(self, certificate: Path, private_key: Path | None = None) -> None:
        self.ctx = context(certificate, private_key)
        self.ctx.set_alpn_select_callback(_select_alpn)

    def serverConnectionForTLS(self, protocol: Any) -> SSL.Connection:
        return SSL.Connection(self.ctx, None)


def _select_alpn(connection: Any, offered: list[bytes]) -> bytes:
    return ALPN_XMPP_SERVER if ALPN_XMPP_SERVER in offered else SSL.NO_OVERLAPPING_PROTOCOLS


@implementer(IOpenSSLClientConnectionCreator)
class ClientTls:
    """The initiating side's TLS toward one domain (SNI: the domain)."""

    def __init__(self, ctx: SSL.Context, domain: str) -> None:
        self.ctx = ctx
        self.domain = domain

    def clientConnectionForTLS(self, protocol: Any) -> SSL.Connection:
        connection = SSL.Connection(self.ctx, None)
        connection.set_tlsext_host_name(self.domain.encode("idna"))
        connection.set_connect_state()
        return connection
