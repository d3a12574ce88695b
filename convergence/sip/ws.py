# -*- test-case-name: tests.test_sip_ws -*-
"""
SIP over WebSocket (RFC 7118): a SIP transport beside UDP and TCP.

The WebSocket handshake and framing are autobahn's (RFC 6455); this module
is the SIP side of one connection.  The handshake must offer the C{sip}
subprotocol (RFC 7118 section 4.1); one that does not is refused with
C{400} before the upgrade.  Each WebSocket message, text or binary, is one
SIP message (section 5): no Content-Length framing, though a
Content-Length that is present must match the body (else C{400}).  A
message of nothing but CRLFs is a keepalive: a double CRLF is answered
with a single one (the RFC 5626 ping the SIP.js library sends).

The connection is a flow: its L{Peer} (transport C{WS}, or C{WSS} under
TLS) is what the transport layer sends down, the registrar binds the
contacts registered through it to it (RFC 7118 section 5.3, RFC 5626), and
when it closes the transport layer tells the stack (L{flow_closed
<convergence.sip.transport.SipTransportLayer.flow_closed>}), which
removes those registrations.  Responses to requests that came over it go
back over it, whatever the Via says (the client's Via host is a
C{.invalid} name, section 5.2).
"""

from __future__ import annotations

from typing import Any

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.interfaces import ISSLTransport
from twisted.logger import Logger

from convergence.sip.transport import Peer, SipTransportLayer

log = Logger()

#: The WebSocket subprotocol of SIP (RFC 7118 section 4.1, IANA registry).
SUBPROTOCOL = "sip"

#: WebSocket close code sent when the server shuts down (RFC 6455 7.4.1).
GOING_AWAY = 1001


class SipWebSocketProtocol(WebSocketServerProtocol):
    """One SIP WebSocket connection (server side)."""

    layer: SipTransportLayer
    #: the flow (set when the connection opens; C{peer} is autobahn's)
    sip_peer: Peer | None = None

    # Handshake
    def onConnect(self, request: Any) -> str:
        """Accept only clients offering the C{sip} subprotocol."""
        if SUBPROTOCOL not in request.protocols:
            log.info("refused a WebSocket handshake from {peer} without the sip"
                     " subprotocol (offered: {offered})", peer=request.peer,
                     offered=", ".join(request.protocols) or "none")
            raise ConnectionDeny(ConnectionDeny.BAD_REQUEST,
                                 "The sip WebSocket subprotocol is required (RFC 7118)")
        return SUBPROTOCOL

    def failHandshake(self, reason: str, code: int = 400,
                      responseHeaders: Any = None) -> None:
        """A refused handshake: autobahn's answer, made a complete HTTP
        response (and a 426 names the protocol to upgrade to, RFC 9110 15.5.22)."""
        headers = list(responseHeaders or [])
        names = {name.lower() for name, _ in headers}
        if code == 426 and "upgrade" not in names:
            headers.append(("Upgrade", "websocket"))
        headers += [("Content-Length", "0"), ("Connection", "close")]
        super().failHandshake(reason, code, headers)

    def onOpen(self) -> None:
        address = self.transport.getPeer()
        secure = ISSLTransport.providedBy(self.transport)
        self.sip_peer = Peer("WSS" if secure else "WS", address.host, address.port,
                         connection=self)
        self.layer.ws_connection_made(self)

    # Messages (C{connected} is Twisted's: true until the connection is lost)
    @property
    def can_send(self) -> bool:
        """Whether SIP messages can still be sent (no closing handshake yet)."""
        return self.state == self.STATE_OPEN

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.sip_peer is None:
            return
        if not payload.strip(b"\r\n"):
            if payload == b"\r\n\r\n":
                self.sendMessage(b"\r\n")
            return
        self.layer.message_received(payload, self.sip_peer, exact_length=True)

    def send(self, data: bytes) -> None:
        """Send one SIP message: a text frame when it is UTF-8, else binary."""
        if not self.can_send:
            log.info("dropped a SIP message for closed WebSocket {peer}",
                     peer=str(self.sip_peer))
            return
        try:
            data.decode("utf-8")
            binary = False
        except UnicodeDecodeError:
            binary = True
        self.sendMessage(data, isBinary=binary)

    # End
    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self.sip_peer is not None:
            log.debug("SIP WebSocket {peer} closed ({code})", peer=str(self.sip_peer),
                      code=code)
            self.layer.ws_connection_lost(self)

    def close(self) -> None:
        """Close the connection (the server is stopping)."""
        if self.can_send:
            self.sendClose(GOING_AWAY, "server shutting down")


class SipWebSocketFactory(WebSocketServerFactory):
    """
    Builds the SIP WebSocket connections of one stack (mounted on the HTTP
    listener by L{convergence.http.wsupgrade.WebSocketUpgrade}).
    """

    protocol = SipWebSocketProtocol
    noisy = False

    def __init__(self, layer: SipTransportLayer, reactor: Any = None,
                 ping_interval: float = 0.0) -> None:
        """
        @param ping_interval: seconds between WebSocket pings, each to be
            answered within as many, else the connection is dropped (a
            client gone without closing); 0: no pings.
        """
        super().__init__(protocols=[SUBPROTOCOL], reactor=reactor, server=None)
        self.layer = layer
        # One SIP message per WebSocket message: the SIP size limit is the
        # message limit (larger ones: close code 1009, RFC 6455 7.4.1).
        # A protocol error is answered with a close frame naming it (1002,
        # 1007, 1009) before the TCP connection is dropped, not a bare drop.
        self.setProtocolOptions(maxMessagePayloadSize=layer.max_message_size,
                                maxFramePayloadSize=layer.max_message_size,
                                failByDrop=False,
                                # a plain GET gets an error, not autobahn's status page
                                webStatus=False)
        if ping_interval:
            self.setProtocolOptions(autoPingInterval=ping_interval,
                                    autoPingTimeout=ping_interval)

    def buildProtocol(self, addr: Any) -> SipWebSocketProtocol:
        protocol = super().buildProtocol(addr)
        protocol.layer = self.layer
        return protocol
