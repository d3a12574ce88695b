"""Offline messages (XEP-0160) on StringTransport."""

from __future__ import annotations

from dataclasses import replace

from lxml import etree
from twisted.internet.defer import Deferred

from convergence.xmpp.im import offline as offline_module
from convergence.xmpp.jid import JID
from tests.imhelpers import C, ImFixture, of
from tests.xmpphelpers import make_server


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


class Queued:
    """A run_in_db whose jobs wait until the test runs them."""

    def __init__(self) -> None:
        self.jobs: list = []

    def __call__(self, f, *args, **kwargs):
        d = Deferred()
        self.jobs.append((f, args, kwargs, d))
        return d

    def run_one(self) -> None:
        f, args, kwargs, d = self.jobs.pop(0)
        d.callback(f(*args, **kwargs))

    def run_all(self, limit: int = 50) -> None:
        for _ in range(limit):
            if not self.jobs:
                return
            f, args, kwargs, d = self.jobs.pop(0)
            d.callback(f(*args, **kwargs))
        raise AssertionError("jobs keep coming")


class OfflineBatchTests(ImFixture):
    def send(self, to: str, body: str) -> None:
        self.alice.send(f"<message to='{to}' type='chat' id='{body}'>"
                        f"<body>{body}</body></message>")

    def test_message_between_presence_and_flush_keeps_order(self) -> None:
        """While the presence module still waits for the roster after a
        client's available presence, a new message to its bare JID is
        stored behind the stored ones, not delivered before them."""
        self.send("carol@localhost", "old")
        carol = self.client("carol", "carol-pw", "home")
        rosters = self.server.rosters
        queued = Queued()
        rosters.run_in_db = queued
        carol.send("<presence/>")  # the roster load is queued: no flush yet
        self.assertEqual(bodies(carol.read()), [])
        self.send("carol@localhost", "new")
        self.assertEqual(bodies(carol.read()), [])
        rosters.run_in_db = self.server.run_in_db
        queued.run_all()
        self.assertEqual(bodies(carol.read()), ["old", "new"])
        self.assertEqual(self.server.im_store.count_messages("carol", "localhost"), 0)
        self.assertEqual(self.server.offline.awaiting, {})
        self.send("carol@localhost", "live")
        self.assertEqual(bodies(carol.read()), ["live"])

    def test_stream_gone_before_its_flush_stops_holding(self) -> None:
        """A client that leaves before its flush started no longer holds
        messages back for its account."""
        carol = self.client("carol", "carol-pw", "home")
        rosters = self.server.rosters
        queued = Queued()
        rosters.run_in_db = queued
        carol.send("<presence/>")
        self.assertTrue(self.server.offline.holding(carol.stream.jid.bare))
        carol.stream.connectionLost(None)
        self.assertFalse(self.server.offline.holding(JID.parse("carol@localhost")))

    def test_negative_priority_before_the_flush_stops_holding(self) -> None:
        carol = self.client("carol", "carol-pw", "home")
        rosters = self.server.rosters
        rosters.run_in_db = Queued()
        carol.send("<presence/>")
        carol.send("<presence><priority>-1</priority></presence>")
        self.assertFalse(self.server.offline.holding(carol.stream.jid.bare))

    def test_delivered_in_one_write_and_removed_in_one_statement(self) -> None:
        for n in range(5):
            self.send("carol@localhost", f"m{n}")
        carol = self.client("carol", "carol-pw", "home")
        writes: list[bytes] = []
        transport_write = carol.stream.transport.write

        def counting(data: bytes) -> None:
            writes.append(data)
            transport_write(data)

        carol.stream.transport.write = counting
        offline = self.server.offline
        queued = Queued()
        offline.run_in_db = queued
        carol.send("<presence/>")
        [(read, _, _, _)] = queued.jobs
        queued.run_one()  # the read: delivered, not yet removed
        self.assertEqual(len([w for w in writes if b"<body>m" in w]), 1)
        self.assertEqual(self.server.im_store.count_messages("carol", "localhost"), 5)
        [(remove, _, _, _)] = queued.jobs
        self.assertEqual(remove.__name__, "remove_messages_through")
        queued.run_all()
        self.assertEqual(bodies(carol.read()), [f"m{n}" for n in range(5)])
        self.assertEqual(self.server.im_store.count_messages("carol", "localhost"), 0)

    def test_reads_bounded_without_quota(self) -> None:
        """Without a quota each read takes READ_LIMIT messages; the flush
        reads until the store is empty, in order."""
        self.server.config = replace(self.server.config, offline_quota=0)
        for n in range(7):
            self.send("carol@localhost", f"m{n}")
        self.patch(offline_module, "READ_LIMIT", 3)
        carol = self.client("carol", "carol-pw", "home")
        self.assertEqual(bodies(carol.available()), [f"m{n}" for n in range(7)])
        self.assertEqual(self.server.im_store.count_messages("carol", "localhost"), 0)

    def test_burst_is_one_write_job_and_quota_holds(self) -> None:
        """Messages queued before the database job runs are stored by that
        one job; the quota counts the earlier ones of the batch."""
        self.server.config = replace(self.server.config, offline_quota=2)
        offline = self.server.offline
        queued = Queued()
        offline.run_in_db = queued
        for n in range(3):
            self.send("carol@localhost", f"m{n}")
        self.assertEqual(len(queued.jobs), 1)
        self.assertEqual(offline.pending, 3)
        self.assertEqual(of(self.alice.read(), "message"), [])
        queued.run_all()
        self.assertEqual(offline.pending, 0)
        [error] = of(self.alice.read(), "message", type="error")
        self.assertEqual(error.get("id"), "m2")
        self.assertIsNotNone(error.find(f"{C}error/{{urn:ietf:params:xml:ns:xmpp-stanzas}}"
                                        "service-unavailable"))
        self.assertEqual(error.find(f"{C}error").get("type"), "wait")
        self.send("carol@localhost", "m3")  # a new job for a later write
        self.assertEqual(len(queued.jobs), 1)

    def test_store_failure_answers_every_sender(self) -> None:
        store = self.server.offline.store

        def broken(items, quota):
            raise RuntimeError("disk gone")

        self.patch(store, "store_messages", broken)
        self.send("carol@localhost", "a")
        self.send("carol@localhost", "b")
        errors = of(self.alice.read(), "message", type="error")
        self.assertEqual([e.get("id") for e in errors], ["a", "b"])
        self.assertIsNotNone(errors[0].find(
            f"{C}error/{{urn:ietf:params:xml:ns:xmpp-stanzas}}internal-server-error"))
        self.flushLoggedErrors(RuntimeError)


class OfflineStreamManagementTests(ImFixture):
    """XEP-0198: a backlog larger than the unacknowledged queue goes in
    parts, each after the client acknowledged the one before."""

    def setUp(self) -> None:
        self.server, self.clock = make_server(self.mktemp(), sm_max_queue=10,
                                              sm_ack_every=5, sm_ack_interval=30.0)
        self.server.accounts.add("carol@localhost", "carol-pw")
        self.alice = self.client("alice", "secret", "phone")
        self.bob = self.client("bob", "hunter2", "laptop")

    def send(self, body: str) -> None:
        self.alice.send(f"<message to='carol@localhost' type='chat' id='{body}'>"
                        f"<body>{body}</body></message>")

    def test_backlog_paced_by_acknowledgements(self) -> None:
        from tests.test_sm import SM, sm

        for n in range(25):
            self.send(f"m{n}")
        carol = self.client("carol", "carol-pw", "home")
        carol.send(f"<enable xmlns='{SM}'/>")
        carol.read()
        carol.send("<presence/>")
        got = carol.read()
        # the queue takes 10: the presence echo and 9 messages
        self.assertEqual(bodies(got), [f"m{n}" for n in range(9)])
        self.assertTrue(sm(got, "r"))  # asked to acknowledge at once
        self.assertEqual(of(got, "error"), [])  # no stream error
        self.assertEqual(self.server.im_store.count_messages("carol", "localhost"), 16)
        self.send("late")  # to the bare JID meanwhile: stored behind the rest
        self.assertEqual(bodies(carol.read()), [])
        received = bodies(got)
        stanzas = len(of(got, "presence")) + len(of(got, "message"))
        for _ in range(10):
            carol.send(f"<a xmlns='{SM}' h='{stanzas}'/>")
            more = carol.read()
            if not of(more, "message"):
                break
            received += bodies(more)
            stanzas += len(of(more, "message"))
        self.assertEqual(received, [f"m{n}" for n in range(25)] + ["late"])
        self.assertEqual(self.server.im_store.count_messages("carol", "localhost"), 0)
        self.assertNotIn(carol.stream.jid.bare, self.server.offline.flushing)
        self.send("live")
        self.assertEqual(bodies(carol.read()), ["live"])

    def test_session_gone_while_waiting_keeps_the_rest(self) -> None:
        from tests.test_sm import SM

        for n in range(15):
            self.send(f"m{n}")
        carol = self.client("carol", "carol-pw", "home")
        carol.send(f"<enable xmlns='{SM}'/>")
        carol.read()
        carol.send("<presence/>")
        self.assertEqual(len(bodies(carol.read())), 9)
        carol.stream.connectionLost(None)  # no resumption: the session ends
        owner = JID.parse("carol@localhost")
        self.assertNotIn(owner, self.server.offline.flushing)
        stored = [etree.fromstring(m.stanza).findtext(f"{C}body")
                  for m in self.server.im_store.messages("carol", "localhost", 50)]
        # the 9 unacknowledged go back to storage (behind the 6 never sent:
        # stream management keeps them with a new id), none is lost
        self.assertEqual(sorted(stored, key=lambda b: int(b[1:])),
                         [f"m{n}" for n in range(15)])
