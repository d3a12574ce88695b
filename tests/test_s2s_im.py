"""Remote contacts where local ones work: subscriptions, presence,
offline storage, MUC occupants from another server."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.s2shelpers import Net, login

MUC = "http://jabber.org/protocol/muc"


class RemoteImTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.net = Net(self.mktemp())
        self.a = self.net.server("a.test", "127.0.0.1",
                                 {"hosts": (("b.test", "127.0.0.2:5269"),
                                            ("conference.b.test", "127.0.0.2:5269"))})
        self.b = self.net.server("b.test", "127.0.0.2",
                                 {"hosts": (("a.test", "127.0.0.1:5269"),)})

    def online(self, server, user: str):
        client = login(server, user)
        client.send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
        client.send("<presence/>")
        self.net.flush()
        client.read()
        return client

    def test_subscription_ends_in_both(self) -> None:
        alice, bob = self.online(self.a, "alice"), self.online(self.b, "bob")
        alice.send("<presence to='bob@b.test' type='subscribe'/>")
        self.net.flush()
        self.assertIn(("subscribe", "alice@a.test"),
                      [(e.get("type"), e.get("from")) for e in bob.read()])
        bob.send("<presence to='alice@a.test' type='subscribed'/>")
        bob.send("<presence to='alice@a.test' type='subscribe'/>")
        self.net.flush()
        got = alice.read()
        self.assertIn((None, "bob@b.test/r"),
                      [(e.get("type"), e.get("from")) for e in got
                       if e.tag == "{jabber:client}presence"])
        alice.send("<presence to='bob@b.test' type='subscribed'/>")
        self.net.flush()
        self.assertIn((None, "alice@a.test/r"),
                      [(e.get("type"), e.get("from")) for e in bob.read()
                       if e.tag == "{jabber:client}presence"])
        self.assertEqual([(i.contact, i.subscription)
                          for i in self.a.im_store.roster("alice", "a.test")[1]],
                         [("bob@b.test", "both")])
        self.assertEqual([(i.contact, i.subscription)
                          for i in self.b.im_store.roster("bob", "b.test")[1]],
                         [("alice@a.test", "both")])
        # logging out tells the remote contact
        alice.stream.transport.loseConnection()
        alice.stream.connectionLost(None)
        self.net.flush()
        self.assertIn(("unavailable", "alice@a.test/r"),
                      [(e.get("type"), e.get("from")) for e in bob.read()])

    def test_offline_message_from_remote_sender(self) -> None:
        bob = self.online(self.b, "bob")
        bob.send("<message to='alice@a.test' type='chat' id='o1'><body>later</body></message>")
        self.net.flush()
        self.assertEqual(bob.read(), [])
        alice = login(self.a, "alice")
        alice.send("<presence/>")
        got = alice.read()
        self.assertIn(("bob@b.test/r", "later"),
                      [(e.get("from"), e.findtext("{jabber:client}body")) for e in got
                       if e.tag == "{jabber:client}message"])

    def test_muc_occupant_from_remote_server(self) -> None:
        bob = self.online(self.b, "bob")
        bob.send(f"<presence to='room@conference.b.test/bob'><x xmlns='{MUC}'/></presence>")
        bob.send("<iq to='room@conference.b.test' type='set' id='cfg'>"
                 "<query xmlns='http://jabber.org/protocol/muc#owner'>"
                 "<x xmlns='jabber:x:data' type='submit'/></query></iq>")
        self.net.flush()
        bob.read()
        alice = self.online(self.a, "alice")
        alice.send(f"<presence to='room@conference.b.test/alice'><x xmlns='{MUC}'/></presence>")
        self.net.flush()
        froms = [e.get("from") for e in alice.read() if e.tag == "{jabber:client}presence"]
        self.assertEqual(froms, ["room@conference.b.test/bob", "room@conference.b.test/alice"])
        alice.send("<message to='room@conference.b.test' type='groupchat'>"
                   "<body>hello room</body></message>")
        self.net.flush()
        for client in (alice, bob):
            self.assertIn(("room@conference.b.test/alice", "hello room"),
                          [(e.get("from"), e.findtext("{jabber:client}body"))
                           for e in client.read() if e.tag == "{jabber:client}message"])
        # the stream from the chat service is authenticated for its own domain
        self.assertIn(("conference.b.test", "a.test"),
                      {p for s in self.a.s2s.inbound for p in s.authenticated})


class RemoteCarbonsMamTests(SynchronousTestCase):
    """A message from a remote sender is copied (XEP-0280) and archived
    (XEP-0313) like one from a local sender."""

    def test_carbon_and_archive(self) -> None:
        net = Net(self.mktemp())
        a = net.server("a.test", "127.0.0.1", {"hosts": (("b.test", "127.0.0.2:5269"),)})
        b = net.server("b.test", "127.0.0.2", {"hosts": (("a.test", "127.0.0.1:5269"),)})
        phone, laptop = login(a, "alice", "phone"), login(a, "alice", "laptop")
        for client in (phone, laptop):
            client.send("<presence/>")
        laptop.send("<iq type='set' id='c'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
        phone.read()
        laptop.read()
        bob = login(b, "bob")
        bob.send("<message to='alice@a.test/phone' type='chat' id='x1'>"
                 "<body>to your phone</body></message>")
        net.flush()
        self.assertEqual([m.findtext("{jabber:client}body") for m in phone.read()],
                         ["to your phone"])
        (carbon,) = laptop.read()
        inner = carbon.find("{urn:xmpp:carbons:2}received/{urn:xmpp:forward:0}forwarded/"
                            "{jabber:client}message")
        self.assertEqual((inner.get("from"), inner.findtext("{jabber:client}body")),
                         ("bob@b.test/r", "to your phone"))
        phone.send("<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2'/></iq>")
        got = phone.read()
        archived = [m.find(".//{jabber:client}message") for m in got
                    if m.find("{urn:xmpp:mam:2}result") is not None]
        self.assertEqual([(m.get("from"), m.findtext("{jabber:client}body")) for m in archived],
                         [("bob@b.test/r", "to your phone")])
