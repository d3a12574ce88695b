# -*- test-case-name: tests.test_starttls -*-
"""
STARTTLS on an established Twisted TCP connection with the standard
library's C{ssl} (an C{SSLObject} on memory BIOs).

Twisted's own C{startTLS} goes through pyOpenSSL, whose bundled OpenSSL
costs about twice the memory per connection of the system OpenSSL that
Python's C{ssl} links (measured in docs/performance.md); a server holding
thousands of idle client streams pays that on every one.

L{start_tls} slides a L{TLSTransport} between the TCP transport and the
protocol, as Twisted's C{startTLS} does: the TCP transport delivers
ciphertext to it, it delivers plaintext to the protocol, and the protocol
writes plaintext to it.
"""

from __future__ import annotations

import ssl
from typing import Any

from twisted.internet.interfaces import IProtocol, ISSLTransport, ITransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

log = Logger()

#: plaintext read from the TLS layer at a time
_READ_SIZE = 65536


@implementer(IProtocol, ITransport, ISSLTransport)
class TLSTransport:
    """
    TLS over a TCP transport: a protocol to the TCP transport below, a
    transport to the application protocol above.  Anything else asked of
    it (C{setTcpNoDelay}, C{getHandle} …) is the TCP transport's.
    """

    def __init__(self, tcp: Any, protocol: Any, context: ssl.SSLContext,
                 server_side: bool = True, server_hostname: str | None = None) -> None:
        self.tcp = tcp
        self.protocol = protocol
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=server_side,
                                     server_hostname=server_hostname)
        self.handshake_done = False
        self.disconnecting = False
        self._pending: list[bytes] = []  # plaintext written before the handshake ended
        self._closing = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tcp, name)

    # From the TCP transport
    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        self._incoming.write(data)
        if not self.handshake_done and not self._handshake():
            return
        while not self._closing:
            try:
                plaintext = self._tls.read(_READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLError as e:
                self._fail("TLS error", e)
                return
            if not plaintext:  # the peer's close_notify: answer it, close
                self.loseConnection()
                return
            self.protocol.dataReceived(plaintext)
        self._flush()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.protocol.connectionLost(reason)

    # To the application protocol
    def write(self, data: bytes) -> None:
        if self._closing:
            return
        if not self.handshake_done:
            self._pending.append(bytes(data))
            return
        try:
            self._tls.write(data)
        except ssl.SSLError as e:
            self._fail("TLS write failed", e)
            return
        self._flush()

    def writeSequence(self, data: list[bytes]) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """Send close_notify after what was written, then close TCP."""
        if self.disconnecting:
            return
        self.disconnecting = True
        if not self.handshake_done:
            self._closing = True
            self.tcp.loseConnection()
            return
        self._closing = True
        try:
            self._tls.unwrap()
        except ssl.SSLError:
            pass  # close_notify is written; the peer's is not waited for
        self._flush()
        self.tcp.loseConnection()

    def abortConnection(self) -> None:
        self._closing = True
        self.disconnecting = True
        self.tcp.abortConnection()

    def getPeerCertificate(self) -> dict[str, Any] | None:
        """The peer's certificate, if it sent one that was verified."""
        return self._tls.getpeercert() if self.handshake_done else None

    def peer_certificate_der(self) -> bytes | None:
        """The DER of the peer's verified certificate, if it sent one."""
        return self._tls.getpeercert(binary_form=True) if self.handshake_done else None

    @property
    def version(self) -> str | None:
        """The negotiated protocol version (C{"TLSv1.3"} …)."""
        return self._tls.version()

    @property
    def cipher(self) -> tuple[str, str, int] | None:
        return self._tls.cipher()

    # Internals
    def _handshake(self) -> bool:
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return False
        except ssl.SSLError as e:
            self._fail("TLS handshake failed", e)
            return False
        self.handshake_done = True
        self._flush()
        pending, self._pending = self._pending, []
        for data in pending:
            self.write(data)
        return True

    def _flush(self) -> None:
        if self._outgoing.pending:
            self.tcp.write(self._outgoing.read())

    def _fail(self, what: str, error: ssl.SSLError) -> None:
        peer = self.tcp.getPeer()
        log.info("{what} with {host}:{port}: {reason}", what=what,
                 host=getattr(peer, "host", "?"), port=getattr(peer, "port", "?"),
                 reason=error.reason or str(error))
        self._flush()  # the alert, if there is one
        self._closing = True
        self.disconnecting = True
        self.tcp.loseConnection()


def start_tls(protocol: Any, context: ssl.SSLContext, server_side: bool = True,
              server_hostname: str | None = None) -> TLSTransport:
    """
    Start TLS on C{protocol}'s TCP connection now: what it writes from here
    on is encrypted, and what it receives is decrypted first.
    """
    tcp = protocol.transport
    tls = TLSTransport(tcp, protocol, context, server_side, server_hostname)
    tcp.protocol = tls
    protocol.transport = tls
    return tls
