"""XEP-0012 Last Activity: server uptime, users' last logout, who may ask."""

from __future__ import annotations

from pathlib import Path

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from convergence.store.interfaces import ILastActivityStore
from convergence.store.sqlite import SqliteAccountStore
from convergence.store.sqlite_im import SqliteImStore
from tests.imhelpers import ImFixture, of
from tests.xmpphelpers import Client, make_server

LAST = "jabber:iq:last"
Q = f"{{{LAST}}}query"
ERR = "{urn:ietf:params:xml:ns:xmpp-stanzas}"


def ask(client: Client, to: str | None, id_: str = "l1"):
    to_attr = "" if to is None else f" to='{to}'"
    client.send(f"<iq type='get' id='{id_}'{to_attr}><query xmlns='{LAST}'/></iq>")
    return of(client.read(), "iq", id=id_)[0]


def seconds(result) -> tuple[int, str | None]:
    assert result.get("type") == "result", result.get("type")
    query = result.find(Q)
    return int(query.get("seconds")), query.text


def condition(result) -> str | None:
    error = result.find("{jabber:client}error")
    return None if error is None else next(c.tag.replace(ERR, "") for c in error
                                           if c.tag.startswith(ERR) and not c.tag.endswith("text"))


class UptimeTests(SynchronousTestCase):
    def test_server_uptime(self) -> None:
        """To the domain: seconds since the server started, no text."""
        server, clock = make_server(self.mktemp())
        clock.advance(42.7)
        client = Client(server)
        client.login()
        result = ask(client, "localhost")
        self.assertEqual(result.get("from"), "localhost")
        self.assertEqual(seconds(result), (42, None))


class LastLogoutTests(ImFixture):
    def setUp(self) -> None:
        super().setUp()
        self.subscribe_both()
        self.alice.available()
        self.bob.available()
        self.alice.read()
        self.bob.read()

    def test_online_is_zero(self) -> None:
        """A contact asking about an available user gets 0."""
        self.clock.advance(30)
        result = ask(self.bob, "alice@localhost")
        self.assertEqual(result.get("from"), "alice@localhost")
        self.assertEqual(seconds(result), (0, None))

    def test_after_logout_with_status(self) -> None:
        """After an unavailable presence: seconds since then and its status."""
        self.clock.advance(10)
        self.alice.send("<presence type='unavailable'><status>gone fishing</status></presence>")
        self.clock.advance(125)
        self.assertEqual(seconds(ask(self.bob, "alice@localhost")), (125, "gone fishing"))

    def test_after_connection_loss(self) -> None:
        """A lost connection of an available resource is a logout, without text."""
        self.alice.stream.connectionLost(None)
        self.clock.advance(7)
        self.assertEqual(seconds(ask(self.bob, "alice@localhost")), (7, None))

    def test_one_resource_still_available(self) -> None:
        """While another resource is available the answer stays 0."""
        tablet = self.client("alice", "secret", "tablet")
        tablet.available()
        self.alice.send("<presence type='unavailable'/>")
        self.clock.advance(50)
        self.assertEqual(seconds(ask(self.bob, "alice@localhost")), (0, None))
        tablet.send("<presence type='unavailable'><status>bye</status></presence>")
        self.clock.advance(5)
        self.assertEqual(seconds(ask(self.bob, "alice@localhost")), (5, "bye"))

    def test_unsubscribed_is_forbidden(self) -> None:
        """Someone without a subscription to the user's presence gets
        forbidden, for an existing account and for none alike."""
        carol = self.client("carol", "carol-pw", "home")
        self.alice.send("<presence type='unavailable'><status>secret</status></presence>")
        for to in ("alice@localhost", "nobody@localhost"):
            result = ask(carol, to)
            self.assertEqual(result.get("type"), "error")
            self.assertEqual(condition(result), "forbidden")
            self.assertNotIn(b"secret", etree.tostring(result))

    def test_subscription_to_only_is_forbidden(self) -> None:
        """Only from/both on the user's roster lets a contact know: carol,
        whom alice is subscribed to but who is not subscribed to alice,
        may not."""
        carol = self.client("carol", "carol-pw", "home")
        carol.available()
        self.alice.send("<presence to='carol@localhost' type='subscribe'/>")
        carol.send("<presence to='alice@localhost' type='subscribed'/>")
        self.alice.read()
        carol.read()
        self.assertEqual(condition(ask(carol, "alice@localhost")), "forbidden")
        # the other way round she may: alice sees carol
        self.assertEqual(seconds(ask(self.alice, "carol@localhost", "l2"))[0], 0)

    def test_self_without_to(self) -> None:
        """The user may ask about their own account (no 'to')."""
        self.assertEqual(seconds(ask(self.alice, None)), (0, None))
        watcher = self.client("alice", "secret", "watch")  # bound, not available
        self.alice.send("<presence type='unavailable'/>")
        self.clock.advance(3)
        self.assertEqual(seconds(ask(watcher, None)), (3, None))

    def test_full_jid_goes_to_the_client(self) -> None:
        """A query to a full JID is the client's to answer."""
        self.bob.send(f"<iq type='get' id='f1' to='alice@localhost/phone'><query xmlns='{LAST}'/></iq>")
        [forwarded] = of(self.alice.read(), "iq", id="f1")
        self.assertEqual(forwarded.get("from"), "bob@localhost/laptop")


class NoRecordTests(ImFixture):
    def test_no_logout_known(self) -> None:
        """An offline user whose logout was never seen: item-not-found."""
        self.subscribe_both()
        self.alice.stream.connectionLost(None)  # never available: no logout
        result = ask(self.bob, "alice@localhost")
        self.assertEqual(condition(result), "item-not-found")


class PersistenceTests(SynchronousTestCase):
    def test_last_logout_survives_a_restart(self) -> None:
        """The logout is in the store: a new server on the same database
        answers from it."""
        database = Path(self.mktemp())
        database.parent.mkdir(parents=True, exist_ok=True)
        store = SqliteImStore(database)
        server, clock = make_server(self.mktemp(), im_store=store)
        clock.advance(1000)
        alice = Client(server)
        alice.login()
        alice.available()
        alice.send("<presence type='unavailable'><status>brb</status></presence>")
        store.close()

        store = SqliteImStore(database)
        self.addCleanup(store.close)
        server, clock = make_server(self.mktemp(), im_store=store)
        clock.advance(1600)
        alice = Client(server)
        alice.login()
        self.assertEqual(seconds(ask(alice, None)), (600, "brb"))

    def test_store(self) -> None:
        """ILastActivityStore on SQLite: replace, read, removed with the account."""
        database = Path(self.mktemp())
        database.parent.mkdir(parents=True, exist_ok=True)
        store = SqliteImStore(database)
        self.addCleanup(store.close)
        verifyObject(ILastActivityStore, store)
        self.assertIsNone(store.last_logout("alice", "localhost"))
        store.set_last_logout("alice", "localhost", 5.0, None)
        store.set_last_logout("alice", "localhost", 9.5, "away")
        self.assertEqual(store.last_logout("alice", "localhost"), (9.5, "away"))
        accounts = SqliteAccountStore(database)
        self.addCleanup(accounts.close)
        accounts.create("alice", "localhost", {})
        accounts.delete("alice", "localhost")
        self.assertIsNone(store.last_logout("alice", "localhost"))
