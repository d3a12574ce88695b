"""
A SIP test peer on real loopback sockets (UDP and TCP), written with the
stdlib and Twisted only, independent of the stack under test.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any, Callable

from twisted.internet import defer, reactor
from twisted.internet.protocol import ClientFactory, DatagramProtocol, Protocol

from convergence.config import load_config
from convergence.service import build

SEED_SDP = (
    "v=0\r\n"
    "o=romeo 28908764872 28908764872 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 39923 RTP/AVP 0\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "m=message 5222 xmpp/tcp chat\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "a=jid:romeo@localhost/orchard\r\n"
    "a=thread:283461923759234\r\n"
)

CONFIG = """
[sip]
challenge_invites = {challenge}
{sip_extra}
t1 = {t1}
t2 = {t2}
t4 = 0.5
min_expires = 60
# no federation: chat to a customer on another server bounces at once
[s2s]
enabled = false
[apps.ringer]
module = "tests.sipapps_ringer"
[apps.caller]
module = "tests.sipapps_caller"
[apps.dialer]
module = "tests.sipapps_dialer"
[apps.outcome]
module = "tests.sipapps_outcome"
"""


def start_server(tmpdir: str, t1: float = 0.05, t2: float = 0.4,
                 challenge_invites: bool = False,
                 algorithms: tuple[str, ...] | None = ("SHA-256", "MD5"),
                 sip_extra: str = "") -> tuple[Any, int]:
    """Build the whole server with the test apps; listen for SIP on a free port.

    @param algorithms: C{sip.digest_algorithms}; None leaves the default.
    @param sip_extra: more C{[sip]} lines.
    """
    if algorithms is not None:
        sip_extra += "\ndigest_algorithms = [" + ", ".join(
            f'"{a}"' for a in algorithms) + "]"
    root = Path(tmpdir)
    root.mkdir(parents=True)
    config_file = root / "c.toml"
    config_file.write_text(CONFIG.format(
        t1=t1, t2=t2, challenge="true" if challenge_invites else "false",
        sip_extra=sip_extra))
    config = load_config(config_file, {"data_dir": str(root / "data")})
    server = build(config, reactor)
    ports = server.sip.transport.listen(0, "127.0.0.1")
    server.sip_ports = ports
    return server, server.sip.transport.udp_port


def stop_server(server: Any) -> defer.Deferred:
    server.close()
    return defer.gatherResults([p.stopListening() for p in server.sip_ports if p])


class Parsed:
    """A received SIP message, parsed with plain string handling."""

    def __init__(self, data: bytes) -> None:
        self.raw = data
        head, _, self.body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.start = lines[0]
        self.headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers.append((name.strip().lower(), value.strip()))
        parts = self.start.split(" ", 2)
        self.status = int(parts[1]) if parts[0] == "SIP/2.0" else None
        self.method = None if self.status else parts[0]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name.lower():
                return value
        return None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]

    def __repr__(self) -> str:
        return f"<Parsed {self.start!r}>"


class Peer:
    """What UDP and TCP test peers share: a queue of received messages."""

    def __init__(self) -> None:
        self.received: list[Parsed] = []
        self._waiters: list[tuple[Callable[[Parsed], bool], defer.Deferred]] = []

    def got(self, data: bytes) -> None:
        message = Parsed(data)
        self.received.append(message)
        for waiter in list(self._waiters):
            predicate, d = waiter
            if predicate(message):
                self._waiters.remove(waiter)
                d.callback(message)

    def wait(self, predicate: Callable[[Parsed], bool], timeout: float = 5.0,
             since: int = 0) -> defer.Deferred:
        """The first message (already received after index C{since}, or later) matching."""
        for message in self.received[since:]:
            if predicate(message):
                return defer.succeed(message)
        d: defer.Deferred = defer.Deferred()
        entry = (predicate, d)
        self._waiters.append(entry)
        call = reactor.callLater(timeout, self._expire, entry)
        d.addBoth(lambda r: (call.active() and call.cancel(), r)[1])
        return d

    def _expire(self, entry: tuple) -> None:
        if entry in self._waiters:
            self._waiters.remove(entry)
            entry[1].errback(TimeoutError("no matching SIP message arrived"))

    def status(self, code: int, method: str | None = None) -> Callable[[Parsed], bool]:
        return lambda m: m.status == code and (
            method is None or (m.header("cseq") or "").endswith(method))


class UdpPeer(Peer, DatagramProtocol):
    """A UDP SIP peer."""

    def __init__(self, server_port: int) -> None:
        Peer.__init__(self)
        self.server = ("127.0.0.1", server_port)
        self.listening = reactor.listenUDP(0, self, interface="127.0.0.1")
        self.port = self.listening.getHost().port

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.got(data)

    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.transport.write(data, self.server)

    def close(self) -> defer.Deferred:
        return defer.maybeDeferred(self.listening.stopListening)


class TcpPeer(Peer, Protocol):
    """A TCP SIP peer (one connection), framing by Content-Length."""

    def __init__(self) -> None:
        Peer.__init__(self)
        self.buffer = b""
        self.connected_d: defer.Deferred = defer.Deferred()

    def connectionMade(self) -> None:
        self.connected_d.callback(self)

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
            match = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
            length = int(match.group(1)) if match else 0
            if len(rest) < length:
                return
            self.got(head + b"\r\n\r\n" + rest[:length])
            self.buffer = rest[length:]

    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.transport.write(data)

    @classmethod
    def connect(cls, port: int) -> defer.Deferred:
        peer = cls()

        class F(ClientFactory):
            def buildProtocol(self, addr):
                return peer

        reactor.connectTCP("127.0.0.1", port, F())
        return peer.connected_d

    def close(self) -> None:
        self.transport.loseConnection()


def request(method: str, uri: str, port: int, *, transport: str = "UDP",
            call_id: str | None = None, cseq: int = 1, from_tag: str = "ft1",
            to_tag: str | None = None, branch: str | None = None, body: str = "",
            content_type: str | None = None, extra: str = "",
            to: str | None = None, max_forwards: int = 70) -> str:
    """A SIP request as text, from the test peer at 127.0.0.1:port."""
    to_header = to or f"<{uri}>"
    if to_tag:
        to_header += f";tag={to_tag}"
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/{transport} 127.0.0.1:{port};branch={branch or 'z9hG4bK' + secrets.token_hex(6)};rport",
        f"Max-Forwards: {max_forwards}",
        f"From: <sip:romeo@localhost>;tag={from_tag}",
        f"To: {to_header}",
        f"Call-ID: {call_id or secrets.token_hex(8)}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:romeo@127.0.0.1:{port}>",
    ]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if extra:
        lines.extend(extra.strip().split("\n"))
    lines.append(f"Content-Length: {len(body.encode())}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


class WsPeer(Peer):
    """
    A SIP WebSocket client (RFC 7118) on autobahn's client protocol: one
    connection, one SIP message per WebSocket message.
    """

    def __init__(self) -> None:
        Peer.__init__(self)
        self.protocol: Any = None
        self.opened: defer.Deferred = defer.Deferred()
        self.closed: defer.Deferred = defer.Deferred()
        self.close_code: int | None = None
        #: the .invalid host of its Via and Contact, as JsSIP makes them
        self.host = secrets.token_hex(6) + ".invalid"
        self.port = 0  # what request() writes in the Via: no port

    def send(self, data: bytes | str, binary: bool = False) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.protocol.sendMessage(data, isBinary=binary)

    def request(self, method: str, uri: str, **kwargs: Any) -> str:
        """A request as L{request} makes it, with this client's Via and Contact."""
        text = request(method, uri, 0, transport="WS", **kwargs)
        return (text.replace("127.0.0.1:0;", f"{self.host};")
                .replace("<sip:romeo@127.0.0.1:0>", f"<sip:romeo@{self.host};transport=ws>"))

    def close(self) -> defer.Deferred:
        if self.protocol is not None and self.protocol.state == self.protocol.STATE_OPEN:
            self.protocol.sendClose(1000)
        return self.closed

    @classmethod
    def connect(cls, port: int, path: str = "/sip",
                protocols: list[str] | None = None, tls: bool = False) -> "WsPeer":
        """Connect to ws://127.0.0.1:port/path (wss:// with C{tls}, not
        verifying the certificate) offering C{protocols} (["sip"])."""
        from autobahn.twisted.websocket import (
            WebSocketClientFactory,
            WebSocketClientProtocol,
        )

        peer = cls()

        class Client(WebSocketClientProtocol):
            def onOpen(self) -> None:
                peer.protocol = self
                peer.opened.callback(peer)

            def onMessage(self, payload: bytes, isBinary: bool) -> None:
                peer.got(payload)

            def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
                peer.close_code = code
                if not peer.opened.called:
                    peer.opened.errback(ConnectionError(reason or "handshake failed"))
                if not peer.closed.called:
                    peer.closed.callback(code)

        factory = WebSocketClientFactory(
            f"{'wss' if tls else 'ws'}://127.0.0.1:{port}{path}",
            protocols=["sip"] if protocols is None else protocols)
        factory.protocol = Client
        if tls:
            from twisted.internet.ssl import CertificateOptions

            reactor.connectSSL("127.0.0.1", port, factory, CertificateOptions(verify=False))
        else:
            reactor.connectTCP("127.0.0.1", port, factory)
        return peer


def listen_http(server: Any, tls: bool = False) -> Any:
    """Serve the server's HTTP site (with SIP over WebSocket) on a free
    port; with C{tls}, HTTPS with the server's certificate (Twisted's TLS)."""
    if tls:
        from twisted.internet.ssl import DefaultOpenSSLContextFactory

        pem = str(server.config.certificate_path)  # key and certificate
        options = DefaultOpenSSLContextFactory(pem, pem)
        port = reactor.listenSSL(0, server.http, options, interface="127.0.0.1")
    else:
        port = reactor.listenTCP(0, server.http, interface="127.0.0.1")
    server.sip.transport.ws_port = port.getHost().port
    server.sip_ports.append(port)
    return port.getHost().port
