# -*- test-case-name: tests.test_sip_core -*-
"""
SIP over UDP and TCP (RFC 3261 section 18, RFC 3581), and the flows of SIP
over WebSocket (RFC 7118, L{convergence.sip.ws}).

Bytes in, parsed messages up to the transaction layer; messages down, bytes
out.  Requests get C{received}/C{rport} stamped on their top Via; responses
go back where RFC 3261 18.2.2 and RFC 3581 say.  TCP connections, accepted
or opened, are kept per remote address and reused.  WebSocket connections
are only accepted (on the HTTP listener): each is a flow, named by its
L{Peer.flow} token, that messages to its client must go down; when one
closes, the receiver's C{flow_closed} is told.  Malformed input is
answered with C{400} when it can be answered and dropped otherwise; it
never takes down a listener.  With a L{RateLimiter}, requests over a
source's rate are answered C{503} with C{Retry-After}, or dropped.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Protocol

from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import ClientFactory, DatagramProtocol, Factory
from twisted.internet.protocol import Protocol as StreamProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.entropy import random_hex
from convergence.sip.framing import PING, FramingError, StreamFramer
from convergence.sip.message import Request, Response, SipParseError, parse_message
from convergence.sip.ratelimit import ALLOW, DROP, RateLimiter

log = Logger()


@dataclass(eq=False, slots=True)
class Peer:
    """Where a message came from, or where one goes."""

    transport: str  # "UDP", "TCP", "WS" or "WSS"
    host: str
    port: int
    connection: Any = None
    #: called if a connection to the peer cannot be made
    errors: list[Callable[[], None]] | None = None

    def on_error(self, callback: Callable[[], None]) -> None:
        """Call C{callback} if the transport cannot reach the peer."""
        if self.errors is None:
            self.errors = []
        self.errors.append(callback)

    @property
    def reliable(self) -> bool:
        return self.transport != "UDP"

    @property
    def flow(self) -> str:
        """The flow token of this peer (C{ws:host:port}), as the registrar
        stores it in a binding's C{received}."""
        return f"{self.transport.lower()}:{self.host}:{self.port}"

    @property
    def connection_bound(self) -> bool:
        """Whether the peer is only reachable through its connection (WebSocket)."""
        return self.transport in WS_TRANSPORTS

    def __str__(self) -> str:
        return f"{self.transport}:{self.host}:{self.port}"


#: Transports whose peers can only be reached over the connection they opened.
WS_TRANSPORTS = frozenset(("WS", "WSS"))


class WireResponse(NamedTuple):
    """
    A response sent over UDP as it went on the wire: what a transaction
    keeps to retransmit it (bytes and an address).  L{send_response} also
    takes it as a plain tuple of the same fields, which is what a waiting
    transaction's record keeps (a plain tuple of strings, numbers and
    bytes is not walked by the garbage collector).
    """

    status: int
    data: bytes
    host: str
    port: int


class ResponseChannel:
    """Sends the responses to one request back to its source (the C{send}
    of a server transaction).  Requests from one UDP source share one
    (L{SipTransportLayer.channel}); a received Peer is never changed."""

    __slots__ = ("layer", "peer")

    def __init__(self, layer: "SipTransportLayer", peer: Peer) -> None:
        self.layer = layer
        self.peer = peer

    def __call__(self, response: Response | WireResponse) -> WireResponse | None:
        return self.layer.send_response(response, self.peer)


class MessageReceiver(Protocol):
    """The layer above (the transaction layer, through the stack)."""

    def request_received(self, request: Request, peer: Peer) -> None:
        ...

    def response_received(self, response: Response, peer: Peer) -> None:
        ...

    def flow_closed(self, peer: Peer) -> None:
        ...


#: Linux's SO_RCVBUFFORCE (asm-generic/socket.h), which Python does not name
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE",
                          33 if sys.platform.startswith("linux") else None)


def set_receive_buffer(sock: socket.socket, size: int) -> int:
    """
    Ask for a C{size}-byte kernel receive buffer on C{sock}: in full where
    allowed (C{SO_RCVBUFFORCE}, Linux, privileged), else as much as
    C{net.core.rmem_max} allows.  Returns what the kernel granted (bytes of
    payload, half of what Linux reports).
    """
    force = _SO_RCVBUFFORCE
    try:
        if force is None:
            raise PermissionError
        sock.setsockopt(socket.SOL_SOCKET, force, size)
    except OSError:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        except OSError as e:
            log.warn("cannot set the SIP UDP receive buffer: {error}", error=e)
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    if sys.platform.startswith("linux"):
        granted //= 2  # Linux doubles the value for its bookkeeping
    if granted < size:
        log.info("SIP UDP receive buffer is {granted} bytes, not the {size} configured "
                 "(raise net.core.rmem_max, or run with CAP_NET_ADMIN)",
                 granted=granted, size=size)
    return granted


#: addresses remembered as sendable before the set is emptied
SENDABLE_HOSTS = 4096
#: UDP sources whose Peer (and response channel) is kept for reuse
UDP_PEERS = 4096


def new_branch() -> str:
    """A fresh RFC 3261 branch with the magic cookie."""
    return "z9hG4bK" + random_hex(8)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


class SipTransportLayer:
    """UDP and TCP transports of one SIP stack."""

    def __init__(self, reactor: Any, receiver: MessageReceiver, host: str,
                 max_message_size: int = 65536, udp_receive_buffer: int = 0,
                 rate_limiter: RateLimiter | None = None) -> None:
        self.reactor = reactor
        #: requests per source (None: unlimited)
        self.rate_limiter = rate_limiter
        self.receiver = receiver
        self.host = host
        self.max_message_size = max_message_size
        #: bytes of kernel buffer asked for the UDP socket (0: the system's)
        self.udp_receive_buffer = udp_receive_buffer
        self.udp: SipDatagramProtocol | None = None
        self.udp_port = 0
        self.tcp_port = 0
        self.connections: dict[tuple[str, int], SipStreamProtocol] = {}
        #: the SIP WebSocket connections by flow token (L{Peer.flow})
        self.ws_connections: dict[str, Any] = {}
        #: the port of the HTTP listener serving SIP over WebSocket (0: none)
        self.ws_port = 0
        #: IP addresses the UDP port's write() took (see _send_datagram)
        self._sendable: set[str] = set()
        #: counters for the metrics endpoint: messages received by
        #: transport, messages dropped or refused by reason, TCP accepts
        self.received: dict[str, int] = {}
        self.dropped: dict[str, int] = {}
        self.tcp_accepted = 0
        #: WebSocket connections opened, by transport ("WS", "WSS")
        self.ws_accepted: dict[str, int] = {}
        #: The response channel of each shared UDP Peer (by identity).
        self._channels: dict[Peer, ResponseChannel] = {}

    # Listening
    def listen(self, port: int, interface: str) -> list[Any]:
        """Listen on UDP and TCP C{port}; return the listening ports."""
        from twisted.internet.error import CannotListenError

        attempts = 20 if port == 0 else 1  # port 0: the same free port for both
        for attempt in range(attempts):
            self.udp = SipDatagramProtocol(self)
            self._sendable = set()
            udp = self.reactor.listenUDP(port, self.udp, interface=interface)
            self.udp_port = udp.getHost().port
            if self.udp_receive_buffer:
                set_receive_buffer(udp.getHandle(), self.udp_receive_buffer)
            try:
                tcp = self.reactor.listenTCP(self.udp_port, SipStreamFactory(self),
                                             interface=interface)
            except CannotListenError:
                udp.stopListening()
                if attempt == attempts - 1:
                    raise
                continue
            self.tcp_port = tcp.getHost().port
            return [udp, tcp]
        raise AssertionError("unreachable")

    def advertised_port(self, transport: str) -> int:
        if transport in WS_TRANSPORTS:
            return self.ws_port
        return self.tcp_port if transport != "UDP" else self.udp_port

    def via(self, transport: str, branch: str | None = None) -> str:
        """A Via value for a request we send over C{transport}."""
        return (f"SIP/2.0/{transport} {self._host_for_header()}:"
                f"{self.advertised_port(transport)};branch={branch or new_branch()};rport")

    def contact_uri(self, user: str | None, transport: str = "UDP") -> str:
        """A Contact URI reaching this stack."""
        userinfo = f"{user}@" if user else ""
        param = f";transport={transport.lower()}" if transport != "UDP" else ""
        return (f"sip:{userinfo}{self._host_for_header()}:"
                f"{self.advertised_port(transport)}{param}")

    def _host_for_header(self) -> str:
        host = self.host
        return f"[{host}]" if ":" in host and not host.startswith("[") else host

    def channel(self, peer: Peer) -> ResponseChannel:
        """The channel sending responses back to C{peer}: one per UDP
        source, so that the transactions waiting out their timers do not
        each hold a channel and a Peer of their own."""
        if peer.transport != "UDP":
            return ResponseChannel(self, peer)
        channels = self._channels
        channel = channels.get(peer)
        if channel is None:
            if len(channels) >= UDP_PEERS:
                channels.clear()
            channel = channels[peer] = ResponseChannel(self, peer)
        return channel

    # Incoming
    def message_received(self, data: bytes, peer: Peer, exact_length: bool = False) -> None:
        """
        Parse one complete message and pass it up.

        @param exact_length: bytes past the Content-Length are an error
            (a WebSocket message holds exactly one SIP message).
        """
        received = self.received
        received[peer.transport] = received.get(peer.transport, 0) + 1
        verdict = ALLOW
        limiter = self.rate_limiter
        if limiter is not None:
            start = data[:4]
            if start != b"SIP/" and start != b"ACK ":  # a request, not an ACK
                verdict = limiter.admit(peer.host)
                if verdict == DROP:
                    self.count_dropped("rate_limited")
                    return
        try:
            message = parse_message(data, exact_length)
        except SipParseError as e:
            self._bad_message(e, peer)
            return
        try:
            if isinstance(message, Request):
                if verdict != ALLOW and message.method != "ACK":
                    self._refuse(message, peer)
                    return
                self._stamp_via(message, peer)
                self.receiver.request_received(message, peer)
            else:
                self.receiver.response_received(message, peer)
        except Exception:
            log.failure("error handling a SIP message from {peer}", peer=str(peer))

    def count_dropped(self, reason: str) -> None:
        """One message dropped or refused for C{reason} (the metrics)."""
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def _bad_message(self, error: SipParseError, peer: Peer) -> None:
        # Per message, so at debug level (a flood must not flood the log);
        # counted in convergence_sip_messages_dropped_total.
        request = error.partial
        if request is None:
            self.count_dropped("unparseable")
            log.debug("dropped an unparseable SIP message from {peer}: {reason}",
                      peer=str(peer), reason=error.reason)
            return
        self.count_dropped("malformed")
        if request.method == "ACK":
            return
        log.debug("answering {status} {reason} to {peer}", status=error.status,
                  reason=error.reason, peer=str(peer))
        try:
            self._stamp_via(request, peer)
            self.send_response(request.create_response(error.status, error.reason), peer)
        except Exception:
            log.failure("could not answer a bad request from {peer}", peer=str(peer))

    def _refuse(self, request: Request, peer: Peer) -> None:
        """A request over its source's rate: 503 with Retry-After."""
        assert self.rate_limiter is not None
        self.count_dropped("rate_limited")
        self._stamp_via(request, peer)
        response = request.create_response(503)
        response.headers.add("Retry-After", str(self.rate_limiter.retry_after(peer.host)))
        self.send_response(response, peer)

    @staticmethod
    def _stamp_via(request: Request, peer: Peer) -> None:
        """RFC 3261 18.2.1 and RFC 3581 4: received and rport."""
        via = request.top_via
        has_rport = "rport" in via.params
        if via.host.strip("[]") == peer.host and not has_rport:
            return
        via = via.copy()
        via.params["received"] = peer.host
        if has_rport:
            via.params["rport"] = str(peer.port)
        request.set_top_via(via)

    # Outgoing
    def send_response(self, response: Response | WireResponse,
                      peer: Peer) -> WireResponse | None:
        """
        Send a response where RFC 3261 18.2.2 / RFC 3581 say.

        @return: for UDP, the response as sent, which can be passed back
            here to retransmit it.
        """
        if isinstance(response, tuple):  # a WireResponse, or its plain tuple
            self._send_datagram(response[1], response[2], response[3])
            return response
        data = response.serialize()
        via = response.top_via
        if peer.reliable:
            connection = peer.connection
            if connection is not None and connection.connected:
                connection.send(data)
                return None
            if peer.connection_bound:
                # RFC 7118 5.2: only the connection reaches the client
                log.info("dropped a {status} for {peer}: its WebSocket is closed",
                         status=response.status, peer=str(peer))
                return None
            host = via.received or via.host
            self._send_stream(data, Peer("TCP", host, via.sent_by[1]))
            return None
        host = via.params.get("maddr") or via.received or via.host
        rport = via.params.get("rport")
        port = int(rport) if rport else via.sent_by[1]
        wire = WireResponse(response.status, data, host, port)
        self._send_datagram(data, host, port)
        return wire

    def send_request(self, request: Request, target: Peer) -> None:
        """Send a request to C{target} (an IP address)."""
        data = request.serialize()
        if target.connection_bound:
            self._send_flow(data, target)
        elif target.reliable:
            self._send_stream(data, target)
        else:
            self._send_datagram(data, target.host, target.port)

    def _send_datagram(self, data: bytes, host: str, port: int) -> None:
        udp = self.udp
        if udp is None or udp.transport is None:
            raise OSError("no UDP transport")
        transport = udp.transport
        address = (host.strip("[]"), port)
        if address[0] in self._sendable:
            # An address Twisted's write() accepted before on this socket:
            # skip its per-datagram address checks. Any error: Twisted
            # handles it as it would (nothing was sent).
            try:
                transport.socket.sendto(data, address)
                return
            except OSError:
                pass
        transport.write(data, address)
        sendable = self._sendable
        if len(sendable) >= SENDABLE_HOSTS:
            sendable.clear()
        if getattr(transport, "socket", None) is not None:
            sendable.add(address[0])

    def _send_flow(self, data: bytes, target: Peer) -> None:
        """Down a WebSocket connection; its closing is a transport error."""
        connection = target.connection
        if connection is not None and connection.connected:
            connection.send(data)
            return
        log.info("cannot send to {peer}: its WebSocket is closed", peer=str(target))
        errors = target.errors or []
        if errors:
            # after the sender registered its error callback (Peer.on_error)
            self.reactor.callLater(0, _call_all, list(errors))

    def flow(self, token: str | None) -> Peer | None:
        """The live WebSocket flow of a token (L{Peer.flow}), if any."""
        connection = self.ws_connections.get(token) if token else None
        if connection is None or not connection.connected:
            return None
        return connection.sip_peer

    def ws_connection_made(self, connection: Any) -> None:
        """A SIP WebSocket connection opened (its C{sip_peer} is set)."""
        self.ws_connections[connection.sip_peer.flow] = connection
        kind = connection.sip_peer.transport
        self.ws_accepted[kind] = self.ws_accepted.get(kind, 0) + 1

    def ws_connection_lost(self, connection: Any) -> None:
        """A SIP WebSocket connection closed: its flow is gone."""
        peer = connection.sip_peer
        if self.ws_connections.get(peer.flow) is connection:
            del self.ws_connections[peer.flow]
        flow_closed = getattr(self.receiver, "flow_closed", None)
        if flow_closed is not None:
            try:
                flow_closed(peer)
            except Exception:
                log.failure("error handling the end of flow {peer}", peer=str(peer))

    def close_flows(self) -> None:
        """Close every WebSocket connection (the server is stopping)."""
        for connection in list(self.ws_connections.values()):
            connection.close()

    def _send_stream(self, data: bytes, target: Peer) -> None:
        key = (target.host.strip("[]"), target.port)
        connection = self.connections.get(key)
        if connection is None:
            connection = SipStreamProtocol(self, outgoing=True)
            self.connections[key] = connection
            self.reactor.connectTCP(key[0], key[1], _Connector(connection), timeout=10)
        if target.errors:
            connection.failure_callbacks.extend(target.errors)
        connection.send(data)

    def connection_made(self, connection: "SipStreamProtocol", key: tuple[str, int]) -> None:
        self.connections.setdefault(key, connection)

    def connection_lost(self, connection: "SipStreamProtocol") -> None:
        for key, value in list(self.connections.items()):
            if value is connection:
                del self.connections[key]


def _call_all(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        callback()


class SipDatagramProtocol(DatagramProtocol):
    """The UDP listener."""

    def __init__(self, layer: SipTransportLayer) -> None:
        self.layer = layer
        #: One L{Peer} per source address, shared by its datagrams (and the
        #: transactions waiting on them), emptied when full.
        self._peers: dict[tuple[str, int], Peer] = {}

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) > self.layer.max_message_size:
            self.layer.count_dropped("too_large")
            log.debug("dropped a {size}-byte datagram from {host}:{port} (over the limit)",
                      size=len(data), host=addr[0], port=addr[1])
            return
        if not data.strip(b"\r\n"):
            return  # keepalive
        peer = self._peers.get(addr)
        if peer is None:
            peers = self._peers
            if len(peers) >= UDP_PEERS:
                peers.clear()
            peer = peers[addr] = Peer("UDP", addr[0], addr[1])
        self.layer.message_received(data, peer)


class SipStreamProtocol(StreamProtocol):
    """One TCP connection, accepted or opened, framed by Content-Length."""

    def __init__(self, layer: SipTransportLayer, outgoing: bool = False) -> None:
        self.layer = layer
        self.outgoing = outgoing
        self.framer = StreamFramer(layer.max_message_size)
        self.connected = False
        self.peer: Peer | None = None
        self._pending: list[bytes] = []
        self.failure_callbacks: list[Callable[[], None]] = []

    def connectionMade(self) -> None:
        self.connected = True
        address: IAddress = self.transport.getPeer()
        host, port = address.host, address.port  # type: ignore[attr-defined]
        self.peer = Peer("TCP", host, port, connection=self)
        self.layer.connection_made(self, (host, port))
        for data in self._pending:
            self.transport.write(data)
        self._pending = []

    def send(self, data: bytes) -> None:
        if self.connected:
            self.transport.write(data)
        else:
            self._pending.append(data)

    def dataReceived(self, data: bytes) -> None:
        try:
            messages = self.framer.feed(data)
        except FramingError as e:
            self._framing_failed(e.reason)
            return
        for message in messages:
            if message == PING:
                self.transport.write(b"\r\n")
            else:
                self.layer.message_received(message, self.peer)
        if self.framer.error is not None:  # after the messages before it
            self._framing_failed(self.framer.error)

    def _framing_failed(self, reason: str) -> None:
        log.info("closing SIP connection from {peer}: {reason}",
                 peer=str(self.peer), reason=reason)
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.connected = False
        self.layer.connection_lost(self)

    def connection_failed(self) -> None:
        self.layer.connection_lost(self)
        callbacks, self.failure_callbacks = self.failure_callbacks, []
        for callback in callbacks:
            callback()


class SipStreamFactory(Factory):
    """Accepts SIP TCP connections."""

    def __init__(self, layer: SipTransportLayer) -> None:
        self.layer = layer

    def buildProtocol(self, addr: Any) -> SipStreamProtocol:
        self.layer.tcp_accepted += 1
        return SipStreamProtocol(self.layer)


class _Connector(ClientFactory):
    """Connects one pre-built outgoing protocol."""

    noisy = False

    def __init__(self, protocol: SipStreamProtocol) -> None:
        self.protocol_instance = protocol

    def buildProtocol(self, addr: Any) -> SipStreamProtocol:
        return self.protocol_instance

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        log.info("SIP TCP connection to {dest} failed: {why}",
                 dest=connector.getDestination(), why=reason.getErrorMessage())
        self.protocol_instance.connection_failed()
