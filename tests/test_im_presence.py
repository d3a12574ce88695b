"""Subscriptions and presence (RFC 6121 sections 3 and 4) on StringTransport."""

from __future__ import annotations

from tests.imhelpers import ImFixture, items, of


class SubscriptionTests(ImFixture):
    def test_handshake_ends_in_both(self) -> None:
        """subscribe/subscribed both ways: both rosters say both, with pushes
        and the presence of the newly visible contact."""
        self.roster(self.alice)
        self.roster(self.bob)
        self.alice.available()
        self.bob.available()
        self.alice.send("<presence to='bob@localhost' type='subscribe'><status>hi</status>"
                        "</presence>")
        [push] = of(self.alice.read(), "iq", type="set")
        self.assertEqual(items(push)["bob@localhost"]["ask"], "subscribe")
        got = self.bob.read()
        [request] = of(got, "presence", type="subscribe")
        self.assertEqual(request.get("from"), "alice@localhost")  # bare, 3.1.2
        self.assertEqual(request.findtext("{jabber:client}status"), "hi")
        self.assertEqual(of(got, "iq", type="set"), [])  # pending-in only: unlisted

        self.bob.send("<presence to='alice@localhost' type='subscribed'/>")
        got = self.alice.read()
        self.assertEqual(len(of(got, "presence", type="subscribed")), 1)
        self.assertEqual(items(of(got, "iq", type="set")[0])["bob@localhost"]
                         ["subscription"], "to")
        # 3.1.5: bob's server sends bob's current presence to alice
        self.assertEqual(len(of(got, "presence", from_="bob@localhost/laptop")), 1)
        self.assertEqual(items(self.roster(self.bob))["alice@localhost"]["subscription"],
                         "from")

        self.bob.send("<presence to='alice@localhost' type='subscribe'/>")
        self.alice.send("<presence to='bob@localhost' type='subscribed'/>")
        self.assertEqual(items(self.roster(self.alice))["bob@localhost"]["subscription"],
                         "both")
        self.assertEqual(items(self.roster(self.bob))["alice@localhost"]["subscription"],
                         "both")

    def test_request_kept_for_offline_user(self) -> None:
        """3.1.3: a request to an offline user is redelivered at login."""
        self.alice.send("<presence to='carol@localhost' type='subscribe'>"
                        "<status>it is alice</status></presence>")
        carol = self.client("carol", "carol-pw", "home")
        [request] = of(carol.available(), "presence", type="subscribe")
        self.assertEqual(request.get("from"), "alice@localhost")
        self.assertEqual(request.findtext("{jabber:client}status"), "it is alice")

    def test_preapproval(self) -> None:
        """3.4: a pre-approved contact's request is approved without asking."""
        self.alice.available()
        self.bob.available()
        self.alice.read()
        self.bob.send("<presence to='alice@localhost' type='subscribed'/>")
        self.assertEqual(of(self.alice.read(), "presence"), [])  # not routed
        self.alice.send("<presence to='bob@localhost' type='subscribe'/>")
        self.assertEqual(of(self.bob.read(), "presence", type="subscribe"), [])
        self.assertEqual(len(of(self.alice.read(), "presence", type="subscribed")), 1)
        self.assertEqual(items(self.roster(self.alice))["bob@localhost"]["subscription"],
                         "to")

    def test_unknown_contact(self) -> None:
        """A subscribe to an account that does not exist: unsubscribed back,
        which clears the pending request."""
        self.alice.available()
        self.alice.send("<presence to='nobody@localhost' type='subscribe'/>")
        [reply] = of(self.alice.read(), "presence", type="unsubscribed")
        self.assertEqual(reply.get("from"), "nobody@localhost")
        item = items(self.roster(self.alice))["nobody@localhost"]
        self.assertEqual((item["subscription"], item.get("ask")), ("none", None))

    def test_deny(self) -> None:
        """unsubscribed answers a request: the requester's ask is cleared."""
        self.alice.send("<presence to='bob@localhost' type='subscribe'/>")
        self.bob.send("<presence to='alice@localhost' type='unsubscribed'/>")
        item = items(self.roster(self.alice))["bob@localhost"]
        self.assertEqual((item["subscription"], item.get("ask")), ("none", None))


class PresenceTests(ImFixture):
    def setUp(self) -> None:
        super().setUp()
        self.subscribe_both()

    def test_initial_presence_probes_and_broadcast(self) -> None:
        """4.2: bob online first; alice's initial presence reaches bob, and
        the probe brings bob's presence to alice."""
        self.bob.available()
        got = self.alice.available()
        self.assertEqual(len(of(got, "presence", from_="bob@localhost/laptop")), 1)
        [seen] = of(self.bob.read(), "presence", from_="alice@localhost/phone")
        self.assertIsNone(seen.get("type"))

    def test_update_and_unavailable_on_disconnect(self) -> None:
        """An update is broadcast; losing the connection says unavailable."""
        self.bob.available()
        self.alice.available()
        self.bob.read()
        self.alice.send("<presence><show>away</show></presence>")
        [update] = of(self.bob.read(), "presence", from_="alice@localhost/phone")
        self.assertEqual(update.findtext("{jabber:client}show"), "away")
        self.alice.stream.connectionLost(None)
        [gone] = of(self.bob.read(), "presence", from_="alice@localhost/phone")
        self.assertEqual(gone.get("type"), "unavailable")

    def test_probe_after_logout_answers_unavailable(self) -> None:
        """4.3.2: a contact offline is reported unavailable."""
        self.alice.available()
        self.alice.send("<presence type='unavailable'><status>bye</status></presence>")
        got = self.bob.available()
        [last] = of(got, "presence", type="unavailable")
        self.assertEqual(last.findtext("{jabber:client}status"), "bye")

    def test_no_leak_without_subscription(self) -> None:
        """carol, not subscribed, sees nothing of alice, even by probing."""
        carol = self.client("carol", "carol-pw", "home")
        got = carol.available()
        self.alice.available()
        self.assertEqual(of(carol.read(), "presence", from_="alice@localhost/phone"), [])
        self.assertEqual(of(got, "presence", from_="alice@localhost/phone"), [])
        carol.send("<presence to='alice@localhost' type='probe'/>")
        self.assertEqual(of(carol.read(), "presence", from_="alice@localhost/phone"), [])

    def test_two_resources_see_each_other(self) -> None:
        """4.2.2: a user's resources see each other's presence."""
        self.alice.available()
        tablet = self.client("alice", "secret", "tablet")
        got = tablet.available()
        self.assertEqual(len(of(got, "presence", from_="alice@localhost/phone")), 1)
        self.assertEqual(len(of(self.alice.read(), "presence",
                                from_="alice@localhost/tablet")), 1)

    def test_directed_presence_cleanup(self) -> None:
        """4.6: directed presence to a non-contact gets unavailable too."""
        carol = self.client("carol", "carol-pw", "home")
        carol.available()
        self.alice.available()
        self.alice.send("<presence to='carol@localhost/home'/>")
        self.assertEqual(len(of(carol.read(), "presence", from_="alice@localhost/phone")), 1)
        self.alice.send("<presence type='unavailable'/>")
        [gone] = of(carol.read(), "presence", from_="alice@localhost/phone")
        self.assertEqual(gone.get("type"), "unavailable")

    def test_negative_priority_gets_presence_not_messages(self) -> None:
        """8.5.2.1: presence goes to every available resource; a message
        to the bare JID never to a negative priority."""
        self.bob.available(-1)
        self.alice.available()
        self.assertEqual(len(of(self.bob.read(), "presence",
                                from_="alice@localhost/phone")), 1)
        self.alice.send("<message to='bob@localhost' type='chat'><body>x</body></message>")
        self.assertEqual(of(self.bob.read(), "message"), [])
