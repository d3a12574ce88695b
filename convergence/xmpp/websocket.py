# -*- test-case-name: tests.test_xmpp_websocket -*-
"""
XMPP over WebSocket (RFC 7395) on the HTTP listener, with autobahn.

One WebSocket connection carries one L{C2SStream}, the very class that
serves TCP clients: the stream's parser is a L{FramedStreamParser} fed one
text message at a time, and its transport is a L{FrameTransport} that sends
each write as one text message.  SASL, binding, IM, stream management,
CSI, carbons, MAM and the applications therefore run unchanged; STARTTLS is
never offered (RFC 7395 3.8: TLS is the WebSocket's, C{wss://}).

The handshake must ask for the C{xmpp} subprotocol (else C{400}); the
per-address connection limit is enforced before it is accepted (C{503}).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

import autobahn.websocket.protocol as _autobahn_protocol
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import ISSLTransport
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.xmpp.c2s import C2SStream
from convergence.xmpp.wsframing import FramedStreamParser, frame

if TYPE_CHECKING:
    from convergence.xmpp.server import XmppServer

log = Logger()


class _LazyPformat:
    """C{pprint.pformat} when the log line is rendered, not before."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __str__(self) -> str:
        from pprint import pformat

        return pformat(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


# autobahn pretty-prints its configuration for a debug line on every new
# connection, whether or not debug is logged (about 1 ms a connection, 40 %
# of a handshake's CPU); its only other uses are debug lines too.
_autobahn_protocol.pformat = _LazyPformat  # type: ignore[attr-defined]

SUBPROTOCOL = "xmpp"

#: WebSocket close codes (RFC 6455 7.4.1).
CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED_DATA = 1003

#: Messages this much above C{max_stanza_size} are refused by the WebSocket
#: layer (close 1009) before they are buffered; below, the stream parser
#: answers C{policy-violation} exactly as over TCP.
SIZE_SLACK = 8192

#: XEP-0156 link relation of an XMPP over WebSocket endpoint.
ALT_CONNECTIONS_WEBSOCKET = "urn:xmpp:alt-connections:websocket"

#: How plain-HTTP WebSocket connections count (C{xmpp.websocket_secure}).
SECURE_POLICIES = ("loopback", "always", "never")


def counts_as_secure(policy: str, peer_host: str, tls: bool) -> bool:
    """
    Whether a WebSocket connection from C{peer_host} counts as encrypted:
    always over TLS; over plain HTTP per C{policy} (C{loopback}: a local
    TLS-terminating proxy, or a client on the same machine).
    """
    if tls or policy == "always":
        return True
    if policy == "never":
        return False
    try:
        return ipaddress.ip_address(peer_host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def websocket_url(configured: str, http_base: str, path: str) -> str:
    """
    The public URL of the endpoint: C{configured} if set, else C{path}
    under C{http_base} with C{http} turned into C{ws} (C{https}: C{wss}).
    """
    if configured:
        return configured
    scheme, _, rest = http_base.rstrip("/").partition("://")
    return ("wss" if scheme == "https" else "ws") + "://" + rest + path


def client_address(peer: Any, forwarded_for: str | None,
                   trusted: tuple[Any, ...]) -> Any:
    """
    The address a connection stands for: C{peer}, or, when C{peer} is a
    trusted proxy, the nearest address of C{X-Forwarded-For} (read from
    the right) that is not one (a client cannot choose what its proxy
    appends). An entry that is not an IP address stops the walk.
    """
    if not forwarded_for or not _in(getattr(peer, "host", ""), trusted):
        return peer
    found = peer
    for item in reversed(forwarded_for.split(",")):
        host = item.strip()
        if host.startswith("[") and "]" in host:
            host = host[1:host.index("]")]
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            break
        kind = IPv6Address if address.version == 6 else IPv4Address
        found = kind("TCP", str(address), 0)
        if not _in(str(address), trusted):
            break
    return found


def _in(host: str, networks: tuple[Any, ...]) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return any(address in network for network in networks)


class FrameTransport:
    """
    The transport a L{C2SStream} writes to over WebSocket: each write is
    one text message (after L{frame}); the rest is the socket's.
    """

    def __init__(self, ws: XmppWebSocketProtocol) -> None:
        self.ws = ws
        self.connected = True
        self.disconnecting = False

    def write(self, data: bytes) -> None:
        if self.disconnecting:
            return
        for message in frame(data):
            self.ws.sendMessage(message, False)

    def writeSequence(self, data: list[bytes]) -> None:
        for item in data:
            self.write(item)

    def loseConnection(self) -> None:
        """RFC 7395 3.6: after C{<close/>}, the WebSocket closing handshake."""
        if self.disconnecting:
            return
        self.disconnecting = True
        # sendClose only takes 1000 and 3000-4999; 1003 is RFC 6455's own
        self.ws.sendCloseFrame(code=self.ws.close_code, isReply=False)

    def abortConnection(self) -> None:
        self.disconnecting = True
        self.ws.dropConnection(abort=True)

    def getPeer(self) -> Any:
        return self.ws.peer_address

    def getHost(self) -> Any:
        return self.ws.transport.getHost()

    def pauseProducing(self) -> None:
        self.ws.transport.pauseProducing()

    def resumeProducing(self) -> None:
        if self.connected:
            self.ws.transport.resumeProducing()

    def setTcpNoDelay(self, enabled: bool) -> None:
        set_nodelay = getattr(self.ws.transport, "setTcpNoDelay", None)
        if set_nodelay is not None:
            set_nodelay(enabled)


class XmppWebSocketProtocol(WebSocketServerProtocol):
    """One WebSocket connection, carrying one client stream."""

    def __init__(self) -> None:
        super().__init__()
        self.stream: C2SStream | None = None
        self.frames: FrameTransport | None = None
        #: the close code of our WebSocket closing handshake
        self.close_code = CLOSE_NORMAL
        self.peer_address: Any = None

    def onConnect(self, request: ConnectionRequest) -> str:
        server: XmppServer = self.factory.xmpp
        if SUBPROTOCOL not in request.protocols:
            raise ConnectionDeny(ConnectionDeny.BAD_REQUEST,
                                 "the xmpp subprotocol is required (RFC 7395 3.1)")
        self.peer_address = client_address(
            self.transport.getPeer(), request.headers.get("x-forwarded-for"),
            self.factory.trusted_proxies)
        if not server.admit(self.peer_address):
            raise ConnectionDeny(ConnectionDeny.SERVICE_UNAVAILABLE,
                                 "too many connections from this address")
        if not self._secure() and server.config.require_tls:
            raise ConnectionDeny(ConnectionDeny.FORBIDDEN,
                                 "XMPP over WebSocket requires wss:// here")
        return SUBPROTOCOL

    def _secure(self) -> bool:
        # the connection's own peer (the proxy, if any), not X-Forwarded-For
        host = getattr(self.transport.getPeer(), "host", "")
        tls = ISSLTransport.providedBy(self.transport)
        return counts_as_secure(self.factory.secure_policy, host, tls)

    def onOpen(self) -> None:
        server = self.factory.xmpp
        stream = C2SStream(server)
        stream.starttls_possible = False
        stream.secure = self._secure()
        tls = ISSLTransport.providedBy(self.transport)
        stream.transport_label = "wss" if tls else "ws"  # the metrics' label
        stream.transport_note = " over WebSocket" + (
            " (TLS)" if tls else " (counted as secure)" if stream.secure else "")
        stream.parser = FramedStreamParser(
            stream._on_stream_start, stream._on_element, stream._on_stream_end,
            max_stanza_size=server.config.max_stanza_size)
        self.stream = stream
        self.frames = FrameTransport(self)
        stream.makeConnection(self.frames)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        stream = self.stream
        if stream is None:
            return
        if isBinary:
            # RFC 7395 3.2: text messages only.
            self.close_code = CLOSE_UNSUPPORTED_DATA
            stream.stream_error("bad-format", "XMPP over WebSocket uses text"
                                " messages only (RFC 7395 3.2)", wait=False)
            return
        if stream.closing and payload.lstrip().startswith(b"<close"):
            # the answer to our <close/> (RFC 7395 3.6), whatever the
            # state of the parser after a stream error
            stream._disconnect()
            return
        stream.dataReceived(payload)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        super().connectionLost(reason)
        forget_timers(self)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        stream, self.stream = self.stream, None
        if self.frames is not None:
            self.frames.connected = False
        if stream is not None:
            stream.connectionLost(Failure(ConnectionDone(
                f"WebSocket closed ({code})")))


def forget_timers(ws: Any) -> None:
    """Cancel what autobahn leaves pending once a connection is gone (its
    closing handshake timeout is only cancelled by the peer's answer)."""
    for name in ("closeHandshakeTimeoutCall", "serverConnectionDropTimeoutCall"):
        call = getattr(ws, name, None)
        if call is not None:
            setattr(ws, name, None)
            if getattr(call, "active", lambda: True)():
                call.cancel()


class PlainTimers:
    """
    autobahn's timer interface on the reactor's own C{callLater}: its
    default batches timers into buckets whose delayed calls outlive the
    calls cancelled in them (for up to a minute after a connection).
    """

    def __init__(self, clock: Any) -> None:
        self.clock = clock

    def call_later(self, delay: float, func: Any, *args: Any, **kwargs: Any) -> _Timer:
        return _Timer(self.clock.callLater(delay, func, *args, **kwargs))


class _Timer:
    def __init__(self, call: Any) -> None:
        self.call = call

    def cancel(self) -> None:
        if self.call.active():
            self.call.cancel()


class XmppWebSocketFactory(WebSocketServerFactory):
    """Builds an L{XmppWebSocketProtocol} per upgraded HTTP connection."""

    protocol = XmppWebSocketProtocol

    def __init__(self, server: XmppServer, secure_policy: str = "loopback") -> None:
        # server=None: no Server header naming the WebSocket library
        super().__init__(protocols=[SUBPROTOCOL], server=None)
        #: (not C{server}: autobahn's factory sends that as its Server header)
        self.xmpp = server
        self.secure_policy = secure_policy
        self.trusted_proxies = tuple(
            ipaddress.ip_network(n, strict=False)
            for n in server.config.websocket_trusted_proxies)
        limit = server.config.max_stanza_size + SIZE_SLACK
        self.setProtocolOptions(webStatus=False, maxFramePayloadSize=limit, maxMessagePayloadSize=limit,
                                openHandshakeTimeout=server.config.negotiation_timeout
                                or 10.0)
        self.noisy = False
        self._batched_timer = PlainTimers(server.clock)
