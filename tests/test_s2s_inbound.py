"""Inbound server streams on a StringTransport: negotiation states,
dialback (receiving and authoritative roles), stanza acceptance."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from convergence.config import S2SPolicy
from convergence.xmpp.s2s import dialback
from tests.s2shelpers import Net, RawPeer, answer_verify, login, names, stream_error

DB = "jabber:server:dialback"


class InboundTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.net = Net(self.mktemp())
        # b.test's server is slow: dialback questions stay pending until
        # the test answers them
        self.net.hanging.add("127.0.0.2")
        self.a = self.net.server("a.test", "127.0.0.1",
                                 {"blocked_domains": ("evil.test",),
                                  "hosts": (("b.test", "127.0.0.2:5269"),)})
        self.keys = self.a.s2s.keys

    def authenticated_peer(self) -> RawPeer:
        """A peer for b.test authenticated for a.test (the verify answered
        as b.test's authoritative server would)."""
        peer = RawPeer(self.a)
        peer.open("b.test", "a.test")
        peer.send("<db:result from='b.test' to='a.test'>somekey</db:result>")
        answer_verify(self.a, "b.test", True)
        self.assertEqual([e.get("type") for e in peer.read()], ["valid"])
        return peer

    def test_features_offer_dialback(self) -> None:
        got = RawPeer(self.a).open("b.test", "a.test")
        self.assertEqual(names(got), ["features"])
        self.assertIsNotNone(got[0].find("{urn:xmpp:features:dialback}dialback"))
        self.assertIsNone(got[0].find("{urn:ietf:params:xml:ns:xmpp-sasl}mechanisms"))

    def test_header(self) -> None:
        peer = RawPeer(self.a)
        peer.open("b.test", "a.test")
        self.assertEqual(peer.header.get("from"), "a.test")
        self.assertEqual(peer.header.get("to"), "b.test")
        self.assertEqual(peer.header.nsmap, {None: "jabber:server", "db": DB,
                                             "stream": "http://etherx.jabber.org/streams"})

    def test_unknown_host(self) -> None:
        peer = RawPeer(self.a)
        self.assertEqual(stream_error(peer.open("b.test", "nowhere.test")), "host-unknown")

    def test_client_namespace_refused(self) -> None:
        peer = RawPeer(self.a)
        peer.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
                  " xmlns:stream='http://etherx.jabber.org/streams' to='a.test' version='1.0'>")
        self.assertEqual(stream_error(peer.read()), "invalid-namespace")

    def test_blocked_domain(self) -> None:
        peer = RawPeer(self.a)
        self.assertEqual(stream_error(peer.open("evil.test", "a.test")), "policy-violation")

    def test_stanza_before_authentication(self) -> None:
        """RFC 6120: a stanza before authentication is not-authorized,
        never delivered."""
        alice = login(self.a, "alice")
        alice.send("<presence/>")
        alice.read()
        peer = RawPeer(self.a)
        peer.open("b.test", "a.test")
        peer.send("<message from='x@b.test' to='alice@a.test'><body>sneaky</body></message>")
        self.assertEqual(stream_error(peer.read()), "not-authorized")
        self.assertTrue(peer.closed)
        self.assertEqual(alice.read(), [])

    def test_invalid_from(self) -> None:
        """A stanza from a domain not authenticated on the stream:
        invalid-from (RFC 6120 4.9.3.9); the stanza is not delivered."""
        alice = login(self.a, "alice")
        alice.send("<presence/>")
        alice.read()
        peer = self.authenticated_peer()
        peer.send("<message from='mallory@c.test' to='alice@a.test'><body>forged</body></message>")
        self.assertEqual(stream_error(peer.read()), "invalid-from")
        self.assertEqual(alice.read(), [])

    def test_authenticated_stanza_delivered(self) -> None:
        alice = login(self.a, "alice")
        alice.send("<presence/>")
        alice.read()
        peer = self.authenticated_peer()
        peer.send("<message from='bob@b.test/x' to='alice@a.test' type='chat'>"
                  "<body>hello</body></message>")
        (message,) = alice.read()
        self.assertEqual(message.tag, "{jabber:client}message")
        self.assertEqual(message.get("from"), "bob@b.test/x")
        self.assertEqual(message.findtext("{jabber:client}body"), "hello")

    def test_wrong_to_domain(self) -> None:
        peer = self.authenticated_peer()
        peer.send("<message from='bob@b.test' to='x@conference.a.test'/>")
        self.assertEqual(stream_error(peer.read()), "host-unknown")

    def test_dialback_invalid(self) -> None:
        """The authoritative server says no: type invalid, no pair."""
        peer = RawPeer(self.a)
        peer.open("b.test", "a.test")
        peer.send("<db:result from='b.test' to='a.test'>badkey</db:result>")
        question = answer_verify(self.a, "b.test", False)
        self.assertEqual(question.get("id"), peer.stream.stream_id)
        self.assertEqual(question.text, "badkey")
        self.assertEqual([e.get("type") for e in peer.read()], ["invalid"])
        peer.send("<message from='bob@b.test' to='alice@a.test'/>")
        self.assertEqual(stream_error(peer.read()), "not-authorized")

    def test_dialback_for_unknown_domain(self) -> None:
        peer = RawPeer(self.a)
        peer.open("b.test", "a.test")
        peer.send("<db:result from='b.test' to='other.test'>k</db:result>")
        (result,) = peer.read()
        self.assertEqual(result.get("type"), "error")
        self.assertIsNotNone(result.find(
            ".//{urn:ietf:params:xml:ns:xmpp-stanzas}item-not-found"))

    def test_authoritative_role(self) -> None:
        """A db:verify about a key we made: valid; any other: invalid."""
        peer = RawPeer(self.a)
        peer.open("b.test", "a.test")
        key = self.keys.generate("b.test", "a.test", "S1")
        peer.send(f"<db:verify from='b.test' to='a.test' id='S1'>{key}</db:verify>")
        peer.send(f"<db:verify from='b.test' to='a.test' id='S2'>{key}</db:verify>")
        got = peer.read()
        self.assertEqual([(e.tag, e.get("from"), e.get("to"), e.get("id"), e.get("type"))
                          for e in got],
                         [(dialback.VERIFY, "a.test", "b.test", "S1", "valid"),
                          (dialback.VERIFY, "a.test", "b.test", "S2", "invalid")])

    def test_tls_required(self) -> None:
        """server_login tls=required: only STARTTLS is offered, dialback
        before it is refused."""
        net = Net(self.mktemp())
        c = net.server("c.test", "127.0.0.3",
                       {"server_login": S2SPolicy(tls="required")})
        c.s2s.server_tls = object()  # a certificate is configured
        peer = RawPeer(c)
        (features,) = peer.open("b.test", "c.test")
        starttls = features.find("{urn:ietf:params:xml:ns:xmpp-tls}starttls")
        self.assertIsNotNone(starttls.find("{urn:ietf:params:xml:ns:xmpp-tls}required"))
        self.assertIsNone(features.find("{urn:xmpp:features:dialback}dialback"))
        peer.send("<db:result from='b.test' to='c.test'>k</db:result>")
        (result,) = peer.read()
        self.assertEqual(result.get("type"), "error")
        self.assertIsNotNone(result.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}not-allowed"))

    def test_sasl_external_needs_tls(self) -> None:
        peer = RawPeer(self.a)
        peer.open("b.test", "a.test")
        peer.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>")
        (failure,) = peer.read()
        self.assertEqual(names(list(failure)), ["invalid-mechanism"])

    def test_peer_stream_error_leaves_others(self) -> None:
        """A stream error on one stream never affects another."""
        good = self.authenticated_peer()
        bad = RawPeer(self.a)
        bad.open("c.test", "a.test")
        bad.send("<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                 "</stream:error></stream:stream>")
        alice = login(self.a, "alice")
        alice.send("<presence/>")
        alice.read()
        good.send("<message from='bob@b.test' to='alice@a.test'><body>still</body></message>")
        self.assertEqual([m.findtext("{jabber:client}body") for m in alice.read()], ["still"])
        self.assertFalse(good.closed)


class InboundLimitsTests(SynchronousTestCase):
    def test_negotiation_timeout(self) -> None:
        """A peer that never authenticates is closed after
        xmpp.negotiation_timeout; one that did is not."""
        net = Net(self.mktemp())
        a = net.server("a.test", "127.0.0.1", negotiation_timeout=20.0)
        idle = RawPeer(a)
        idle.open("b.test", "a.test")
        done = RawPeer(a)
        done.open("c.test", "a.test")
        done.stream.authenticated.add(("c.test", "a.test"))
        net.clock.advance(19)
        self.assertIsNone(stream_error(idle.read()))
        net.clock.advance(1)
        self.assertEqual(stream_error(idle.read()), "connection-timeout")
        self.assertEqual(done.read(), [])

    def test_verify_questions_bounded(self) -> None:
        """More pending dialback questions than s2s.max_queue: answered
        invalid at once, never sent."""
        net = Net(self.mktemp())
        net.hanging.add("127.0.0.2")
        a = net.server("a.test", "127.0.0.1",
                       {"max_queue": 2, "hosts": (("b.test", "127.0.0.2:5269"),)})
        peer = RawPeer(a)
        peer.open("b.test", "a.test")
        for n in range(3):
            peer.send(f"<db:result from='b.test' to='a.test'>key{n}</db:result>")
        self.assertEqual([e.get("type") for e in peer.read()], ["invalid"])
        self.assertEqual(len(a.s2s.links[("a.test", "b.test")].verifies), 2)

    def test_connections_per_ip(self) -> None:
        """s2s.max_connections_per_ip: refused at accept per address; a
        closed stream frees its place (the real sockets are in
        test_s2s_connection_limit)."""
        from twisted.internet.address import IPv4Address
        from twisted.internet.testing import StringTransport

        net = Net(self.mktemp())
        a = net.server("a.test", "127.0.0.1", {"max_connections_per_ip": 2})
        factory = a.s2s.factory()

        def accept(host: str) -> Any:
            addr = IPv4Address("TCP", host, 40000)
            stream = factory.buildProtocol(addr)
            if stream is not None:
                stream.makeConnection(StringTransport(peerAddress=addr))
            return stream

        first, second = accept("192.0.2.1"), accept("192.0.2.1")
        self.assertIsNotNone(first)
        self.assertIsNotNone(second)
        self.assertIsNone(accept("192.0.2.1"))
        self.assertIsNotNone(accept("192.0.2.2"))
        first.connectionLost(None)
        self.assertIsNotNone(accept("192.0.2.1"))
        self.assertIsNone(accept("192.0.2.1"))
