"""XEP-0280 Message Carbons: enabling, received and sent carbons, the
eligibility rules, no duplicates for equal-priority resources."""

from __future__ import annotations

from lxml import etree

from convergence.xmpp.im.carbons import eligible
from tests.imhelpers import ImFixture, of
from tests.xmpphelpers import Client

CARBONS = "urn:xmpp:carbons:2"
FORWARD = "urn:xmpp:forward:0"
ENABLE = f"<iq type='set' id='c1'><enable xmlns='{CARBONS}'/></iq>"
DISABLE = f"<iq type='set' id='c2'><disable xmlns='{CARBONS}'/></iq>"


def _msg(xml: str) -> etree._Element:
    return etree.fromstring(f"<message xmlns='jabber:client' {xml}</message>")


def carbon_of(element: etree._Element, direction: str) -> etree._Element | None:
    """The forwarded message inside a carbon, or None."""
    return element.find(f"{{{CARBONS}}}{direction}/{{{FORWARD}}}forwarded/"
                        "{jabber:client}message")


class CarbonsFixture(ImFixture):
    def setUp(self) -> None:
        super().setUp()
        self.laptop = self.client("alice", "secret", "laptop")
        for client in (self.alice, self.laptop, self.bob):
            client.available()
        for client in (self.alice, self.laptop):
            client.send(ENABLE)
            [result] = of(client.read(), "iq", id="c1")
            self.assertEqual(result.get("type"), "result")
        self.alice.read()
        self.bob.read()


class EnableTests(CarbonsFixture):
    def test_enable_result_from_bare_jid(self) -> None:
        """Enabling is answered with a result from the account (not
        service-unavailable); enabling twice is no error."""
        self.alice.send(ENABLE)
        [result] = of(self.alice.read(), "iq", id="c1")
        self.assertEqual(result.get("type"), "result")
        self.assertEqual(result.get("from"), "alice@localhost")
        self.assertEqual(result.get("to"), "alice@localhost/phone")

    def test_enable_for_another_account_is_not_allowed(self) -> None:
        """An enable addressed to someone else's account is refused."""
        self.bob.send(f"<iq type='set' id='x' to='alice@localhost'><enable xmlns='{CARBONS}'/></iq>")
        [error] = of(self.bob.read(), "iq", id="x")
        self.assertEqual(error.get("type"), "error")
        self.assertIsNotNone(error.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}not-allowed"))
        self.assertNotIn(self.bob.stream, self.server.carbons.enabled)

    def test_disco_advertises(self) -> None:
        self.bob.send("<iq type='get' id='d' to='localhost'>"
                      "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
        [info] = of(self.bob.read(), "iq", id="d")
        vars_ = [f.get("var") for f in info.iter("{*}feature")]
        self.assertIn(CARBONS, vars_)

    def test_disable_stops_copies(self) -> None:
        self.laptop.send(DISABLE)
        [result] = of(self.laptop.read(), "iq", id="c2")
        self.assertEqual(result.get("type"), "result")
        self.bob.send("<message to='alice@localhost/phone' type='chat'><body>hi</body></message>")
        self.assertEqual(self.laptop.read(), [])
        self.assertEqual(len(of(self.alice.read(), "message")), 1)

    def test_closed_stream_forgotten(self) -> None:
        self.laptop.stream.transport.loseConnection()
        self.laptop.stream.connectionLost(None)
        self.assertNotIn(self.laptop.stream, self.server.carbons.enabled)


class ReceivedTests(CarbonsFixture):
    def test_full_jid_message_copied_to_other_resource(self) -> None:
        """A chat to alice/phone reaches phone as it is and laptop as a
        received carbon from alice's bare JID."""
        self.bob.send("<message to='alice@localhost/phone' type='chat' id='m1'>"
                      "<body>hello</body></message>")
        [plain] = of(self.alice.read(), "message")
        self.assertIsNone(carbon_of(plain, "received"))
        self.assertEqual(plain.findtext("{jabber:client}body"), "hello")
        [carbon] = of(self.laptop.read(), "message")
        self.assertEqual(carbon.get("from"), "alice@localhost")
        self.assertEqual(carbon.get("to"), "alice@localhost/laptop")
        self.assertEqual(carbon.get("type"), "chat")
        inner = carbon_of(carbon, "received")
        self.assertEqual(inner.get("from"), "bob@localhost/laptop")
        self.assertEqual(inner.get("to"), "alice@localhost/phone")
        self.assertEqual(inner.get("id"), "m1")
        self.assertEqual(inner.findtext("{jabber:client}body"), "hello")

    def test_bare_jid_equal_priority_no_duplicate(self) -> None:
        """To the bare JID with both resources at equal priority: each
        gets the message once and no carbon."""
        self.bob.send("<message to='alice@localhost' type='chat'><body>both</body></message>")
        for client in (self.alice, self.laptop):
            [message] = of(client.read(), "message")
            self.assertIsNone(carbon_of(message, "received"))
            self.assertEqual(message.findtext("{jabber:client}body"), "both")

    def test_bare_jid_lower_priority_gets_carbon(self) -> None:
        """A carbons-enabled resource of lower priority gets a carbon."""
        self.laptop.send("<presence><priority>-1</priority></presence>")
        self.laptop.read()
        self.alice.read()
        self.bob.send("<message to='alice@localhost' type='chat'><body>b</body></message>")
        [plain] = of(self.alice.read(), "message")
        self.assertIsNone(carbon_of(plain, "received"))
        [carbon] = of(self.laptop.read(), "message")
        self.assertIsNotNone(carbon_of(carbon, "received"))

    def test_resource_without_carbons_gets_nothing(self) -> None:
        tablet = self.client("alice", "secret", "tablet")
        tablet.available()
        self.alice.read()
        self.laptop.read()
        self.bob.send("<message to='alice@localhost/phone' type='chat'><body>x</body></message>")
        self.assertEqual(of(tablet.read(), "message"), [])
        self.assertEqual(len(of(self.laptop.read(), "message")), 1)

    def test_unavailable_resource_gets_nothing(self) -> None:
        """Carbons go to available resources only."""
        self.laptop.send("<presence type='unavailable'/>")
        self.laptop.read()
        self.bob.send("<message to='alice@localhost/phone' type='chat'><body>x</body></message>")
        self.assertEqual(of(self.laptop.read(), "message"), [])

    def test_normal_with_body_copied_without_body_not(self) -> None:
        self.bob.send("<message to='alice@localhost/phone'><body>n</body></message>")
        self.assertEqual(len(of(self.laptop.read(), "message")), 1)
        self.bob.send("<message to='alice@localhost/phone'><x xmlns='urn:example'/></message>")
        self.assertEqual(of(self.laptop.read(), "message"), [])

    def test_chat_state_and_receipt_copied(self) -> None:
        """XEP-0085 chat states and XEP-0184 receipts are IM payloads."""
        self.bob.send("<message to='alice@localhost/phone'>"
                      "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
        self.bob.send("<message to='alice@localhost/phone'>"
                      "<received xmlns='urn:xmpp:receipts' id='m1'/></message>")
        got = of(self.laptop.read(), "message")
        self.assertEqual(len(got), 2)
        inner = carbon_of(got[1], "received")
        self.assertIsNotNone(inner.find("{urn:xmpp:receipts}received"))

    def test_private_not_copied_and_stripped(self) -> None:
        """<private/> stops the copy and is removed before delivery."""
        self.bob.send("<message to='alice@localhost/phone' type='chat'><body>p</body>"
                      f"<private xmlns='{CARBONS}'/></message>")
        self.assertEqual(of(self.laptop.read(), "message"), [])
        [plain] = of(self.alice.read(), "message")
        self.assertIsNone(plain.find(f"{{{CARBONS}}}private"))

    def test_no_copy_hint(self) -> None:
        self.bob.send("<message to='alice@localhost/phone' type='chat'><body>p</body>"
                      "<no-copy xmlns='urn:xmpp:hints'/></message>")
        self.assertEqual(of(self.laptop.read(), "message"), [])

    def test_headline_and_groupchat_not_copied(self) -> None:
        self.bob.send("<message to='alice@localhost/phone' type='headline'><body>h</body></message>")
        self.assertEqual(of(self.laptop.read(), "message"), [])

    def test_muc_private_message_not_copied(self) -> None:
        self.bob.send("<message to='alice@localhost/phone' type='chat'><body>pm</body>"
                      "<x xmlns='http://jabber.org/protocol/muc#user'/></message>")
        self.assertEqual(of(self.laptop.read(), "message"), [])

    def test_unbound_full_jid_goes_as_bare(self) -> None:
        """A chat to an unbound resource is delivered as to the bare JID:
        no carbon duplicates it."""
        self.bob.send("<message to='alice@localhost/gone' type='chat'><body>g</body></message>")
        for client in (self.alice, self.laptop):
            [message] = of(client.read(), "message")
            self.assertIsNone(carbon_of(message, "received"))

    def test_forged_carbon_from_contact_not_rewrapped(self) -> None:
        """A message already carrying a carbon payload is never copied."""
        self.bob.send(f"<message to='alice@localhost/phone' type='chat'><received xmlns='{CARBONS}'>"
                      f"<forwarded xmlns='{FORWARD}'><message xmlns='jabber:client'"
                      " type='chat'><body>fake</body></message></forwarded></received></message>")
        self.assertEqual(of(self.laptop.read(), "message"), [])


class SentTests(CarbonsFixture):
    def test_sent_carbon_to_other_resources(self) -> None:
        """phone's chat to bob reaches bob, and laptop as a sent carbon."""
        self.alice.send("<message to='bob@localhost' type='chat' id='s1'><body>yo</body></message>")
        [plain] = of(self.bob.read(), "message")
        self.assertEqual(plain.findtext("{jabber:client}body"), "yo")
        [carbon] = of(self.laptop.read(), "message")
        self.assertEqual(carbon.get("from"), "alice@localhost")
        self.assertEqual(carbon.get("to"), "alice@localhost/laptop")
        inner = carbon_of(carbon, "sent")
        self.assertEqual(inner.get("from"), "alice@localhost/phone")
        self.assertEqual(inner.get("to"), "bob@localhost")
        self.assertEqual(inner.get("id"), "s1")
        self.assertEqual(of(self.alice.read(), "message"), [])  # not back to the sender

    def test_sent_carbon_for_remote_recipient(self) -> None:
        """A message to another domain (route/remote) is still copied."""
        self.alice.send("<message to='romeo@montague.example' type='chat'><body>r</body></message>")
        sent, bounce = of(self.laptop.read(), "message")
        self.assertEqual(carbon_of(sent, "sent").get("to"), "romeo@montague.example")
        # no s2s here: the error bounce from the bare JID is copied too
        self.assertEqual(carbon_of(bounce, "received").get("type"), "error")

    def test_private_sent_not_copied(self) -> None:
        self.alice.send("<message to='bob@localhost' type='chat'><body>r</body>"
                        f"<private xmlns='{CARBONS}'/></message>")
        self.assertEqual(of(self.laptop.read(), "message"), [])
        [plain] = of(self.bob.read(), "message")
        self.assertIsNone(plain.find(f"{{{CARBONS}}}private"))

    def test_sender_without_carbons_still_copied(self) -> None:
        """A resource that did not enable carbons still has its messages
        copied to the ones that did (requirement 6 of section 2)."""
        tablet = self.client("alice", "secret", "tablet")
        tablet.available()
        tablet.send("<message to='bob@localhost' type='chat'><body>t</body></message>")
        self.assertEqual(len(of(self.laptop.read(), "message")), 1)
        self.assertEqual(len(of(self.alice.read(), "message")), 1)

    def test_message_to_own_resource(self) -> None:
        """phone writing to laptop: laptop gets it once, phone no copy."""
        self.alice.send("<message to='alice@localhost/laptop' type='chat'><body>me</body></message>")
        [plain] = of(self.laptop.read(), "message")
        self.assertIsNone(carbon_of(plain, "received"))
        self.assertEqual(of(self.alice.read(), "message"), [])


class EligibilityTests(ImFixture):
    def test_rules(self) -> None:
        cases = [
            ("type='chat'>", False, True),
            ("type='normal'><body>x</body>", False, True),
            (">", False, False),
            ("type='groupchat'><body>x</body>", False, False),
            ("type='headline'><body>x</body>", False, False),
            ("type='error' from='bob@localhost'>", False, True),
            ("type='error' from='bob@localhost/r'>", False, False),
            ("type='error' from='bob@localhost'>", True, False),
            ("type='chat' to='r@muc/nick'><x xmlns='http://jabber.org/protocol/muc#user'/>",
             False, False),
            ("type='chat' to='r@muc/nick'><x xmlns='http://jabber.org/protocol/muc#user'/>",
             True, True),
            ("><displayed xmlns='urn:xmpp:chat-markers:0' id='1'/>", False, True),
            ("type='chat'><no-copy xmlns='urn:xmpp:hints'/>", True, False),
        ]
        for xml, outgoing, expected in cases:
            self.assertEqual(eligible(_msg(xml), outgoing), expected, (xml, outgoing))


class NoEnabledResourceTests(ImFixture):
    def test_nothing_without_carbons(self) -> None:
        """Without any carbons-enabled resource nothing changes."""
        second = Client(self.server)
        second.login("alice", "secret", "laptop")
        second.available()
        self.alice.available()
        self.bob.available()
        self.alice.read()
        second.read()
        self.bob.send("<message to='alice@localhost/phone' type='chat'><body>x</body></message>")
        self.assertEqual(of(second.read(), "message"), [])
        self.assertEqual(len(of(self.alice.read(), "message")), 1)
