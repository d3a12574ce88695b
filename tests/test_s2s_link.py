"""Outgoing links between two servers joined in memory: connecting,
dialback both ways, queueing in order, bounces, idle streams, policy."""

from __future__ import annotations

from lxml import etree
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from convergence.xmpp.s2s.link import READY
from tests.s2shelpers import Net, login

STANZA_ERRORS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def bodies(elements: list[etree._Element]) -> list[str | None]:
    return [e.findtext("{jabber:client}body") for e in elements
            if e.tag == "{jabber:client}message"]


def error_condition(stanza: etree._Element) -> str | None:
    error = stanza.find("{jabber:client}error")
    if error is None:
        return None
    return next(etree.QName(c).localname for c in error if etree.QName(c).namespace == STANZA_ERRORS)


class LinkTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.net = Net(self.mktemp())
        self.a = self.net.server("a.test", "127.0.0.1",
                                 {"hosts": (("b.test", "127.0.0.2:5269"),
                                            ("down.test", "127.0.0.9:5269"))})
        self.b = self.net.server("b.test", "127.0.0.2",
                                 {"hosts": (("a.test", "127.0.0.1:5269"),)})
        self.alice = login(self.a, "alice")
        self.alice.send("<presence/>")
        self.alice.read()
        self.bob = login(self.b, "bob")
        self.bob.send("<presence/>")
        self.bob.read()

    def test_messages_both_ways_in_order(self) -> None:
        """Stanzas sent while the stream is negotiated flow, in order."""
        for i in range(3):
            self.alice.send(f"<message to='bob@b.test' type='chat'><body>m{i}</body></message>")
        link = self.a.s2s.links[("a.test", "b.test")]
        self.assertEqual(len(link.queue), 3)
        self.net.flush()
        self.assertEqual(link.state, READY)
        self.assertEqual(bodies(self.bob.read()), ["m0", "m1", "m2"])
        self.bob.send("<message to='alice@a.test' type='chat'><body>back</body></message>")
        self.net.flush()
        (message,) = self.alice.read()
        self.assertEqual((message.get("from"), message.findtext("{jabber:client}body")),
                         ("bob@b.test/r", "back"))
        # each direction has its own stream, authenticated by dialback
        self.assertEqual({s.authenticated.pop() for s in self.b.s2s.inbound},
                         {("a.test", "b.test")})

    def test_ping_both_ways(self) -> None:
        self.alice.send("<iq to='b.test' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
        self.net.flush()
        (result,) = self.alice.read()
        self.assertEqual((result.get("type"), result.get("from"), result.get("id")),
                         ("result", "b.test", "p1"))
        self.bob.send("<iq to='alice@a.test/r' type='get' id='p2'>"
                      "<ping xmlns='urn:xmpp:ping'/></iq>")
        self.net.flush()
        (ping,) = self.alice.read()
        self.assertEqual((ping.get("from"), ping.get("type")), ("bob@b.test/r", "get"))
        self.alice.send("<iq to='bob@b.test/r' type='result' id='p2'/>")
        self.net.flush()
        (pong,) = self.bob.read()
        self.assertEqual((pong.get("type"), pong.get("id")), ("result", "p2"))

    def test_peer_down_bounces(self) -> None:
        """No server answers: each queued stanza bounces with
        remote-server-not-found."""
        self.alice.send("<message to='x@down.test' id='d1'><body>1</body></message>")
        self.alice.send("<iq to='down.test' type='get' id='d2'><ping xmlns='urn:xmpp:ping'/></iq>")
        errors = self.alice.read()
        self.assertEqual([(e.get("id"), e.get("type"), error_condition(e)) for e in errors],
                         [("d1", "error", "remote-server-not-found"),
                          ("d2", "error", "remote-server-not-found")])
        self.assertEqual(errors[0].get("from"), "x@down.test")
        self.assertNotIn(("a.test", "down.test"), self.a.s2s.links)

    def test_timeout_bounces(self) -> None:
        """A server that never completes the stream: after
        s2s.queue_timeout every queued stanza bounces with
        remote-server-timeout."""
        pending: list[Deferred] = []
        self.a.s2s.connect = lambda target, protocol: pending.append(Deferred()) or pending[-1]
        self.alice.send("<message to='bob@b.test' id='t1'><body>1</body></message>")
        self.alice.send("<message to='bob@b.test' id='t2'><body>2</body></message>")
        self.net.clock.advance(self.a.s2s.config.queue_timeout - 1)
        self.assertEqual(self.alice.read(), [])
        self.net.clock.advance(1)
        self.assertEqual([(e.get("id"), error_condition(e)) for e in self.alice.read()],
                         [("t1", "remote-server-timeout"), ("t2", "remote-server-timeout")])
        self.assertEqual(self.bob.read(), [])

    def test_reconnects_after_close(self) -> None:
        self.alice.send("<message to='bob@b.test'><body>1</body></message>")
        self.net.flush()
        self.a.s2s.links[("a.test", "b.test")].stream.close()
        self.net.flush()
        self.assertNotIn(("a.test", "b.test"), self.a.s2s.links)
        self.alice.send("<message to='bob@b.test'><body>2</body></message>")
        self.net.flush()
        self.assertEqual(bodies(self.bob.read()), ["1", "2"])

    def test_idle_streams_close(self) -> None:
        self.alice.send("<message to='bob@b.test'><body>1</body></message>")
        self.net.flush()
        stream = self.a.s2s.links[("a.test", "b.test")].stream
        idle = self.a.s2s.config.idle_timeout
        self.net.clock.advance(idle / 2)
        self.net.flush()
        self.assertFalse(stream.closing)
        self.net.clock.advance(idle)
        self.net.flush()
        self.assertTrue(stream.closed)
        self.assertEqual(self.a.s2s.inbound, set())
        self.assertEqual(self.b.s2s.inbound, set())

    def test_blocked_and_allow_list(self) -> None:
        net = Net(self.mktemp())
        c = net.server("c.test", "127.0.0.3", {"blocked_domains": ("b.test",)})
        d = net.server("d.test", "127.0.0.4", {"allowed_domains": ("a.test",)})
        for server, to in ((c, "bob@b.test"), (d, "bob@b.test")):
            client = login(server, "alice")
            client.send(f"<message to='{to}' id='x'><body>no</body></message>")
            (error,) = client.read()
            self.assertEqual(error_condition(error), "remote-server-not-found")
        self.assertTrue(d.s2s.permitted("a.test"))
        self.assertFalse(d.s2s.permitted("b.test"))
        self.assertFalse(c.s2s.permitted("b.test"))
        self.assertTrue(c.s2s.permitted("a.test"))

    def test_queue_limit(self) -> None:
        self.a.s2s.connect = lambda target, protocol: Deferred()
        limit = self.a.s2s.config.max_queue
        for link_stanzas in range(limit):
            self.a.s2s.link("a.test", "b.test").queue.put(etree.Element("x"))
        self.alice.send("<message to='bob@b.test' id='over'><body>1</body></message>")
        (error,) = self.alice.read()
        self.assertEqual(error_condition(error), "resource-constraint")
