"""Implied PEP notifications of contacts on other servers: remote presence
with XEP-0115 caps injected through the router (as s2s delivers it), the
disco#info query and notifications caught on C{route/remote}."""

from __future__ import annotations

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from convergence.store.interfaces import RosterItem
from convergence.xmpp.features.caps import ver
from convergence.xmpp.features.disco import DiscoInfo
from convergence.xmpp.jid import JID
from tests.pephelpers import EVENT, PepFixture
from tests.s2shelpers import Net, login

AVATAR_META = "urn:xmpp:avatar:metadata"
TUNE = "http://jabber.org/protocol/tune"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
CAPS = "http://jabber.org/protocol/caps"
ROSE = "rose@remote.example/phone"


def info(*features: str) -> DiscoInfo:
    return DiscoInfo((("client", "phone", "", "rose's client"),),
                     (DISCO_INFO, CAPS, *features))


class RemoteCapsTests(PepFixture):
    def setUp(self) -> None:
        super().setUp()
        self.remote: list[etree._Element] = []

        def capture(event) -> bool:
            self.remote.append(event.stanza)
            return True

        self.server.bus.hook("route/remote", capture, 1000)

    def set_subscription(self, contact: str, subscription: str) -> None:
        rosters = self.server.rosters

        def work(roster) -> None:
            rosters.change(roster, roster.get(contact),
                           RosterItem(contact=contact, subscription=subscription))

        rosters.use(JID.parse("alice@localhost"), work)

    def presence(self, type_: str | None = None, caps: DiscoInfo | None = None,
                 sender: str = ROSE) -> None:
        attr = f" type='{type_}'" if type_ else ""
        c = ""
        if caps is not None:
            c = (f"<c xmlns='{CAPS}' hash='sha-1' node='urn:rose' ver='{ver(caps)}'/>")
        self.server.router.route(etree.fromstring(
            f"<presence xmlns='jabber:client' from='{sender}' to='alice@localhost'{attr}>"
            f"{c}</presence>"))

    def queries(self) -> list[etree._Element]:
        return [s for s in self.remote if s.find(f"{{{DISCO_INFO}}}query") is not None]

    def answer(self, query: etree._Element, data: DiscoInfo, sender: str = ROSE) -> None:
        body = "".join(f"<feature var='{f}'/>" for f in data.features)
        identity = "".join(f"<identity category='{c}' type='{t}' name=\"{n}\"/>"
                           for c, t, _, n in data.identities)
        self.server.router.route(etree.fromstring(
            f"<iq xmlns='jabber:client' type='result' id='{query.get('id')}'"
            f" from='{sender}' to='{query.get('from')}'>"
            f"<query xmlns='{DISCO_INFO}' node='{query[0].get('node')}'>{identity}{body}"
            "</query></iq>"))

    def notifications(self) -> list[etree._Element]:
        got = [s for s in self.remote if s.find(f"{{{EVENT}}}event") is not None]
        self.remote.clear()
        return got

    def publish_avatar(self, item_id: str) -> None:
        self.publish(self.alice, AVATAR_META, f"<metadata xmlns='{AVATAR_META}'/>", item_id)

    def online_with(self, caps: DiscoInfo) -> None:
        self.presence(caps=caps)
        [query] = self.queries()
        self.assertEqual(query.get("to"), ROSE)
        self.assertEqual(query.get("from"), "localhost")
        self.assertEqual(query[0].get("node"), f"urn:rose#{ver(caps)}")
        self.remote.clear()
        self.answer(query, caps)

    def test_notify_feature_gets_the_notification(self) -> None:
        """rose (both) advertises avatar +notify: the disco#info query goes
        to her full JID, she gets the last item once her caps are known,
        then each publish."""
        self.set_subscription("rose@remote.example", "both")
        self.publish_avatar("first")
        self.online_with(info(f"{AVATAR_META}+notify"))
        [last] = self.notifications()
        self.assertEqual(last.get("to"), ROSE)
        self.assertEqual(last.get("from"), "alice@localhost")
        self.assertEqual(last.get("type"), "headline")
        self.assertEqual(last.find(f".//{{{EVENT}}}item").get("id"), "first")
        self.publish_avatar("second")
        [event] = self.notifications()
        self.assertEqual(event.get("to"), ROSE)
        items = event.find(f"{{{EVENT}}}event/{{{EVENT}}}items")
        self.assertEqual(items.get("node"), AVATAR_META)
        self.assertEqual(items.find(f"{{{EVENT}}}item").get("id"), "second")
        # the same caps again: nothing asked, nothing resent
        self.presence(caps=info(f"{AVATAR_META}+notify"))
        self.assertEqual(self.remote, [])

    def test_cached_ver_is_not_asked_again(self) -> None:
        """Another remote resource with a verified ver: no query."""
        self.set_subscription("rose@remote.example", "from")
        caps = info(f"{AVATAR_META}+notify")
        self.online_with(caps)
        self.presence(caps=caps, sender="rose@remote.example/tablet")
        self.assertEqual(self.queries(), [])
        self.publish_avatar("x")
        self.assertEqual(sorted(e.get("to") for e in self.notifications()),
                         [ROSE, "rose@remote.example/tablet"])

    def test_without_notify_nothing(self) -> None:
        self.set_subscription("rose@remote.example", "both")
        self.online_with(info(f"{TUNE}+notify"))
        self.publish_avatar("x")
        self.assertEqual(self.notifications(), [])

    def test_without_subscription_nothing(self) -> None:
        """rose in the roster with 'to' only (she does not see alice), and
        an unknown remote JID: no notification, no last item."""
        self.set_subscription("rose@remote.example", "to")
        self.publish_avatar("first")
        self.online_with(info(f"{AVATAR_META}+notify"))
        self.publish_avatar("x")
        self.assertEqual(self.notifications(), [])
        self.presence(caps=info(f"{AVATAR_META}+notify"), sender="eve@remote.example/x")
        self.publish_avatar("y")
        self.assertEqual(self.notifications(), [])

    def test_after_unavailable_nothing(self) -> None:
        self.set_subscription("rose@remote.example", "both")
        self.online_with(info(f"{AVATAR_META}+notify"))
        self.presence("unavailable")
        self.publish_avatar("x")
        self.assertEqual(self.notifications(), [])
        # back with cached caps: the last item again, then notifications
        self.presence(caps=info(f"{AVATAR_META}+notify"))
        self.assertEqual(self.queries(), [])
        self.assertEqual([e.find(f".//{{{EVENT}}}item").get("id")
                          for e in self.notifications()], ["x"])

    def test_wrong_hash_is_not_trusted(self) -> None:
        """The answer does not hash to the advertised ver: not cached, not
        used; the next presence with that ver is asked again."""
        self.set_subscription("rose@remote.example", "both")
        advertised = info(f"{AVATAR_META}+notify", "urn:x:other")
        self.presence(caps=advertised)
        [query] = self.queries()
        self.remote.clear()
        self.answer(query, info(f"{AVATAR_META}+notify"))  # not what was hashed
        self.publish_avatar("x")
        self.assertEqual(self.notifications(), [])
        self.assertNotIn(("sha-1", ver(advertised)), self.server.caps.cache)
        self.presence(caps=advertised, sender="rose@remote.example/tablet")
        self.assertEqual(len(self.queries()), 1)

    def test_answer_from_another_jid_ignored(self) -> None:
        self.set_subscription("rose@remote.example", "both")
        caps = info(f"{AVATAR_META}+notify")
        self.presence(caps=caps)
        [query] = self.queries()
        self.remote.clear()
        self.answer(query, caps, sender="mallory@remote.example/x")
        self.publish_avatar("x")
        self.assertEqual(self.notifications(), [])

    def test_blocked_remote_contact_excluded(self) -> None:
        self.set_subscription("rose@remote.example", "both")
        self.online_with(info(f"{AVATAR_META}+notify"))
        self.alice.send("<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'>"
                        "<item jid='rose@remote.example'/></block></iq>")
        self.alice.read()
        self.remote.clear()
        self.publish_avatar("x")
        self.assertEqual(self.notifications(), [])

    def test_queries_bounded_and_timed_out(self) -> None:
        self.set_subscription("rose@remote.example", "both")
        remote = self.server.pep.remote
        remote.max_queries = 2
        for n in range(4):
            self.presence(caps=info(f"urn:x:{n}+notify"), sender=f"rose@remote.example/r{n}")
        self.assertEqual(len(self.queries()), 2)
        self.assertEqual(len(remote.pending), 2)
        self.clock.advance(self.server.config.caps_query_timeout + 1)
        self.assertEqual(remote.pending, {})


class OverS2STests(SynchronousTestCase):
    """Two servers linked in memory: bob@b.test's caps are asked over s2s by
    a.test, verified, and alice's publish reaches him."""

    def test_remote_contact_notified(self) -> None:
        net = Net(self.mktemp())
        a = net.server("a.test", "127.0.0.1", {"hosts": (("b.test", "127.0.0.2:5269"),)})
        b = net.server("b.test", "127.0.0.2", {"hosts": (("a.test", "127.0.0.1:5269"),)})
        alice, bob = login(a, "alice"), login(b, "bob")
        for client in (alice, bob):
            client.send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
            client.send("<presence/>")
        net.flush()
        alice.read(), bob.read()
        for one, other, two in ((alice, "bob@b.test", bob), (bob, "alice@a.test", alice)):
            one.send(f"<presence to='{other}' type='subscribe'/>")
            net.flush()
            two.send(f"<presence to='{one.stream.jid.bare}' type='subscribed'/>")
            net.flush()
        alice.read(), bob.read()
        caps = info(f"{AVATAR_META}+notify")
        bob.send(f"<presence><c xmlns='{CAPS}' hash='sha-1' node='urn:bob'"
                 f" ver='{ver(caps)}'/></presence>")
        net.flush()
        body = "".join(f"<feature var='{f}'/>" for f in caps.features)
        asked = [e for e in bob.read() if e.find(f"{{{DISCO_INFO}}}query") is not None]
        self.assertEqual(sorted(q.get("from") for q in asked), ["a.test", "b.test"])
        for query in asked:
            bob.send(f"<iq type='result' id='{query.get('id')}' to='{query.get('from')}'>"
                     f"<query xmlns='{DISCO_INFO}' node='{query[0].get('node')}'>"
                     f"<identity category='client' type='phone' name=\"rose's client\"/>"
                     f"{body}</query></iq>")
        net.flush()
        bob.read()
        alice.send(f"<iq type='set' id='p'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
                   f"<publish node='{AVATAR_META}'><item id='av1'>"
                   f"<metadata xmlns='{AVATAR_META}'/></item></publish></pubsub></iq>")
        net.flush()
        got = [e for e in bob.read() if e.find(f"{{{EVENT}}}event") is not None]
        self.assertEqual([(e.get("from"), e.find(f".//{{{EVENT}}}item").get("id"))
                          for e in got], [("alice@a.test", "av1")])
        # unavailable: forgotten on a.test
        bob.send("<presence type='unavailable'/>")
        net.flush()
        self.assertEqual(a.pep.remote.by_owner, {})
