"""The XEP-0045 service: discovery, XEP-0410 self-ping, rooms kept in the
store and restored, stanzas waiting for the rooms to load."""

from __future__ import annotations

from pathlib import Path

from twisted.internet.defer import Deferred

from convergence.store.interfaces import IMucStore, StoredRoom
from convergence.store.sqlite_muc import SqliteMucStore
from convergence.xmpp.muc.roomconfig import RoomConfig
from tests.muchelpers import ROOM, MucFixture, error, of
from tests.xmpphelpers import Client, make_server

INFO = "http://jabber.org/protocol/disco#info"
ITEMS = "http://jabber.org/protocol/disco#items"
PING = "<ping xmlns='urn:xmpp:ping'/>"


def features(result) -> set[str]:
    return {f.get("var") for f in result.iter(f"{{{INFO}}}feature")}


class DiscoTests(MucFixture):
    def test_server_lists_service(self) -> None:
        result = self.iq(self.alice, "get", f"<query xmlns='{ITEMS}'/>", "localhost")
        jids = [i.get("jid") for i in result.iter(f"{{{ITEMS}}}item")]
        self.assertIn("conference.localhost", jids)

    def test_service_info(self) -> None:
        result = self.iq(self.alice, "get", f"<query xmlns='{INFO}'/>", "conference.localhost")
        identity = result.find(f"{{{INFO}}}query/{{{INFO}}}identity")
        self.assertEqual((identity.get("category"), identity.get("type")), ("conference", "text"))
        self.assertIn("http://jabber.org/protocol/muc", features(result))

    def test_public_rooms_listed(self) -> None:
        self.room_with((self.alice, "Alice"), roomname="The Cave")
        self.join(self.bob, "Bob", "locked@conference.localhost")  # not configured yet
        result = self.iq(self.carol, "get", f"<query xmlns='{ITEMS}'/>", "conference.localhost")
        self.assertEqual([(i.get("jid"), i.get("name"))
                          for i in result.iter(f"{{{ITEMS}}}item")], [(ROOM, "The Cave")])

    def test_room_info(self) -> None:
        self.room_with((self.alice, "Alice"), membersonly="1", whois="anyone",
                       roomdesc="Witches")
        result = self.iq(self.carol, "get", f"<query xmlns='{INFO}'/>")
        got = features(result)
        for var in ("http://jabber.org/protocol/muc", "muc_membersonly", "muc_nonanonymous",
                    "muc_temporary", "muc_public", "muc_unmoderated", "muc_unsecured",
                    "http://jabber.org/protocol/muc#self-ping-optimization"):
            self.assertIn(var, got)
        fields = {f.get("var"): f.findtext("{jabber:x:data}value")
                  for f in result.iter("{jabber:x:data}field")}
        self.assertEqual(fields["FORM_TYPE"], "http://jabber.org/protocol/muc#roominfo")
        self.assertEqual(fields["muc#roominfo_description"], "Witches")
        # carol is no member: nothing of what goes on inside
        self.assertNotIn("muc#roominfo_occupants", fields)
        self.assertNotIn("muc#roominfo_subject", fields)
        result = self.iq(self.alice, "get", f"<query xmlns='{INFO}'/>")
        fields = {f.get("var"): f.findtext("{jabber:x:data}value")
                  for f in result.iter("{jabber:x:data}field")}
        self.assertEqual(fields["muc#roominfo_occupants"], "1")
        # members-only: occupants are not listed to anyone
        items = self.iq(self.carol, "get", f"<query xmlns='{ITEMS}'/>")
        self.assertEqual(len(items[0]), 0)

    def test_unknown_room(self) -> None:
        result = self.iq(self.alice, "get", f"<query xmlns='{INFO}'/>",
                         "nothing@conference.localhost")
        self.assertEqual(error(result), "item-not-found")

    def test_locked_room_hidden_from_others(self) -> None:
        self.join(self.alice, "Alice")
        self.assertEqual(error(self.iq(self.bob, "get", f"<query xmlns='{INFO}'/>")),
                         "item-not-found")
        self.assertEqual(self.iq(self.alice, "get", f"<query xmlns='{INFO}'/>").get("type"),
                         "result")


class SelfPingTests(MucFixture):
    def setUp(self) -> None:
        super().setUp()
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))

    def test_joined(self) -> None:
        self.assertEqual(self.iq(self.bob, "get", PING, f"{ROOM}/Bob").get("type"), "result")

    def test_not_joined(self) -> None:
        self.assertEqual(error(self.iq(self.carol, "get", PING, f"{ROOM}/Carol")),
                         "not-acceptable")
        self.assertEqual(error(self.iq(self.carol, "get", PING, f"{ROOM}/Bob")),
                         "not-acceptable")
        self.bob.send(f"<presence to='{ROOM}/Bob' type='unavailable'/>")
        self.bob.read()
        self.assertEqual(error(self.iq(self.bob, "get", PING, f"{ROOM}/Bob")),
                         "not-acceptable")

    def test_service_and_room_ping(self) -> None:
        self.assertEqual(self.iq(self.bob, "get", PING, "conference.localhost").get("type"),
                         "result")
        self.assertEqual(self.iq(self.bob, "get", PING).get("type"), "result")


class StoreTests(MucFixture):
    def test_interface(self) -> None:
        store = SqliteMucStore(":memory:")
        self.assertTrue(IMucStore.providedBy(store))
        room = StoredRoom("r", RoomConfig(persistent=True).to_json(), "s", "n",
                          {"a@x": "owner", "b@x": "outcast"}, 5.0)
        store.put_room("conference.x", room)
        self.assertEqual(store.rooms("conference.x"), [room])
        self.assertEqual(store.rooms("conference.y"), [])
        store.put_room("conference.x", StoredRoom("r", "{}", "", "", {"a@x": "owner"}, 9.0))
        again = store.rooms("conference.x")[0]
        self.assertEqual((again.config, again.affiliations, again.created),
                         ("{}", {"a@x": "owner"}, 5.0))
        self.assertTrue(store.delete_room("conference.x", "r"))
        self.assertFalse(store.delete_room("conference.x", "r"))
        (count,) = store._db.execute("SELECT COUNT(*) FROM muc_affiliations").fetchone()
        self.assertEqual(count, 0)

    def test_config_json_tolerates_bad_values(self) -> None:
        defaults = RoomConfig(history_length=7)
        self.assertEqual(RoomConfig.from_json("not json", defaults), defaults)
        got = RoomConfig.from_json('{"public": "yes", "moderated": true, "x": 1}', defaults)
        self.assertEqual(got, RoomConfig(history_length=7, moderated=True))


class RestoreTests(MucFixture):
    """A persistent room, its configuration, subject and affiliations
    outlive the server."""

    def use_file(self, server, path: Path) -> None:
        server.muc_store = server.muc.store = SqliteMucStore(path)
        self.addCleanup(server.muc_store.close)

    def test_restart(self) -> None:
        path = Path(self.mktemp())
        path.parent.mkdir(parents=True, exist_ok=True)
        self.use_file(self.server, path)
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"), persistentroom="1",
                       membersonly="0", roomname="Cave", passwordprotectedroom="1",
                       roomsecret="pw")
        self.alice.send(f"<message to='{ROOM}' type='groupchat'><subject>Spells</subject>"
                        "</message>")
        self.iq(self.alice, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'>"
                "<item jid='carol@localhost' affiliation='outcast'/></query>")
        server, _ = make_server(self.mktemp())
        self.use_file(server, path)
        bob = Client(server)
        bob.login("bob", "hunter2", "laptop")
        bob.available()
        bob.send(f"<presence to='{ROOM}/Bob'><x xmlns='http://jabber.org/protocol/muc'>"
                 "<password>pw</password></x></presence>")
        got = bob.read()
        self.assertTrue(of(got, "presence", from_=f"{ROOM}/Bob"), got)
        self.assertEqual(got[-1].findtext("{jabber:client}subject"), "Spells")
        room = server.muc.room(ROOM)
        self.assertEqual(room.config.name, "Cave")
        self.assertEqual(room.affiliations, {"alice@localhost": "owner",
                                             "carol@localhost": "outcast"})


class WaitingTests(MucFixture):
    def test_stanzas_wait_for_the_rooms(self) -> None:
        """The store answers late: a join waits for it, then goes through."""
        pending: list[tuple[Deferred, object]] = []

        def later(f, *args):
            d = Deferred()
            pending.append((d, lambda: f(*args)))
            return d

        server, _ = make_server(self.mktemp())
        server.run_in_db = later
        alice = Client(server)
        alice.login()
        alice.available()
        alice.send(f"<presence to='{ROOM}/Alice'/>")
        self.assertEqual(alice.read(), [])
        for d, call in pending:
            d.callback(call())
        self.assertTrue(of(alice.read(), "presence", from_=f"{ROOM}/Alice"))
