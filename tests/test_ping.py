"""XEP-0199 XMPP Ping: the server answers, and pings idle clients."""

from __future__ import annotations

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from convergence.config import ConfigError, _from_mapping
from tests.imhelpers import of
from tests.xmpphelpers import Client, make_server

PING = "{urn:xmpp:ping}ping"
STREAMS_NS = "{urn:ietf:params:xml:ns:xmpp-streams}"


def pings(elements: list[etree._Element]) -> list[etree._Element]:
    return [e for e in of(elements, "iq", type="get") if e.find(PING) is not None]


class ServerPingTests(SynchronousTestCase):
    def test_answers_ping(self) -> None:
        server, _ = make_server(self.mktemp())
        client = Client(server)
        client.login()
        client.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        result = of(client.read(), "iq", id="p1")[0]
        self.assertEqual((result.get("type"), result.get("from")), ("result", "localhost"))


class ClientPingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.server, self.clock = make_server(self.mktemp(), ping_interval=300,
                                              ping_timeout=60)
        self.client = Client(self.server)
        self.jid = self.client.login()
        self.client.read()

    def test_idle_client_is_pinged(self) -> None:
        """After ping_interval seconds of silence the server pings the
        client's full JID from the domain; an answer keeps the stream."""
        self.clock.advance(299)
        self.assertEqual(pings(self.client.read()), [])
        self.clock.advance(1)
        [ping] = pings(self.client.read())
        self.assertEqual((ping.get("from"), ping.get("to")), ("localhost", self.jid))
        self.clock.advance(10)
        self.client.send(f"<iq type='result' id='{ping.get('id')}' to='localhost'/>")
        self.clock.advance(60)
        self.assertFalse(self.client.stream.closing)
        # nothing from the router for the result (it is not an error)
        self.assertEqual(self.client.read(), [])
        # the next ping comes an interval after the answer
        self.clock.advance(300 - 60 - 1)
        self.assertEqual(pings(self.client.read()), [])
        self.clock.advance(1)
        self.assertEqual(len(pings(self.client.read())), 1)

    def test_error_reply_proves_liveness(self) -> None:
        """A client that answers the ping with an error is alive too."""
        self.clock.advance(300)
        [ping] = pings(self.client.read())
        self.client.send(f"<iq type='error' id='{ping.get('id')}' to='localhost'>"
                         "<error type='cancel'><service-unavailable"
                         " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
        self.clock.advance(60)
        self.assertFalse(self.client.stream.closing)

    def test_silence_ends_the_stream(self) -> None:
        """No answer within ping_timeout: connection-timeout."""
        self.clock.advance(300)
        self.assertEqual(len(pings(self.client.read())), 1)
        self.clock.advance(59)
        self.assertFalse(self.client.stream.closing)
        self.clock.advance(1)
        error = self.client.read()[0]
        self.assertIsNotNone(error.find(f"{STREAMS_NS}connection-timeout"))
        self.assertTrue(self.client.stream.closing)

    def test_traffic_defers_the_ping(self) -> None:
        """Idleness counts from the last data received, of any kind."""
        self.clock.advance(200)
        self.client.send(" ")  # whitespace keepalive
        self.clock.advance(100)
        self.assertEqual(pings(self.client.read()), [])
        self.clock.advance(199)
        self.assertEqual(pings(self.client.read()), [])
        self.clock.advance(1)
        self.assertEqual(len(pings(self.client.read())), 1)

    def test_closed_stream_leaves_no_timer(self) -> None:
        """A stream that goes away takes its ping timer with it."""
        before = len(self.clock.getDelayedCalls())
        self.client.transport.loseConnection()
        self.client.stream.connectionLost(None)
        self.assertEqual(len(self.clock.getDelayedCalls()), before - 1)
        self.clock.advance(1000)
        self.assertEqual(self.client.read(), [])

    def test_each_stream_on_its_own(self) -> None:
        """A silent stream is closed while a talking one of the same user lives."""
        other = Client(self.server)
        other.login(resource="laptop")
        self.clock.advance(300)
        for c in (self.client, other):
            self.assertEqual(len(pings(c.read())), 1)
        other.send("<presence/>")
        self.clock.advance(60)
        self.assertTrue(self.client.stream.closing)
        self.assertFalse(other.stream.closing)


class PingConfigTests(SynchronousTestCase):
    def test_zero_interval_disables(self) -> None:
        server, clock = make_server(self.mktemp(), ping_interval=0)
        client = Client(server)
        client.login()
        client.read()
        clock.advance(10_000)
        self.assertEqual(pings(client.read()), [])
        self.assertFalse(client.stream.closing)

    def test_defaults_and_validation(self) -> None:
        config = _from_mapping({}).xmpp
        self.assertEqual((config.ping_interval, config.ping_timeout), (300.0, 60.0))
        with self.assertRaises(ConfigError):
            _from_mapping({"xmpp": {"ping_timeout": 0}})
        with self.assertRaises(ConfigError):
            _from_mapping({"xmpp": {"ping_interval": -1}})


class ShutdownTests(SynchronousTestCase):
    def test_shutdown_cancels_the_timers(self) -> None:
        """Server shutdown leaves no ping timer behind (the streams'
        connections are lost only later)."""
        server, clock = make_server(self.mktemp(), ping_interval=300)
        client = Client(server)
        client.login()
        self.assertTrue(server.pinger._timers)
        server.shutdown()
        self.assertEqual(server.pinger._timers, {})
        self.assertEqual([c for c in clock.getDelayedCalls()
                          if "ClientPinger" in repr(c.func)], [])
