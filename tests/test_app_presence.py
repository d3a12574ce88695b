"""An application's address as a roster contact: subscription, probes,
broadcast, and nothing revealed to users who are not subscribed."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from convergence.xmpp.app_presence import AppPresence, presence_stanza
from convergence.xmpp.servlet import XmppServlet
from tests.imhelpers import ROSTER, items, of
from tests.xmpphelpers import Client, make_app, make_server

C = "{jabber:client}"
BOT = "bot@localhost"


class Bot(XmppServlet):
    accept_subscriptions = True
    status = "ready to help"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    def presence_of(self, address, peer):
        return AppPresence(show="chat", status=self.status)

    def on_presence(self, request):
        self.seen.append((str(request.sender), request.type))


class Shy(XmppServlet):
    """The default: requests stay pending, probes see nothing."""


class AppPresenceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.bot = Bot()
        apps = (make_app("bot", self.bot, (BOT,)),
                make_app("shy", Shy(), ("shy@localhost",)))
        self.server, self.clock = make_server(self.mktemp(), apps)
        self.alice = Client(self.server)
        self.alice.login("alice", "secret", "phone")
        self.alice.available()

    def roster(self) -> dict:
        self.alice.send(f"<iq type='get' id='r'><query xmlns='{ROSTER}'/></iq>")
        return items(of(self.alice.read(), "iq", id="r")[0])

    def subscribe(self, to: str) -> list:
        self.alice.send(f"<presence to='{to}' type='subscribe'/>")
        return self.alice.read()

    def test_subscription_accepted_and_presence_sent(self) -> None:
        got = self.subscribe(BOT)
        [subscribed] = of(got, "presence", type="subscribed")
        self.assertEqual(subscribed.get("from"), BOT)
        [available] = [p for p in of(got, "presence") if p.get("type") is None]
        self.assertEqual(available.get("from"), BOT)
        self.assertEqual(available.findtext(f"{C}show"), "chat")
        self.assertEqual(available.findtext(f"{C}status"), "ready to help")
        self.assertEqual(self.roster()[BOT]["subscription"], "to")

    def test_probe_at_login_answered_by_the_app(self) -> None:
        self.subscribe(BOT)
        second = Client(self.server)
        second.login("alice", "secret", "laptop")
        got = second.available()
        [seen] = [p for p in of(got, "presence", **{"from": BOT}) if p.get("type") is None]
        self.assertEqual(seen.findtext(f"{C}status"), "ready to help")

    def test_broadcast_goes_to_subscribers_only(self) -> None:
        self.subscribe(BOT)
        bob = Client(self.server)
        bob.login("bob", "hunter2", "laptop")
        bob.available()
        bob.read()
        service = self.server.container.factories["xmpp"].presence
        counts: list[int] = []
        service.broadcast(BOT, AppPresence(show="dnd", status="busy")).addCallback(
            counts.append)
        self.assertEqual(counts, [1])
        [update] = of(self.alice.read(), "presence", **{"from": BOT})
        self.assertEqual(update.findtext(f"{C}show"), "dnd")
        self.assertEqual(of(bob.read(), "presence", **{"from": BOT}), [])
        service.broadcast(BOT, None)
        [gone] = of(self.alice.read(), "presence", **{"from": BOT})
        self.assertEqual(gone.get("type"), "unavailable")

    def test_probe_from_a_non_subscriber_gets_unsubscribed(self) -> None:
        """A probe that did not come through a subscription (here bob's,
        routed as the server would) reveals nothing."""
        bob = Client(self.server)
        bob.login("bob", "hunter2", "laptop")
        bob.available()
        bob.read()
        sent: list = []
        self.server.bus.hook("pre-stanza", lambda e: sent.append(e.stanza)
                             if str(e.sender.bare) == BOT else None, 1000)
        self.server.router.route(presence_stanza("bob@localhost", BOT, None, "probe"))
        self.assertEqual([(p.get("to"), p.get("type")) for p in sent],
                         [("bob@localhost", "unsubscribed")])
        # bob's server ignores an unsubscribed for a contact not in his roster
        self.assertEqual(of(bob.read(), "presence", **{"from": BOT}), [])

    def test_unsubscribe_answered(self) -> None:
        self.subscribe(BOT)
        self.alice.send(f"<presence to='{BOT}' type='unsubscribe'/>")
        self.alice.read()
        self.assertEqual(self.roster()[BOT]["subscription"], "none")

    def test_default_app_leaves_request_pending(self) -> None:
        got = self.subscribe("shy@localhost")
        self.assertEqual(of(got, "presence", **{"from": "shy@localhost"}), [])
        item = self.roster()["shy@localhost"]
        self.assertEqual((item["subscription"], item.get("ask")), ("none", "subscribe"))

    def test_peer_presence_reaches_on_presence(self) -> None:
        self.alice.send(f"<presence to='{BOT}'/>")
        self.alice.send(f"<presence to='{BOT}' type='unavailable'/>")
        self.assertEqual(self.bot.seen, [("alice@localhost/phone", None),
                                         ("alice@localhost/phone", "unavailable")])

    def test_bad_show_refused(self) -> None:
        self.assertRaises(ValueError, AppPresence, show="sleeping")
        self.assertRaises(ValueError, AppPresence, priority=200)
