"""
convergence.starttls over real loopback TCP: a line protocol that upgrades
to TLS on "STARTTLS", and a blocking standard-library client in a thread.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from convergence.starttls import TLSTransport, start_tls
from convergence.tls import generate_self_signed, server_tls_context


class UpgradingEcho(Protocol):
    """Plaintext until 'STARTTLS\\n'; then echoes, 'QUIT' closes."""

    def __init__(self, context: ssl.SSLContext, events: list) -> None:
        self.context = context
        self.events = events
        self.lost: Deferred = Deferred()

    def dataReceived(self, data: bytes) -> None:
        if not isinstance(self.transport, TLSTransport):
            if data == b"STARTTLS\n":
                self.transport.write(b"GO\n")
                start_tls(self, self.context)
                self.transport.write(b"HELLO\n")  # written before the handshake ends
            return
        self.events.append(data)
        if data.startswith(b"QUIT"):
            self.transport.write(b"BYE\n")
            self.transport.loseConnection()
        else:
            self.transport.write(data)

    def connectionLost(self, reason) -> None:
        self.lost.callback(reason.type)


def client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def read_line(sock) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        line += chunk
    return line


class StartTlsTests(TestCase):
    timeout = 20

    def setUp(self) -> None:
        pem = Path(self.mktemp())
        pem.write_bytes(generate_self_signed(["localhost"]))
        self.context = server_tls_context(pem)
        self.events: list = []
        self.protocols: list[UpgradingEcho] = []

        def build(addr):
            protocol = UpgradingEcho(self.context, self.events)
            self.protocols.append(protocol)
            return protocol

        factory = Factory.forProtocol(Protocol)
        factory.buildProtocol = build
        self.port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.address = ("127.0.0.1", self.port.getHost().port)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=5)
        sock.sendall(b"STARTTLS\n")
        assert read_line(sock) == b"GO\n"
        return sock

    async def test_echo_and_clean_close(self) -> None:
        """Data written before the handshake ended arrives first; echo works
        both ways; the server's close sends close_notify."""

        def client() -> tuple:
            with self.connect() as raw:
                tls = client_context().wrap_socket(raw)
                hello = read_line(tls)
                tls.sendall(b"ping\n")
                echo = read_line(tls)
                tls.sendall(b"QUIT\n")
                bye = read_line(tls)
                closed = tls.recv(100)  # b"": close_notify, not a reset
                return hello, echo, bye, closed, tls.version()

        hello, echo, bye, closed, version = await deferToThread(client)
        self.assertEqual((hello, echo, bye, closed), (b"HELLO\n", b"ping\n", b"BYE\n", b""))
        self.assertIn(version, ("TLSv1.2", "TLSv1.3"))
        await self.protocols[0].lost
        self.assertEqual(self.events, [b"ping\n", b"QUIT\n"])

    async def test_garbage_instead_of_a_handshake(self) -> None:
        """Not TLS after STARTTLS: that connection is closed, the listener
        serves the next one."""

        def garbage() -> bytes:
            with self.connect() as raw:
                raw.sendall(b"this is not a ClientHello\r\n" * 4)
                data = b""
                while True:
                    chunk = raw.recv(4096)
                    if not chunk:
                        return data
                    data += chunk

        answer = await deferToThread(garbage)
        self.assertNotIn(b"HELLO", answer)  # only an alert, if anything
        await self.protocols[0].lost
        self.assertEqual(self.events, [])
        await self.test_echo_and_clean_close()

    async def test_client_close_notify(self) -> None:
        """The client's close_notify is answered with ours, and the
        connection closes."""

        def client() -> None:
            with self.connect() as raw:
                tls = client_context().wrap_socket(raw)
                read_line(tls)
                tls.sendall(b"one\n")
                read_line(tls)
                tls.unwrap()

        await deferToThread(client)
        await self.protocols[0].lost
        self.assertEqual(self.events, [b"one\n"])

    def test_transport_delegates(self) -> None:
        """What TLS does not define is the TCP transport's."""

        class Tcp:
            protocol = None

            def getPeer(self):
                return "peer"

            def setTcpNoDelay(self, on):
                self.nodelay = on

        tcp = Tcp()
        protocol = Protocol()
        protocol.transport = tcp
        tls = start_tls(protocol, self.context)
        self.assertIs(protocol.transport, tls)
        self.assertIs(tcp.protocol, tls)
        self.assertEqual(tls.getPeer(), "peer")
        tls.setTcpNoDelay(True)
        self.assertTrue(tcp.nodelay)
        self.assertIsNone(tls.getPeerCertificate())
