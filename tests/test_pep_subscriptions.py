"""Explicit XEP-0060 subscriptions to PEP nodes (XEP-0163 4, 6, 8.1)."""

from __future__ import annotations

from lxml import etree

from convergence.xmpp.jid import JID
from convergence.xmpp.pep.nodeconfig import NODE_CONFIG, PUBLISH_OPTIONS
from tests.imhelpers import of
from tests.pephelpers import EVENT, OWNER, PUBSUB, PepFixture, error_of, events, form

OPEN = "urn:x:open"
PRIVATE = "urn:x:presence"


def subscribe(node: str, jid: str) -> str:
    return f"<pubsub xmlns='{PUBSUB}'><subscribe node='{node}' jid='{jid}'/></pubsub>"


def unsubscribe(node: str, jid: str) -> str:
    return f"<pubsub xmlns='{PUBSUB}'><unsubscribe node='{node}' jid='{jid}'/></pubsub>"


def item_events(elements: list[etree._Element], node: str) -> list[tuple[str, str]]:
    """(to, item id) of the item notifications of C{node}."""
    out = []
    for message in of(elements, "message", type="headline"):
        for item in message.iterfind(f"{{{EVENT}}}event/{{{EVENT}}}items[@node='{node}']"
                                     f"/{{{EVENT}}}item"):
            out.append((message.get("to"), item.get("id")))
    return out


class SubscriptionTests(PepFixture):
    """alice owns the nodes; bob has a presence subscription to her,
    carol (online) has none."""

    def setUp(self) -> None:
        super().setUp()
        self.carol = self.client("carol", "carol-pw", "tablet")
        self.carol.available()
        self.carol.read()
        self.publish(self.alice, OPEN, "<o xmlns='x'>1</o>", "first",
                     options=form(PUBLISH_OPTIONS, pubsub_access_model="open",
                                  pubsub_max_items="10"))
        self.publish(self.alice, PRIVATE, "<p xmlns='x'>1</p>", "first")
        for client in (self.alice, self.bob, self.carol):
            client.read()

    def sub(self, client, node: str, jid: str | None = None) -> etree._Element:
        return self.iq(client, "set", subscribe(node, jid or str(client.stream.jid.bare)),
                       to="alice@localhost")

    def test_subscribe_to_open_node_without_presence(self) -> None:
        """XEP-0163 4 (1): an open node's explicit subscriber is notified
        without sharing presence; it gets the last item at once."""
        answer = self.sub(self.carol, OPEN)
        self.assertEqual(answer.get("type"), "result")
        [sub] = answer.iter(f"{{{PUBSUB}}}subscription")
        self.assertEqual((sub.get("node"), sub.get("jid"), sub.get("subscription")),
                         (OPEN, "carol@localhost", "subscribed"))
        self.assertEqual(item_events(self.last_read, OPEN),
                         [("carol@localhost", "first")])
        self.publish(self.alice, OPEN, "<o xmlns='x'>2</o>", "second")
        # no +notify from carol's client: one notification to the bare JID,
        # which the server delivers to her available resource
        self.assertEqual(item_events(self.carol.read(), OPEN),
                         [("carol@localhost", "second")])
        self.assertEqual(self.server.pep_store.pep_subscriptions("alice", "localhost"),
                         [(OPEN, "carol@localhost")])

    def test_interested_resources_of_a_bare_subscriber(self) -> None:
        """A bare-JID subscriber whose resource wants the node (+notify)
        gets one notification per such resource, at its full JID."""
        self.sub(self.carol, OPEN)
        self.wants(self.carol, OPEN)
        self.carol.read()
        self.publish(self.alice, OPEN, "<o xmlns='x'>2</o>", "second")
        self.assertEqual(item_events(self.carol.read(), OPEN),
                         [("carol@localhost/tablet", "second")])

    def test_full_jid_subscriber_and_implied_subscription_notified_once(self) -> None:
        """bob subscribed with his full JID and wanting the node through
        caps gets each notification once."""
        self.wants(self.bob, PRIVATE)
        self.bob.read()
        self.assertEqual(self.sub(self.bob, PRIVATE, "bob@localhost/laptop").get("type"),
                         "result")
        self.bob.read()
        self.publish(self.alice, PRIVATE, "<p xmlns='x'>2</p>", "second")
        self.assertEqual(item_events(self.bob.read(), PRIVATE),
                         [("bob@localhost/laptop", "second")])

    def test_access_models_refuse_with_xep0060_errors(self) -> None:
        self.assertEqual(error_of(self.sub(self.carol, PRIVATE)),
                         ("auth", "not-authorized", "presence-subscription-required"))
        self.publish(self.alice, "urn:x:r", "<r xmlns='x'/>",
                     options=form(PUBLISH_OPTIONS, pubsub_access_model="roster",
                                  pubsub_roster_groups_allowed="Family"))
        self.assertEqual(error_of(self.sub(self.bob, "urn:x:r")),
                         ("auth", "not-authorized", "not-in-roster-group"))
        self.publish(self.alice, "urn:x:w", "<w xmlns='x'/>",
                     options=form(PUBLISH_OPTIONS, pubsub_access_model="whitelist"))
        self.assertEqual(error_of(self.sub(self.bob, "urn:x:w")),
                         ("cancel", "not-allowed", "closed-node"))
        self.assertEqual(self.server.pep_store.pep_subscriptions("alice", "localhost"), [])
        # the owner subscribes to her own whitelist node
        self.assertEqual(self.sub(self.alice, "urn:x:w").get("type"), "result")

    def test_bad_subscribe_requests(self) -> None:
        self.assertEqual(error_of(self.sub(self.carol, OPEN, "bob@localhost")),
                         ("modify", "bad-request", "invalid-jid"))
        self.assertEqual(error_of(self.sub(self.carol, "urn:none"))[1], "item-not-found")
        with_options = self.iq(self.carol, "set", f"<pubsub xmlns='{PUBSUB}'>"
                               f"<subscribe node='{OPEN}' jid='carol@localhost'/>"
                               f"<options/></pubsub>", to="alice@localhost")
        self.assertEqual(error_of(with_options)[1:], ("feature-not-implemented",
                                                       "unsupported"))
        nobody = self.iq(self.carol, "set", subscribe(OPEN, "carol@localhost"),
                         to="nobody@localhost")
        self.assertEqual(error_of(nobody)[1], "service-unavailable")

    def test_subscribing_twice_keeps_one_subscription(self) -> None:
        self.sub(self.carol, OPEN)
        self.assertEqual(self.sub(self.carol, OPEN).get("type"), "result")
        self.assertEqual(item_events(self.last_read, OPEN), [])  # not new: no last item
        self.assertEqual(self.server.pep_store.pep_subscriptions("alice", "localhost"),
                         [(OPEN, "carol@localhost")])

    def test_subscription_limit(self) -> None:
        self.server.config = self.server.config.__class__(
            **{**self.server.config.__dict__, "pep_max_subscriptions": 1})
        self.sub(self.carol, OPEN)
        self.assertEqual(error_of(self.sub(self.bob, OPEN))[1], "policy-violation")

    def test_unsubscribe(self) -> None:
        not_subscribed = self.iq(self.carol, "set", unsubscribe(OPEN, "carol@localhost"),
                                 to="alice@localhost")
        self.assertEqual(error_of(not_subscribed),
                         ("cancel", "unexpected-request", "not-subscribed"))
        self.sub(self.carol, OPEN)
        other = self.iq(self.bob, "set", unsubscribe(OPEN, "carol@localhost"),
                        to="alice@localhost")
        self.assertEqual(error_of(other)[1], "forbidden")
        done = self.iq(self.carol, "set", unsubscribe(OPEN, "carol@localhost"),
                       to="alice@localhost")
        self.assertEqual(done.get("type"), "result")
        self.publish(self.alice, OPEN, "<o xmlns='x'>2</o>", "second")
        self.assertEqual(item_events(self.carol.read(), OPEN), [])
        self.assertEqual(self.server.pep_store.pep_subscriptions("alice", "localhost"), [])

    def test_own_subscriptions_only(self) -> None:
        self.sub(self.carol, OPEN)
        self.sub(self.bob, OPEN, "bob@localhost/laptop")
        self.sub(self.bob, PRIVATE)
        mine = self.iq(self.bob, "get", f"<pubsub xmlns='{PUBSUB}'><subscriptions/></pubsub>",
                       to="alice@localhost")
        self.assertEqual([(s.get("node"), s.get("jid"), s.get("subscription"))
                          for s in mine.iter(f"{{{PUBSUB}}}subscription")],
                         [(OPEN, "bob@localhost/laptop", "subscribed"),
                          (PRIVATE, "bob@localhost", "subscribed")])
        one = self.iq(self.bob, "get", f"<pubsub xmlns='{PUBSUB}'><subscriptions"
                      f" node='{PRIVATE}'/></pubsub>", to="alice@localhost")
        self.assertEqual([s.get("node") for s in one.iter(f"{{{PUBSUB}}}subscription")],
                         [PRIVATE])

    def test_owner_manages_subscriptions(self) -> None:
        self.sub(self.carol, OPEN)
        listed = self.iq(self.alice, "get", f"<pubsub xmlns='{OWNER}'><subscriptions"
                         f" node='{OPEN}'/></pubsub>")
        self.assertEqual([(s.get("jid"), s.get("subscription"))
                          for s in listed.iter(f"{{{OWNER}}}subscription")],
                         [("carol@localhost", "subscribed")])
        changed = self.iq(self.alice, "set", f"<pubsub xmlns='{OWNER}'><subscriptions"
                          f" node='{OPEN}'><subscription jid='carol@localhost'"
                          " subscription='none'/><subscription jid='bob@localhost'"
                          " subscription='subscribed'/></subscriptions></pubsub>")
        self.assertEqual(changed.get("type"), "result")
        self.assertEqual(self.server.pep_store.pep_subscriptions("alice", "localhost"),
                         [(OPEN, "bob@localhost")])
        refused = self.iq(self.bob, "get", f"<pubsub xmlns='{OWNER}'><subscriptions"
                          f" node='{OPEN}'/></pubsub>", to="alice@localhost")
        self.assertEqual(error_of(refused)[1], "forbidden")

    def test_affiliations(self) -> None:
        own = self.iq(self.alice, "get", f"<pubsub xmlns='{PUBSUB}'><affiliations/></pubsub>")
        self.assertEqual([(a.get("node"), a.get("affiliation"))
                          for a in own.iter(f"{{{PUBSUB}}}affiliation")],
                         [(OPEN, "owner"), (PRIVATE, "owner")])
        theirs = self.iq(self.bob, "get", f"<pubsub xmlns='{PUBSUB}'><affiliations/></pubsub>",
                         to="alice@localhost")
        self.assertEqual(list(theirs.iter(f"{{{PUBSUB}}}affiliation")), [])
        node = self.iq(self.alice, "get", f"<pubsub xmlns='{OWNER}'><affiliations"
                       f" node='{OPEN}'/></pubsub>")
        self.assertEqual([(a.get("jid"), a.get("affiliation"))
                          for a in node.iter(f"{{{OWNER}}}affiliation")],
                         [("alice@localhost", "owner")])

    def test_lost_access_cancels_the_subscription(self) -> None:
        """XEP-0163 8.1: bob subscribed to a presence node; once alice no
        longer shares her presence with him, the next notification is not
        sent to him and his subscription is cancelled."""
        self.sub(self.bob, PRIVATE)
        self.bob.read()
        self.alice.send("<presence to='bob@localhost' type='unsubscribed'/>")
        self.alice.read()
        self.bob.read()
        self.publish(self.alice, PRIVATE, "<p xmlns='x'>2</p>", "second")
        got = self.bob.read()
        self.assertEqual(item_events(got, PRIVATE), [])
        [cancelled] = [m.find(f"{{{EVENT}}}event/{{{EVENT}}}subscription")
                       for m in of(got, "message")
                       if m.find(f"{{{EVENT}}}event/{{{EVENT}}}subscription") is not None]
        self.assertEqual((cancelled.get("node"), cancelled.get("subscription")),
                         (PRIVATE, "none"))
        self.assertEqual(self.server.pep_store.pep_subscriptions("alice", "localhost"), [])

    def test_deleting_the_node_notifies_and_drops_subscriptions(self) -> None:
        self.sub(self.carol, OPEN)
        self.carol.read()
        self.iq(self.alice, "set", f"<pubsub xmlns='{OWNER}'><delete node='{OPEN}'/></pubsub>")
        deleted = [e for e in events(self.carol.read())
                   if e.find(f"{{{EVENT}}}delete") is not None]
        self.assertEqual(len(deleted), 1)
        self.assertEqual(self.server.pep_store.pep_subscriptions("alice", "localhost"), [])
        self.publish(self.alice, OPEN, "<o xmlns='x'>new</o>",
                     options=form(PUBLISH_OPTIONS, pubsub_access_model="open"))
        self.assertEqual(item_events(self.carol.read(), OPEN), [])

    def test_subscriptions_survive_the_cache(self) -> None:
        """Subscriptions are stored: with alice's nodes out of memory (she
        logged out), a publish by the server still reaches carol."""
        self.sub(self.carol, OPEN)
        self.carol.read()
        self.alice.stream.connectionLost(None)
        owner = JID.parse("alice@localhost")
        self.assertNotIn(owner, self.server.pep._subscriptions)
        self.server.pep.publish(owner, OPEN, etree.fromstring("<o xmlns='x'>srv</o>"), "s")
        self.assertEqual(item_events(self.carol.read(), OPEN), [("carol@localhost", "s")])

    def test_configuration_form_unchanged(self) -> None:
        """Subscriptions are not part of a node's configuration."""
        self.sub(self.carol, OPEN)
        config = self.iq(self.alice, "get", f"<pubsub xmlns='{OWNER}'><configure"
                         f" node='{OPEN}'/></pubsub>")
        self.assertEqual(config.get("type"), "result")
        self.assertIsNotNone(config.find(".//{jabber:x:data}x"))
        self.assertIn(NODE_CONFIG, etree.tostring(config).decode())

    def test_blocked_subscriber_gets_no_notification(self) -> None:
        """XEP-0163 4.3.3: nobody the owner blocked is notified, explicit
        or implied subscriber."""
        self.sub(self.carol, OPEN)
        self.wants(self.bob, PRIVATE)
        self.carol.read()
        self.bob.read()
        self.iq(self.alice, "set", "<block xmlns='urn:xmpp:blocking'>"
                "<item jid='carol@localhost'/><item jid='bob@localhost'/></block>")
        self.carol.read()
        self.bob.read()
        self.publish(self.alice, OPEN, "<o xmlns='x'>2</o>", "second")
        self.publish(self.alice, PRIVATE, "<p xmlns='x'>2</p>", "second")
        self.assertEqual(item_events(self.carol.read(), OPEN), [])
        self.assertEqual(item_events(self.bob.read(), PRIVATE), [])
        self.wants(self.alice, OPEN)
        self.alice.read()  # the last item
        self.publish(self.alice, OPEN, "<o xmlns='x'>3</o>", "third")
        self.assertEqual(item_events(self.last_read, OPEN), [("alice@localhost/phone", "third")])

    def test_removed_account_loses_its_subscriptions(self) -> None:
        """An account removed in-band (account/removed) is no longer
        subscribed anywhere, in memory or stored."""
        from convergence.xmpp.events import AccountEvent

        self.sub(self.carol, OPEN)
        self.sub(self.carol, OPEN, "carol@localhost/tablet")
        self.carol.read()
        self.server.bus.fire("account/removed", AccountEvent("carol", "localhost"))
        self.assertEqual(self.server.pep_store.pep_subscriptions("alice", "localhost"), [])
        self.assertEqual(self.server.pep.subscribers(JID.parse("alice@localhost"), OPEN),
                         set())
