"""
The limits every HTTP connection has (convergence.http.channel): Host
checks, chunk sizes, body and head limits, head and idle timeouts, and the
graceful shutdown of the listener.  Unit tests drive an HttpChannel built by
the site on a StringTransport and a task.Clock; integration tests run the
same over real loopback sockets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from convergence.config import ConfigError, HttpConfig, load_config
from convergence.container.application import Application
from convergence.container.container import Container
from convergence.container.descriptor import DeploymentDescriptor
from convergence.http import channel as channel_module
from convergence.http.channel import HttpChannel
from convergence.http.listener import HttpListener
from convergence.http.resource import HttpSite, make_site
from convergence.http.servlet import HttpRequest, HttpServlet
from convergence.service import make_service

GONE = Failure(ConnectionDone())

LIMITS = HttpConfig(max_body_size=1024, max_headers=10, max_header_size=2048,
                    header_timeout=10.0, idle_timeout=60.0, shutdown_grace=5.0)


class LimitServlet(HttpServlet):
    """Answers at once, or (/later) when the test says, or (/slow) after 0.2 s."""

    def init(self, context: Any) -> None:
        super().init(context)
        self.requests: list[HttpRequest] = []
        self.pending: list[Deferred] = []
        self.seen: Deferred = Deferred()
        self.timers: list[Any] = []

    def do_get(self, request: HttpRequest) -> Any:
        self.requests.append(request)
        if request.path_info == "/later":
            d: Deferred = Deferred()
            self.pending.append(d)
            return d
        if request.path_info == "/slow":
            d = Deferred()
            self.timers.append(reactor.callLater(0.2, d.callback, "slow and complete"))
            if not self.seen.called:
                self.seen.callback(request)
            return d
        return {"ok": True}

    def do_post(self, request: HttpRequest) -> Any:
        self.requests.append(request)
        return {"size": len(request.body)}


DESCRIPTOR = DeploymentDescriptor(name="lim", http="/lim", servlets={"http": LimitServlet})


def make_app() -> Application:
    return Application("lim", DESCRIPTOR, {"http": LimitServlet()}, http_path="/lim")


class HalfCloseTransport(StringTransport):
    """A StringTransport that can close its write side, like TCP."""

    write_closed = False

    def loseWriteConnection(self) -> None:
        self.write_closed = True


class ChannelFixture(SynchronousTestCase):
    limits = LIMITS

    def setUp(self) -> None:
        self.clock = Clock()
        self.app = make_app()
        self.container = Container(self.clock, [self.app])
        self.addCleanup(self.container.undeploy_all)
        self.servlet: LimitServlet = self.app.servlet("http")
        self.site = make_site(self.container, limits=self.limits, reactor=self.clock)

    def connect(self, transport: StringTransport | None = None) -> tuple[HttpChannel, Any]:
        channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = transport or StringTransport()
        channel.makeConnection(transport)
        self.addCleanup(self.lose, channel)
        return channel, transport

    def lose(self, channel: HttpChannel) -> None:
        if channel in self.site.channels:
            channel.connectionLost(GONE)

    def send(self, data: bytes) -> tuple[HttpChannel, Any]:
        channel, transport = self.connect()
        channel.dataReceived(data)
        return channel, transport

    def assertStatus(self, transport: StringTransport, status: int) -> None:
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 %d " % status),
                        transport.value()[:200])


class HostTests(ChannelFixture):
    def test_http11_without_host_is_400(self) -> None:
        """RFC 9112 3.2: an HTTP/1.1 request without Host is 400, then closed."""
        _, transport = self.send(b"GET /lim/ HTTP/1.1\r\n\r\n")
        self.assertEqual(transport.value(), b"HTTP/1.1 400 Bad Request\r\n\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.servlet.requests, [])

    def test_two_hosts_or_a_host_list_are_400(self) -> None:
        """Two Host fields (any version), a comma list or a bad value: 400."""
        for head in [b"GET /lim/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                     b"GET /lim/ HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
                     b"GET /lim/ HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
                     b"GET /lim/ HTTP/1.1\r\nHost: a, b\r\n\r\n",
                     b"GET /lim/ HTTP/1.1\r\nHost: a b\r\n\r\n",
                     b"GET /lim/ HTTP/1.1\r\nHost: a:80x\r\n\r\n"]:
            _, transport = self.send(head)
            self.assertEqual(transport.value(), b"HTTP/1.1 400 Bad Request\r\n\r\n", head)
            self.assertTrue(transport.disconnecting, head)
        self.assertEqual(self.servlet.requests, [])

    def test_good_hosts_and_http10_without_host_are_served(self) -> None:
        """One valid Host (name, port, IP literal, empty) or HTTP/1.0 without: served."""
        for head in [b"GET /lim/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
                     b"GET /lim/ HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
                     b"GET /lim/ HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
                     b"GET /lim/ HTTP/1.1\r\nHost:\r\n\r\n",
                     b"GET /lim/ HTTP/1.0\r\n\r\n"]:
            _, transport = self.send(head)
            self.assertIn(b" 200 OK\r\n", transport.value(), head)
        self.assertEqual(len(self.servlet.requests), 5)


class BodyLimitTests(ChannelFixture):
    def test_huge_chunk_size_is_400_and_closed(self) -> None:
        """A chunk size of more than 16 hex digits: 400 and closed, even before its CRLF."""
        for body in [b"ffffffffffffffffffffffff\r\nabc", b"1" + b"0" * 16]:
            _, transport = self.send(
                b"POST /lim/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
            self.assertEqual(transport.value(), b"HTTP/1.1 400 Bad Request\r\n\r\n")
            self.assertTrue(transport.disconnecting)
        self.assertEqual(self.servlet.requests, [])

    def test_chunk_sizes_over_the_limit_are_413(self) -> None:
        """A chunk size, or chunk sizes added up, beyond max_body_size: 413 at once."""
        for body in [b"401\r\n", b"200\r\n" + b"x" * 512 + b"\r\n201\r\n"]:
            channel, transport = self.send(
                b"POST /lim/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
            self.assertStatus(transport, 413)
            self.assertIn(b"Connection: close\r\n", transport.value())
            self.assertTrue(transport.value().endswith(b"exceeds 1024 bytes.\n"))
            self.assertTrue(transport.disconnecting)
        self.assertEqual(self.servlet.requests, [])

    def test_chunked_body_within_the_limit_is_served(self) -> None:
        """Chunks up to max_body_size in all are read and handed to the servlet."""
        _, transport = self.send(
            b"POST /lim/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"200\r\n" + b"x" * 512 + b"\r\n200\r\n" + b"y" * 512 + b"\r\n0\r\n\r\n")
        self.assertIn(b" 200 OK\r\n", transport.value())
        self.assertIn(b'{"size":1024}', transport.value())
        self.assertFalse(transport.disconnecting)

    def test_content_length_over_the_limit_is_413_before_the_body(self) -> None:
        """Content-Length above max_body_size: 413 with no 100 Continue, closed."""
        _, transport = self.send(
            b"POST /lim/ HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n"
            b"Expect: 100-continue\r\n\r\n")
        self.assertStatus(transport, 413)
        self.assertNotIn(b"100 Continue", transport.value())
        self.assertTrue(transport.disconnecting)
        _, transport = self.send(
            b"POST /lim/ HTTP/1.1\r\nHost: a\r\nContent-Length: 1024\r\n\r\n" + b"z" * 1024)
        self.assertIn(b'{"size":1024}', transport.value())
        self.assertEqual(self.servlet.requests[0].body, b"z" * 1024)

    def test_rejected_connection_lingers_then_is_cut(self) -> None:
        """After a 413 the write side closes; later bytes are dropped until LINGER ends."""
        channel, transport = self.connect(HalfCloseTransport())
        channel.dataReceived(b"POST /lim/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n")
        self.assertStatus(transport, 413)
        self.assertTrue(transport.write_closed)
        self.assertFalse(transport.disconnecting)
        answer = transport.value()
        channel.dataReceived(b"x" * 4000 + b"GET /lim/ HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(transport.value(), answer)
        self.clock.advance(channel_module.LINGER)
        self.assertTrue(transport.disconnected)
        self.assertEqual(self.servlet.requests, [])

    def test_lingering_is_bounded_in_bytes(self) -> None:
        """A rejected client that keeps sending is cut after LINGER_BYTES."""
        channel, transport = self.connect(HalfCloseTransport())
        channel.dataReceived(b"POST /lim/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n")
        chunk = b"x" * 65536
        for _ in range(channel_module.LINGER_BYTES // len(chunk) + 2):
            if transport.disconnected:
                break
            channel.dataReceived(chunk)
        self.assertTrue(transport.disconnected)


class HeadLimitTests(ChannelFixture):
    def test_too_many_header_fields_are_431(self) -> None:
        """More than max_headers fields: 431 and closed."""
        fields = b"".join(b"X-%d: v\r\n" % i for i in range(10))
        _, transport = self.send(b"GET /lim/ HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n")
        self.assertStatus(transport, 431)
        self.assertTrue(transport.disconnecting)
        fields = b"".join(b"X-%d: v\r\n" % i for i in range(9))
        _, transport = self.send(b"GET /lim/ HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n")
        self.assertIn(b" 200 OK\r\n", transport.value())

    def test_too_large_head_is_431(self) -> None:
        """A head above max_header_size, in many lines or in one: 431 and closed."""
        for head in [b"GET /lim/ HTTP/1.1\r\nHost: a\r\n"
                     + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 500) for i in range(5)),
                     b"GET /lim/" + b"a" * 3000]:
            _, transport = self.send(head)
            self.assertStatus(transport, 431)
            self.assertTrue(transport.disconnecting)
        self.assertEqual(self.servlet.requests, [])


class TimeoutTests(ChannelFixture):
    def trickle(self, channel: HttpChannel, transport: StringTransport,
                data: bytes) -> int:
        """One byte per clock second until the server answers; bytes sent."""
        for sent, byte in enumerate(data):
            if transport.disconnecting:
                return sent
            channel.dataReceived(bytes([byte]))
            self.clock.advance(1)
        return len(data)

    def test_trickled_head_is_408_after_header_timeout(self) -> None:
        """A byte a second keeps the idle timer alive, not the head timer: 408."""
        channel, transport = self.connect()
        head = b"GET /lim/ HTTP/1.1\r\nHost: a\r\n" + b"X-Slow: " + b"s" * 100 + b"\r\n\r\n"
        sent = self.trickle(channel, transport, head)
        self.assertEqual(sent, 10)
        self.assertStatus(transport, 408)
        self.assertIn(b"Connection: close\r\n", transport.value())
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.servlet.requests, [])

    def test_silent_new_connection_is_408(self) -> None:
        """A connection that sends nothing is answered 408 after header_timeout."""
        _, transport = self.connect()
        self.clock.advance(9.9)
        self.assertEqual(transport.value(), b"")
        self.clock.advance(0.1)
        self.assertStatus(transport, 408)
        self.assertTrue(transport.disconnecting)

    def test_head_timer_runs_per_request(self) -> None:
        """Keep-alive: idle between requests is the idle timeout's; each head has its own."""
        channel, transport = self.send(b"GET /lim/ HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertIn(b" 200 OK\r\n", transport.value())
        self.clock.advance(30)
        self.assertFalse(transport.disconnecting)
        transport.clear()
        sent = self.trickle(channel, transport, b"GET /lim/ HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(sent, 10)
        self.assertStatus(transport, 408)

    def test_idle_connection_closes_after_idle_timeout(self) -> None:
        """An idle keep-alive connection is closed silently after idle_timeout."""
        _, transport = self.send(b"GET /lim/ HTTP/1.1\r\nHost: a\r\n\r\n")
        transport.clear()
        self.clock.advance(59)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")

    def test_stalled_body_is_408_after_idle_timeout(self) -> None:
        """A body that stops arriving: 408 after idle_timeout."""
        _, transport = self.send(
            b"POST /lim/ HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
        self.clock.advance(60)
        self.assertStatus(transport, 408)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.servlet.requests, [])

    def test_slow_handler_is_not_timed_out(self) -> None:
        """The timers do not run while the servlet works on the request."""
        _, transport = self.send(b"GET /lim/later HTTP/1.1\r\nHost: a\r\n\r\n")
        self.clock.advance(600)
        self.assertFalse(transport.disconnecting)
        self.servlet.pending[0].callback("done")
        self.assertIn(b" 200 OK\r\n", transport.value())
        self.assertTrue(transport.value().endswith(b"done"))


class DrainTests(ChannelFixture):
    def test_drain_closes_idle_and_finishes_busy(self) -> None:
        """drain: idle connections close now, busy ones after their response."""
        idle, idle_transport = self.send(b"GET /lim/ HTTP/1.1\r\nHost: a\r\n\r\n")
        busy, busy_transport = self.send(b"GET /lim/later HTTP/1.1\r\nHost: a\r\n\r\n")
        drained = self.site.drain()
        self.assertTrue(idle_transport.disconnecting)
        self.assertFalse(busy_transport.disconnecting)
        self.assertIsNone(self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1)))
        idle.connectionLost(GONE)
        self.assertNoResult(drained)
        self.servlet.pending[0].callback("finished")
        self.assertIn(b"Connection: close\r\n", busy_transport.value())
        self.assertTrue(busy_transport.value().endswith(b"finished"))
        self.assertTrue(busy_transport.disconnecting)
        busy.connectionLost(GONE)
        self.successResultOf(drained)

    def test_drain_cuts_after_the_grace(self) -> None:
        """A request still running after shutdown_grace is cut."""
        _, transport = self.send(b"GET /lim/later HTTP/1.1\r\nHost: a\r\n\r\n")
        drained = self.site.drain()
        self.clock.advance(4.9)
        self.assertNoResult(drained)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.1)
        self.assertTrue(transport.disconnected)
        self.successResultOf(drained)

    def test_drain_without_connections(self) -> None:
        """With nothing open, drain is done at once."""
        self.successResultOf(self.site.drain())


class ConfigTests(SynchronousTestCase):
    def write(self, text: str) -> Path:
        path = Path(self.mktemp())
        path.write_text(text)
        return path

    def test_http_limit_keys(self) -> None:
        """[http] limits and timeouts are read, defaulted and checked."""
        defaults = load_config().http
        self.assertEqual((defaults.max_headers, defaults.max_header_size,
                          defaults.header_timeout, defaults.idle_timeout,
                          defaults.shutdown_grace), (100, 16384, 10.0, 60.0, 5.0))
        config = load_config(self.write(
            "[http]\nmax_headers = 20\nmax_header_size = 4096\nheader_timeout = 2\n"
            "idle_timeout = 30.5\nshutdown_grace = 0\n")).http
        self.assertEqual((config.max_headers, config.max_header_size, config.header_timeout,
                          config.idle_timeout, config.shutdown_grace),
                         (20, 4096, 2.0, 30.5, 0.0))
        for text, key in [("max_headers = 0", "http.max_headers"),
                          ("max_header_size = 100", "http.max_header_size"),
                          ("header_timeout = 0", "http.header_timeout"),
                          ("idle_timeout = -1", "http.idle_timeout"),
                          ('idle_timeout = "60"', "http.idle_timeout"),
                          ("shutdown_grace = -1", "http.shutdown_grace"),
                          ("header_timeout = true", "http.header_timeout")]:
            with self.assertRaises(ConfigError) as cm:
                load_config(self.write(f"[http]\n{text}\n"))
            self.assertIn(key, str(cm.exception))

    def test_built_site_uses_the_limits(self) -> None:
        """make_service builds the site's channels and its listener from [http]."""
        root = Path(self.mktemp())
        root.mkdir()
        (root / "c.toml").write_text("[http]\nmax_headers = 7\nheader_timeout = 3\n"
                                     "idle_timeout = 9\nshutdown_grace = 1.5\n")
        config = load_config(root / "c.toml", {"data_dir": str(root / "data"),
                                               "http_port": 18081})
        service = make_service(config, reactor)
        self.addCleanup(service.server.close)
        site = service.server.http
        channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        self.assertIsInstance(channel, HttpChannel)
        self.assertEqual((channel.maxHeaders, channel.header_timeout, channel.timeOut),
                         (7, 3.0, 9.0))
        [listener] = [s for s in service if isinstance(s, HttpListener)]
        self.assertIs(listener.site, site)
        self.assertEqual(listener.grace, 1.5)


class RawClient(Protocol):
    """Sends bytes (optionally one at a time), collects the answer until closed."""

    def __init__(self, data: bytes = b"") -> None:
        self.data = data
        self.received = b""
        self.done: Deferred = Deferred()
        self.closed = False

    def connectionMade(self) -> None:
        if self.data:
            self.transport.write(self.data)

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Any) -> None:
        self.closed = True
        self.done.callback(self.received)


class SocketTests(TestCase):
    """The same limits over real loopback sockets."""

    timeout = 30

    def setUp(self) -> None:
        self.app = make_app()
        self.container = Container(reactor, [self.app])
        self.addCleanup(self.container.undeploy_all)
        self.servlet: LimitServlet = self.app.servlet("http")
        self.addCleanup(self.cancel_timers)
        limits = HttpConfig(max_body_size=1024, header_timeout=0.5, shutdown_grace=5.0)
        self.site: HttpSite = make_site(self.container, limits=limits)
        self.listener = HttpListener(0, self.site, interface="127.0.0.1")
        self.listener.startService()
        self.addCleanup(self.stop)
        self.port = self.listener._port.getHost().port

    def cancel_timers(self) -> None:
        for timer in self.servlet.timers:
            if timer.active():
                timer.cancel()

    async def stop(self) -> None:
        if self.listener.running:
            await self.listener.stopService()
        for channel in list(self.site.channels):
            channel.transport.abortConnection()
        for _ in range(100):
            if not self.site.channels:
                break
            await deferLater(reactor, 0.01, lambda: None)

    async def connect(self, client: RawClient) -> RawClient:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port)
        await connectProtocol(endpoint, client)
        return client

    async def test_huge_chunk_size_gets_400_and_close(self) -> None:
        """A chunk size twisted would wait for: 400 and the server closes."""
        client = await self.connect(RawClient(
            b"POST /lim/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"ffffffffffffffffffffffff\r\nabc"))
        self.assertEqual(await client.done, b"HTTP/1.1 400 Bad Request\r\n\r\n")

    async def test_large_bodies_get_413_and_close(self) -> None:
        """Content-Length or a chunk size above the limit: 413 and the server closes."""
        for head in [b"Content-Length: 100000000\r\n\r\nabc",
                     b"Transfer-Encoding: chunked\r\n\r\n100000\r\nabc"]:
            client = await self.connect(RawClient(
                b"POST /lim/ HTTP/1.1\r\nHost: a\r\n" + head))
            answer = await client.done
            self.assertTrue(answer.startswith(b"HTTP/1.1 413 Content Too Large\r\n"), answer)
            self.assertTrue(answer.endswith(b"The request body exceeds 1024 bytes.\n"))

    async def test_missing_host_gets_400_and_close(self) -> None:
        """HTTP/1.1 without Host over a socket: 400 and the server closes."""
        client = await self.connect(RawClient(b"GET /lim/ HTTP/1.1\r\n\r\n"))
        self.assertEqual(await client.done, b"HTTP/1.1 400 Bad Request\r\n\r\n")

    async def test_slow_head_is_cut_after_header_timeout(self) -> None:
        """A head trickled a byte per 0.1 s gets 408 after 0.5 s and is closed."""
        client = await self.connect(RawClient())
        head = b"GET /lim/ HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"s" * 100 + b"\r\n\r\n"
        sent = 0
        while sent < len(head) and not client.closed:
            client.transport.write(head[sent:sent + 1])
            sent += 1
            await deferLater(reactor, 0.1, lambda: None)
        self.assertTrue(client.closed)
        self.assertLess(sent, len(head))
        self.assertTrue(client.received.startswith(b"HTTP/1.1 408 Request Timeout\r\n"))
        self.assertEqual(self.servlet.requests, [])

    async def test_stop_finishes_requests_in_progress(self) -> None:
        """Stopping the listener: no new connections, the running request completes."""
        idle = await self.connect(RawClient(b"GET /lim/ HTTP/1.1\r\nHost: a\r\n\r\n"))
        busy = await self.connect(RawClient(b"GET /lim/slow HTTP/1.1\r\nHost: a\r\n\r\n"))
        await self.servlet.seen
        for _ in range(100):  # the idle connection has had its answer
            if idle.received.endswith(b'{"ok":true}'):
                break
            await deferLater(reactor, 0.01, lambda: None)
        stopped = self.listener.stopService()
        with self.assertRaises(ConnectionRefusedError):
            await self.connect(RawClient(b"GET /lim/ HTTP/1.1\r\nHost: a\r\n\r\n"))
        self.assertTrue(idle.received.endswith(b'{"ok":true}'))
        await idle.done  # closed by the server at once
        self.assertFalse(busy.closed)
        answer = await busy.done
        self.assertTrue(answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer)
        self.assertIn(b"Connection: close\r\n", answer)
        self.assertTrue(answer.endswith(b"slow and complete"))
        await stopped
        self.assertEqual(self.site.channels, set())

    async def test_stop_cuts_requests_after_the_grace(self) -> None:
        """A request still running after the grace is cut; the stop completes."""
        self.listener.grace = 0.2
        client = await self.connect(RawClient(b"GET /lim/later HTTP/1.1\r\nHost: a\r\n\r\n"))
        for _ in range(100):
            if self.servlet.pending:
                break
            await deferLater(reactor, 0.01, lambda: None)
        await self.listener.stopService()
        self.assertEqual(await client.done, b"")
        self.servlet.pending[0].callback("too late")
