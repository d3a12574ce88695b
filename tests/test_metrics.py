"""
The metrics: the plain counters the layers keep, the collector that reads
them at scrape time, the reactor lag histogram and the endpoint's token
check, on StringTransports and a task.Clock.  tests/test_metrics_twistd.py
scrapes a real twistd.
"""

from __future__ import annotations

import base64
from types import SimpleNamespace
from typing import Any

from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import (
    generate_latest as generate_openmetrics,
)
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from convergence.http.resource import make_site
from convergence.metrics.collector import ConvergenceCollector
from convergence.metrics.endpoint import MetricsResource, bearer_token
from convergence.metrics.lag import BUCKETS, ReactorLag
from convergence.sip.core import UserAgentCore
from convergence.sip.message import parse_message
from convergence.sip.stats import UNCOUNTED, TransactionStats
from convergence.sip.timers import Timers
from convergence.sip.transaction_layer import TransactionLayer
from convergence.sip.transport import Peer, SipTransportLayer
from convergence.xmpp.stats import XmppStats
from tests.siphelpers import request as sip_request
from tests.test_sip_transaction import Core, Req, Resp, Source
from tests.test_sip_ws import FakeConnection, ws_request
from tests.test_xmpp_websocket import WsCase
from tests.xmpphelpers import HEADER, Client, make_app, make_server, run_now


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape (Prometheus text, parsed back), by name and labels."""
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return samples(registry).get((name, tuple(sorted(labels.items()))))


class Echo:
    """An XMPP servlet that does nothing: an application to make sessions for."""

    def service(self, request: Any, response: Any) -> None:
        pass


class CollectorTests(SynchronousTestCase):
    """The collector reads the real layers' counters."""

    def setUp(self) -> None:
        app = make_app("echo", Echo(), ("echo.localhost",))
        self.xmpp, self.clock = make_server(self.mktemp(), apps=(app,))
        container = self.xmpp.container
        transport = SipTransportLayer(self.clock, None, "127.0.0.1")
        self.sip = UserAgentCore(self.clock, container, ["localhost"], transport, None,
                                 Timers())
        self.http = make_site(container, reactor=self.clock)
        self.lag = ReactorLag(self.clock, 1.0)
        server = SimpleNamespace(xmpp=self.xmpp, sip=self.sip, http=self.http,
                                 container=container)
        self.collector = ConvergenceCollector(server, self.lag, run_now)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)

    def login_fails(self, password: str) -> Client:
        client = Client(self.xmpp)
        client.send(HEADER)
        client.read()
        token = base64.b64encode(f"\0alice\0{password}".encode()).decode()
        client.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'"
                    f" mechanism='PLAIN'>{token}</auth>")
        return client

    def test_connections_logins_and_failures(self) -> None:
        """Accepted and open client connections, a PLAIN login, a failed
        one (by mechanism and condition), an unknown mechanism."""
        self.assertEqual(value(self.registry, "convergence_connections_open",
                               protocol="c2s", transport="tcp"), 0)
        alice = Client(self.xmpp)
        alice.login()
        self.login_fails("wrong")
        client = Client(self.xmpp)
        client.send(HEADER)
        client.read()
        client.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-MADE-UP'/>")
        r = self.registry
        self.assertEqual(value(r, "convergence_connections_open",
                               protocol="c2s", transport="tcp"), 3)
        self.assertEqual(value(r, "convergence_connections_accepted_total",
                               protocol="c2s", transport="tcp"), 3)
        self.assertEqual(value(r, "convergence_xmpp_logins_total", mechanism="PLAIN"), 1)
        self.assertEqual(value(r, "convergence_xmpp_sasl_failures_total",
                               mechanism="PLAIN", condition="not-authorized"), 1)
        # a name the client made up is not a label value
        self.assertEqual(value(r, "convergence_xmpp_sasl_failures_total",
                               mechanism="other", condition="invalid-mechanism"), 1)
        self.assertEqual(value(r, "convergence_xmpp_sessions_bound"), 1)
        alice.transport.loseConnection()
        alice.stream.connectionLost(None)
        self.assertEqual(value(r, "convergence_connections_open",
                               protocol="c2s", transport="tcp"), 2)
        self.assertEqual(value(r, "convergence_xmpp_sessions_bound"), 0)

    def test_stanzas_and_offline_storage(self) -> None:
        """Routed stanzas by kind; a message to an offline user is stored
        (counter) and counted in the store at refresh (gauge), and the
        counter of delivered ones moves when bob comes online."""
        alice = Client(self.xmpp)
        alice.login()
        before = value(self.registry, "convergence_xmpp_stanzas_routed_total", kind="message")
        alice.send("<message to='bob@localhost' type='chat'><body>hi</body></message>")
        alice.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
        r = self.registry
        # (at least: a stanza the server passes on again is routed again)
        self.assertGreaterEqual(
            value(r, "convergence_xmpp_stanzas_routed_total", kind="message"), before + 1)
        self.assertGreaterEqual(value(r, "convergence_xmpp_stanzas_routed_total", kind="iq"), 2)
        self.assertEqual(value(r, "convergence_xmpp_offline_stored_total"), 1)
        self.assertIsNone(value(r, "convergence_xmpp_offline_messages"))  # not read yet
        self.collector.refresh()
        self.assertEqual(value(r, "convergence_xmpp_offline_messages"), 1)
        bob = Client(self.xmpp)
        bob.login("bob", "hunter2")
        bob.send("<presence/>")
        self.assertEqual(value(r, "convergence_xmpp_offline_delivered_total"), 1)
        self.collector.refresh()
        self.assertEqual(value(r, "convergence_xmpp_offline_messages"), 0)

    def test_sip_transport(self) -> None:
        """Messages received by transport; an unparseable one is dropped
        and counted by reason."""
        self.sip.transport.message_received(b"NOT SIP AT ALL\r\n\r\n",
                                            Peer("UDP", "127.0.0.1", 5062))
        r = self.registry
        self.assertEqual(value(r, "convergence_sip_messages_received_total",
                               transport="udp"), 1)
        self.assertEqual(value(r, "convergence_sip_messages_received_total",
                               transport="tcp"), 0)
        self.assertEqual(value(r, "convergence_sip_messages_dropped_total",
                               reason="unparseable"), 1)

    def test_sip_websocket(self) -> None:
        """SIP over WebSocket: its connections (open, accepted) and its
        messages, labelled ws."""
        connection = FakeConnection()
        self.sip.transport.ws_connection_made(connection)
        self.sip.transport.message_received(ws_request(), connection.sip_peer,
                                            exact_length=True)
        r = self.registry
        self.assertEqual(value(r, "convergence_connections_open",
                               protocol="sip", transport="ws"), 1)
        self.assertEqual(value(r, "convergence_sip_messages_received_total",
                               transport="ws"), 1)
        self.sip.transport.ws_connection_lost(connection)
        self.assertEqual(value(r, "convergence_connections_open",
                               protocol="sip", transport="ws"), 0)
        self.assertEqual(value(r, "convergence_connections_accepted_total",
                               protocol="sip", transport="ws"), 1)

    def test_sip_transactions(self) -> None:
        """Ended transactions by side, method and status class, live
        ones, and the timers that fired."""
        layer = self.sip.transactions
        sent: list = []
        options = parse_message(sip_request("OPTIONS", "sip:localhost", 5062).encode())
        layer.receive_request(options, Peer("UDP", "127.0.0.1", 5062), sent.append)
        r = self.registry
        self.assertEqual([m.status for m in sent], [200])  # the core answered
        self.assertEqual(value(r, "convergence_sip_transactions_active", side="server"), 1)
        self.clock.advance(64 * Timers().T1)  # Timer J
        self.assertEqual(value(r, "convergence_sip_transactions_total", side="server",
                               method="OPTIONS", status_class="2xx"), 1)
        self.assertEqual(value(r, "convergence_sip_transactions_active", side="server"), 0)
        self.assertEqual(value(r, "convergence_sip_timer_firings_total", timer="E"), 0)

    def test_http(self) -> None:
        """HTTP connections and responses by status, the channel's own
        refusals included."""
        channel = self.http.buildProtocol(None)
        channel.makeConnection(StringTransport())
        channel.dataReceived(b"GET /nothing-here HTTP/1.1\r\nHost: localhost\r\n\r\n")
        other = self.http.buildProtocol(None)
        other.makeConnection(StringTransport())
        other.dataReceived(b"GET / HTTP/1.1\r\n\r\n")  # no Host: 400
        r = self.registry
        self.assertEqual(value(r, "convergence_http_responses_total", code="404"), 1)
        self.assertEqual(value(r, "convergence_http_responses_total", code="400"), 1)
        self.assertEqual(value(r, "convergence_connections_accepted_total",
                               protocol="http", transport="tcp"), 2)
        self.assertEqual(value(r, "convergence_connections_open",
                               protocol="http", transport="tcp"), 2)

    def test_https_site(self) -> None:
        """The HTTPS twin of the site counts its own connections (transport
        tls); responses of both add up by code."""
        self.collector.server.https = https = self.http.secure(None)
        for site in (self.http, https):
            channel = site.buildProtocol(None)
            channel.makeConnection(StringTransport())
            channel.dataReceived(b"GET /nothing-here HTTP/1.1\r\nHost: localhost\r\n\r\n")
        r = self.registry
        self.assertEqual(value(r, "convergence_connections_accepted_total",
                               protocol="http", transport="tls"), 1)
        self.assertEqual(value(r, "convergence_connections_accepted_total",
                               protocol="http", transport="tcp"), 1)
        self.assertEqual(value(r, "convergence_http_responses_total", code="404"), 2)

    def test_application_sessions(self) -> None:
        """Live, created and invalidated ApplicationSessions per application."""
        manager = self.xmpp.container.sessions
        app = self.xmpp.container.applications["echo"]
        first = manager.create(app)
        manager.create(app)
        first.invalidate()
        first.invalidate()  # twice: counted once
        r = self.registry
        self.assertEqual(value(r, "convergence_application_sessions_created_total",
                               application="echo"), 2)
        self.assertEqual(value(r, "convergence_application_sessions_invalidated_total",
                               application="echo"), 1)
        self.assertEqual(value(r, "convergence_application_sessions", application="echo"), 1)

    def test_reactor_lag(self) -> None:
        """The histogram counts how late the looping measurement ran."""
        self.lag.startService()
        self.clock.advance(1.0)  # on time
        self.clock.advance(1.3)  # due at 2.0, ran at 2.3
        self.lag.stopService()
        r = self.registry
        self.assertEqual(value(r, "convergence_reactor_lag_seconds_count"), 2)
        self.assertAlmostEqual(value(r, "convergence_reactor_lag_seconds_sum"), 0.3)
        self.assertEqual(value(r, "convergence_reactor_lag_seconds_bucket", le="0.001"), 1)
        self.assertEqual(value(r, "convergence_reactor_lag_seconds_bucket", le="0.25"), 1)
        self.assertEqual(value(r, "convergence_reactor_lag_seconds_bucket", le="0.5"), 2)
        self.assertEqual(value(r, "convergence_reactor_lag_seconds_bucket", le="+Inf"), 2)
        self.assertAlmostEqual(value(r, "convergence_reactor_lag_max_seconds"), 0.3)
        self.assertFalse(self.clock.getDelayedCalls())

    def test_openmetrics(self) -> None:
        """The same families parse as OpenMetrics (counters without the
        _total in the family name, the histogram with its buckets)."""
        families = {f.name: f for f in parse_openmetrics(
            generate_openmetrics(self.registry).decode())}
        self.assertEqual(families["convergence_xmpp_logins"].type, "counter")
        self.assertEqual(families["convergence_reactor_lag_seconds"].type, "histogram")
        self.assertEqual(families["convergence_connections_open"].type, "gauge")


class TransactionStatsTests(SynchronousTestCase):
    """What the SIP transaction machines count (on a Clock, over UDP)."""

    def setUp(self) -> None:
        from twisted.internet.task import Clock

        self.clock = Clock()
        self.core = Core()
        self.layer = TransactionLayer(self.clock, self.core, Timers())

    def test_client_retransmissions_and_timeout(self) -> None:
        """An unanswered non-INVITE: Timer E fires until Timer F ends it,
        which counts as a client transaction without a final status."""
        sent: list = []
        self.layer.send_request(Req("OPTIONS"), sent.append, False, self.core)
        self.clock.pump([0.5] * 80)
        stats = self.layer.stats
        self.assertEqual(stats.timers["F"], 1)
        self.assertEqual(stats.timers["E"], len(sent) - 1)
        self.assertGreater(stats.timers["E"], 5)
        self.assertEqual(stats.client, {("OPTIONS", 0): 1})

    def test_invite_timeouts(self) -> None:
        """An unanswered INVITE: Timers A and B; a final response never
        ACKed: Timers G and H."""
        sent: list = []
        self.layer.send_request(Req("INVITE"), sent.append, False, self.core,
                                build_ack=lambda request, response: Req("ACK"))
        self.layer.receive_request(Req("INVITE", call_id="c2"), Source(), sent.append)
        tx = next(iter(self.layer.server.values()))
        tx.send_response(Resp(486))
        self.clock.pump([0.5] * 80)
        timers = self.layer.stats.timers
        self.assertEqual((timers["B"], timers["H"]), (1, 1))
        self.assertGreater(timers["A"], 3)
        self.assertGreater(timers["G"], 3)
        self.assertEqual(self.layer.stats.server, {("INVITE", 4): 1})

    def test_retransmission_received_and_other_methods(self) -> None:
        """A request matching a live transaction is a retransmission; a
        method outside the known set is counted as 'other'."""
        sent: list = []
        self.layer.receive_request(Req("FROBNICATE"), Source(), sent.append)
        self.layer.receive_request(Req("FROBNICATE"), Source(), sent.append)
        self.assertEqual(self.layer.stats.retransmissions_received, 1)
        tx = next(iter(self.layer.server.values()))
        tx.send_response(Resp(501, "FROBNICATE"))
        self.clock.advance(64 * Timers().T1)
        self.assertEqual(self.layer.stats.server, {("other", 5): 1})

    def test_uncounted_default(self) -> None:
        """Transactions made outside a layer count into a sink, not into
        a layer's counters."""
        self.assertIsInstance(UNCOUNTED, TransactionStats)
        self.assertEqual(self.layer.stats.server, {})


class XmppStatsTests(SynchronousTestCase):
    def test_labels_bounded(self) -> None:
        """Made-up mechanism and condition names count as 'other'."""
        stats = XmppStats()
        stats.sasl_failure("X-EVIL-" + "a" * 100, "no-such-condition")
        stats.sasl_failure("SCRAM-SHA-1", "not-authorized")
        self.assertEqual(stats.sasl_failures, {("other", "other"): 1,
                                               ("SCRAM-SHA-1", "not-authorized"): 1})


class EndpointTests(SynchronousTestCase):
    """The resource: the token check, negotiation, refresh failures."""

    def setUp(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)

    def get(self, resource: MetricsResource, **headers: str) -> DummyRequest:
        request = DummyRequest([b""])
        for name, value_ in headers.items():
            request.requestHeaders.setRawHeaders(name.replace("_", "-"), [value_])
        result = resource.render(request)
        if isinstance(result, bytes):
            request.write(result)
            request.finish()
        return request

    def test_token_required(self) -> None:
        """Without the token, or with another, 401 and a Bearer challenge."""
        resource = MetricsResource(self.registry, token="s3cret-token-0123456789")
        for headers in ({}, {"authorization": "Bearer wrong"},
                        {"authorization": "Basic czNjcmV0"},
                        {"authorization": "Bearer s3cret-token-0123456789x"}):
            request = self.get(resource, **headers)
            self.assertEqual(request.responseCode, 401, headers)
            self.assertEqual(request.responseHeaders.getRawHeaders(b"www-authenticate"),
                             [b'Bearer realm="metrics"'])
        request = self.get(resource, authorization="bearer s3cret-token-0123456789")
        self.assertEqual(request.responseCode, None)  # 200
        self.assertTrue(request.finished)

    def test_negotiation(self) -> None:
        """OpenMetrics when asked for, else the Prometheus text format."""
        resource = MetricsResource(self.registry)
        plain = self.get(resource)
        self.assertTrue(plain.responseHeaders.getRawHeaders(b"content-type")[0]
                        .startswith(b"text/plain; version=0.0.4"))
        om = self.get(resource, accept="application/openmetrics-text; version=1.0.0")
        self.assertTrue(om.responseHeaders.getRawHeaders(b"content-type")[0]
                        .startswith(b"application/openmetrics-text"))
        self.assertTrue(b"".join(om.written).endswith(b"# EOF\n"))

    def test_refresh_failure_still_serves(self) -> None:
        """A failing refresh is logged; the scrape still answers."""
        def refresh() -> Any:
            raise RuntimeError("database gone")

        request = self.get(MetricsResource(self.registry, refresh))
        self.assertTrue(request.finished)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_bearer_token_parsing(self) -> None:
        request = DummyRequest([b""])
        self.assertIsNone(bearer_token(request))
        request.requestHeaders.setRawHeaders(b"authorization", [b"Bearer  abc "])
        self.assertEqual(bearer_token(request), b"abc")


class LagTests(SynchronousTestCase):
    def test_buckets(self) -> None:
        """A delay lands in the first bucket whose bound is not below it."""
        from twisted.internet.task import Clock

        lag = ReactorLag(Clock())
        for delay in (0.0, 0.001, 0.0011, 10.0):
            lag.observe(delay)
        self.assertEqual(lag.counts[0], 2)
        self.assertEqual(lag.counts[1], 1)
        self.assertEqual(lag.counts[len(BUCKETS)], 1)
        self.assertEqual(lag.cumulative()[-1], ("+Inf", 4))


class WebSocketCountsTests(WsCase):
    """XMPP over WebSocket (a real server on loopback): its connections
    are counted as c2s/ws, its login with the others."""

    def setUp(self) -> None:
        self.build()

    async def test_websocket_login_counted(self) -> None:
        collector = ConvergenceCollector(self.server)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        await self.login("alice", "wonderland")
        self.assertEqual(value(registry, "convergence_connections_open",
                               protocol="c2s", transport="ws"), 1)
        self.assertEqual(value(registry, "convergence_connections_accepted_total",
                               protocol="c2s", transport="ws"), 1)
        self.assertEqual(value(registry, "convergence_connections_open",
                               protocol="c2s", transport="tcp"), 0)
        self.assertEqual(value(registry, "convergence_xmpp_logins_total", mechanism="PLAIN"), 1)
