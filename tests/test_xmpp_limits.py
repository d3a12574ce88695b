"""
Per-connection and per-address XMPP limits: read rate with back-pressure,
failed authentications per address and per account.
"""

from __future__ import annotations

import base64

from lxml import etree
from twisted.internet import protocol, reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from convergence.xmpp.c2s import C2SFactory
from convergence.xmpp.limits import FailureWindow, ReadRate
from tests.test_c2s import stream_error
from tests.xmpphelpers import HEADER, Client, make_server

SASL = "urn:ietf:params:xml:ns:xmpp-sasl"


def auth_plain(c: Client, user: str, password: str) -> None:
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    c.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>{token}</auth>")


def sasl_outcome(c: Client) -> str:
    """C{success}, or the condition of the SASL failure received."""
    element = c.read()[-1]
    if etree.QName(element).localname == "success":
        return "success"
    assert etree.QName(element).localname == "failure", etree.tostring(element)
    return etree.QName(element[0]).localname


class FailureWindowTests(SynchronousTestCase):
    def test_limit_within_window(self) -> None:
        """C{limit} failures inside the window exceed it; older ones expire."""
        clock = Clock()
        window = FailureWindow(clock, limit=3, window=60)
        for _ in range(2):
            window.record("a")
        self.assertFalse(window.exceeded("a"))
        window.record("a")
        self.assertTrue(window.exceeded("a"))
        self.assertFalse(window.exceeded("b"))
        clock.advance(61)
        self.assertFalse(window.exceeded("a"))
        self.assertEqual(len(window), 0)

    def test_bounded_table(self) -> None:
        """The table forgets the key whose last failure is oldest."""
        clock = Clock()
        window = FailureWindow(clock, limit=1, window=60, max_tracked=3)
        for key in "abcd":
            window.record(key)
            clock.advance(1)
        self.assertEqual(len(window), 3)
        self.assertFalse(window.exceeded("a"))
        self.assertTrue(window.exceeded("d"))


class ReadRateTests(SynchronousTestCase):
    def test_pause_and_resume(self) -> None:
        """Over the burst the transport pauses until the deficit is paid."""
        clock = Clock()
        transport = StringTransport()
        rate = ReadRate(clock, rate=1000, burst=2000)
        rate.received(1500, transport)
        self.assertEqual(transport.producerState, "producing")
        rate.received(1500, transport)
        self.assertEqual(transport.producerState, "paused")
        clock.advance(0.99)  # 1,000 bytes over at 1,000 bytes/s
        self.assertEqual(transport.producerState, "paused")
        clock.advance(0.02)
        self.assertEqual(transport.producerState, "producing")

    def test_stream_pauses_its_transport(self) -> None:
        """A client stream over its read rate stops being read."""
        server, clock = make_server(self.mktemp(), max_read_rate=4096,
                                    read_burst=4096)
        c = Client(server)
        c.send(HEADER)
        c.send(b" " * 8192)  # whitespace keepalives: valid, and costly
        self.assertEqual(c.transport.producerState, "paused")
        clock.advance(1.0)
        self.assertEqual(c.transport.producerState, "paused")
        clock.advance(0.1)  # the header's bytes were over the burst too
        self.assertEqual(c.transport.producerState, "producing")

    def test_unlimited(self) -> None:
        """max_read_rate = 0 turns the limit off."""
        server, _ = make_server(self.mktemp(), max_read_rate=0)
        c = Client(server)
        c.send(HEADER)
        c.send(b" " * 1_000_000)
        self.assertEqual(c.transport.producerState, "producing")


class AuthFailureTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.server, self.clock = make_server(
            self.mktemp(), auth_attempts=100, auth_failures_per_ip=4,
            auth_failures_per_account=2, auth_failure_window=60.0)

    def attempt(self, host: str, user: str, password: str) -> str:
        c = Client(self.server, host)
        c.send(HEADER)
        c.read()
        auth_plain(c, user, password)
        self.clock.advance(5)
        return sasl_outcome(c)

    def test_account_locked_for_right_password_too(self) -> None:
        """After the account's failures, even the right password gets
        temporary-auth-failure, from any address, until the window passes."""
        for host in ("10.0.0.1", "10.0.0.2"):
            self.assertEqual(self.attempt(host, "alice", "wrong"), "not-authorized")
        self.assertEqual(self.attempt("10.0.0.3", "alice", "secret"),
                         "temporary-auth-failure")
        self.assertEqual(self.attempt("10.0.0.3", "alice", "wrong"),
                         "temporary-auth-failure")
        self.assertEqual(self.attempt("10.0.0.3", "bob", "hunter2"), "success")
        self.clock.advance(61)
        self.assertEqual(self.attempt("10.0.0.3", "alice", "secret"), "success")

    def test_address_blocked(self) -> None:
        """After the address's failures its next <auth> ends the stream
        with policy-violation; other addresses are not affected."""
        for user in ("u1", "u2", "u3", "u4"):
            self.assertEqual(self.attempt("10.0.0.9", user, "x"), "not-authorized")
        c = Client(self.server, "10.0.0.9")
        c.send(HEADER)
        c.read()
        auth_plain(c, "bob", "hunter2")
        self.assertEqual(stream_error(c), "policy-violation")
        self.assertEqual(self.attempt("10.0.0.10", "bob", "hunter2"), "success")


class _Flood(protocol.Protocol):
    def connectionMade(self) -> None:
        self.transport.write(HEADER + b" " * 4_000_000)


class ReadRateOverSocketTests(TestCase):
    """Over real TCP: the server stops reading, the kernel pushes back."""

    timeout = 30

    async def test_flood_is_held_back(self) -> None:
        server, _ = make_server(self.mktemp(), max_read_rate=65536,
                                read_burst=65536)
        server.clock = reactor
        for attr in ("max_read_rate", "read_burst"):
            self.assertEqual(getattr(server.config, attr), 65536)
        server_streams: list = []
        factory = C2SFactory(server)
        build = factory.buildProtocol

        def record(addr):
            stream = build(addr)
            server_streams.append(stream)
            return stream

        factory.buildProtocol = record  # type: ignore[method-assign]
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client: Deferred = protocol.ClientCreator(reactor, _Flood).connectTCP(
            "127.0.0.1", port.getHost().port)
        flood = await client
        self.addCleanup(flood.transport.abortConnection)
        started = reactor.seconds()
        await deferLater(reactor, 1.0, lambda: None)
        elapsed = reactor.seconds() - started
        stream = server_streams[0]
        self.addCleanup(stream.transport.abortConnection)
        self.assertTrue(stream.read_rate.paused)
        self.assertFalse(stream.closed)
        # Read so far: at most the burst, the rate over the time, and one
        # socket read beyond the point where the bucket ran dry.
        self.assertLess(stream.read_rate.total, 65536 + 65536 * (elapsed + 1.0)
                        + 262144)
        self.assertLess(stream.read_rate.total, 4_000_000)
