"""Offline messages (XEP-0160) on StringTransport."""

from __future__ import annotations

from dataclasses import replace

from twisted.internet.defer import Deferred

from tests.imhelpers import C, ImFixture, of


def bodies(elements) -> list[str]:
    return [m.findtext(f"{C}body") for m in of(elements, "message")]


class OfflineTests(ImFixture):
    def send(self, to: str, body: str, type_: str = "chat") -> None:
        self.alice.send(f"<message to='{to}' type='{type_}' id='{body}'>"
                        f"<body>{body}</body></message>")

    def test_stored_in_order_with_delay(self) -> None:
        """Messages to an offline user come at its next available presence,
        in order, stamped, and only once."""
        for n in range(5):
            self.send("carol@localhost", f"m{n}")
        self.assertEqual(of(self.alice.read(), "message"), [])  # no error
        carol = self.client("carol", "carol-pw", "home")
        self.assertEqual(carol.read(), [])  # not before presence
        got = carol.available()
        self.assertEqual(bodies(got), [f"m{n}" for n in range(5)])
        delay = of(got, "message")[0].find("{urn:xmpp:delay}delay")
        self.assertEqual((delay.get("from"), delay.text), ("localhost", "Offline Storage"))
        self.assertRegex(delay.get("stamp"), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(self.server.im_store.count_messages("carol", "localhost"), 0)
        again = self.client("carol", "carol-pw", "other")
        self.assertEqual(bodies(again.available()), [])

    def test_full_jid_of_offline_resource(self) -> None:
        """A chat to a full JID not online follows the bare-JID rules."""
        self.send("carol@localhost/gone", "hello")
        carol = self.client("carol", "carol-pw", "home")
        self.assertEqual(bodies(carol.available()), ["hello"])

    def test_types_not_stored(self) -> None:
        """headline, groupchat and error are never stored."""
        self.send("carol@localhost", "h", "headline")
        self.send("carol@localhost", "e", "error")
        self.send("carol@localhost", "g", "groupchat")
        self.assertEqual(self.server.im_store.count_messages("carol", "localhost"), 0)
        [bounce] = of(self.alice.read(), "message", type="error")
        self.assertEqual(bounce.get("id"), "g")

    def test_negative_priority_does_not_flush(self) -> None:
        """Only available presence with a non-negative priority flushes."""
        self.send("carol@localhost", "later")
        carol = self.client("carol", "carol-pw", "home")
        self.assertEqual(bodies(carol.available(-5)), [])
        carol.send("<presence><priority>1</priority></presence>")
        self.assertEqual(bodies(carol.read()), ["later"])

    def test_quota(self) -> None:
        """A full store: service-unavailable of type wait to the sender."""
        self.server.config = replace(self.server.config, offline_quota=2)
        for n in range(3):
            self.send("carol@localhost", f"q{n}")
        [error] = of(self.alice.read(), "message", type="error")
        self.assertEqual(error.get("id"), "q2")
        condition = error.find(f"{C}error")
        self.assertEqual(condition.get("type"), "wait")
        self.assertIsNotNone(condition.find(
            "{urn:ietf:params:xml:ns:xmpp-stanzas}service-unavailable"))

    def test_unknown_user_still_bounces(self) -> None:
        self.send("nobody@localhost", "x")
        [error] = of(self.alice.read(), "message", type="error")
        self.assertEqual(error.get("id"), "x")

    def test_message_during_flush_keeps_order(self) -> None:
        """A message arriving while stored ones are being delivered is
        stored behind them, never delivered before them."""
        self.send("carol@localhost", "old")
        carol = self.client("carol", "carol-pw", "home")
        offline = self.server.offline
        owner = carol.stream.jid.bare
        offline.flushing.add(owner)  # a flush in progress (its reads pending)
        carol.available()
        self.send("carol@localhost", "new")
        self.assertEqual(bodies(carol.read()), [])
        offline.flushing.discard(owner)
        offline.flush(carol.stream)
        self.assertEqual(bodies(carol.read()), ["old", "new"])

    def test_message_stored_after_the_flush_read_is_delivered(self) -> None:
        """The database thread runs in order: a message stored during a
        flush, after the flush's read was queued, is read once more and
        delivered now, not left for the next login."""
        queue: list = []

        def queued(f, *args, **kwargs):
            d = Deferred()
            queue.append((f, args, kwargs, d))
            return d

        self.server.offline.run_in_db = queued
        carol = self.client("carol", "carol-pw", "home")
        carol.available()  # the flush's first read is queued
        self.send("carol@localhost", "during")  # stored behind that read
        for _ in range(20):
            if not queue:
                break
            f, args, kwargs, d = queue.pop(0)
            d.callback(f(*args, **kwargs))
        self.assertEqual(queue, [])
        self.assertEqual(bodies(carol.read()), ["during"])
        self.assertEqual(self.server.im_store.count_messages("carol", "localhost"), 0)
        self.assertNotIn(carol.stream.jid.bare, self.server.offline.flushing)
