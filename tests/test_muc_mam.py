"""XEP-0313 archives of chat rooms on StringTransport: what is archived,
stanza-ids by the room, queries with forms and paging, who may query,
real JIDs, the room's configuration and disco, destruction, restarts
with the real SQLite store, retention."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from lxml import etree
from twisted.internet.defer import Deferred

from convergence.store.interfaces import ArchivedMessage, ArchiveQuery
from convergence.store.sqlite_mam import SqliteArchiveStore
from convergence.store.sqlite_muc import SqliteMucStore
from convergence.xmpp.mam.expiry import INTERVAL
from convergence.xmpp.muc.roomconfig import RoomConfig
from tests.muchelpers import ADMIN, OWNER, ROOM, USER, XDATA, MucFixture, of
from tests.test_mam import DATA, DAY, FWD, MAM, SID, Page, form, rsm, stanza_ids
from tests.xmpphelpers import Client, make_server

CLIENT = "{jabber:client}"


def forwarded(result: etree._Element) -> etree._Element:
    return result.find(f"{{{MAM}}}result/{{{FWD}}}forwarded/{CLIENT}message")


class RoomMamFixture(MucFixture):
    def setUp(self) -> None:
        super().setUp()
        self.clock.advance(1_700_000_000)
        self.n = 0

    def say(self, client: Client, body: str, room: str = ROOM, extra: str = "") -> None:
        client.send(f"<message to='{room}' type='groupchat'><body>{body}</body>{extra}"
                    "</message>")

    def query(self, client: Client, inner: str = "", to: str = ROOM,
              queryid: str = "q1", extra: str = "") -> Page:
        self.n += 1
        iq_id = f"mam{self.n}"
        client.send(f"<iq type='set' id='{iq_id}' to='{to}'><query xmlns='{MAM}'"
                    f" queryid='{queryid}'>{inner}{extra}</query></iq>")
        return Page(client.read(), iq_id)

    def stored(self, room: str = ROOM) -> list[ArchivedMessage]:
        name, domain = room.split("@")
        return self.server.archive_store.find(name, domain, ArchiveQuery(limit=1000)).messages

    def talk(self, count: int) -> None:
        """alice and bob say count messages in turn; everyone reads."""
        for n in range(count):
            self.say(self.alice if n % 2 == 0 else self.bob, f"m{n}")
        for client in (self.alice, self.bob, self.carol):
            client.read()


class ArchivingTests(RoomMamFixture):
    def test_live_copies_carry_the_archive_id(self) -> None:
        """Every reflected copy names the same stanza-id by the room, the
        one the archive keeps; a stanza-id by the room that the sender
        put in is removed, one by anyone else stays."""
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))
        self.say(self.alice, "hello", extra=f"<stanza-id xmlns='{SID}' by='{ROOM}' id='fake'/>"
                 f"<stanza-id xmlns='{SID}' by='other@localhost' id='theirs'/>")
        mine = of(self.alice.read(), "message", type="groupchat")
        theirs = of(self.bob.read(), "message", type="groupchat")
        ids = [i for i in stanza_ids(mine[0]) if i[0] == ROOM]
        self.assertEqual(len(ids), 1)
        self.assertNotEqual(ids[0][1], "fake")
        self.assertEqual([i for i in stanza_ids(theirs[0]) if i[0] == ROOM], ids)
        self.assertIn(("other@localhost", "theirs"), stanza_ids(theirs[0]))
        stored = self.stored()
        self.assertEqual([m.id for m in stored], [ids[0][1]])
        self.assertEqual((stored[0].with_jid, stored[0].with_resource), (ROOM, "Alice"))
        kept = etree.fromstring(stored[0].stanza)
        self.assertEqual(kept.get("from"), f"{ROOM}/Alice")
        self.assertIsNone(kept.get("to"))

    def test_subjects_kept_presence_and_empty_messages_not(self) -> None:
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))
        self.alice.send(f"<message to='{ROOM}' type='groupchat'><subject>Spells</subject>"
                        "</message>")
        self.alice.send(f"<message to='{ROOM}' type='groupchat'><active"
                        " xmlns='http://jabber.org/protocol/chatstates'/></message>")
        self.alice.send(f"<presence to='{ROOM}/Alice'><show>away</show></presence>")
        self.say(self.bob, "secret", extra="<no-store xmlns='urn:xmpp:hints'/>")
        stored = self.stored()
        self.assertEqual(len(stored), 1)
        self.assertEqual(etree.fromstring(stored[0].stanza).findtext(f"{CLIENT}subject"),
                         "Spells")

    def test_history_carries_the_stanza_id(self) -> None:
        self.room_with((self.alice, "Alice"))
        self.say(self.alice, "before bob")
        self.alice.read()
        got = of(self.join(self.bob, "Bob"), "message", type="groupchat")
        history = [m for m in got if m.findtext(f"{CLIENT}body") == "before bob"]
        self.assertEqual(stanza_ids(history[0]), [(ROOM, self.stored()[0].id)])

    def test_archiving_off(self) -> None:
        """With muc#roomconfig_enablearchiving off: nothing kept, no
        stanza-id, no MAM in disco, queries refused."""
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"), enablearchiving="0")
        self.say(self.alice, "unrecorded")
        live = of(self.bob.read(), "message", type="groupchat")[0]
        self.assertEqual(stanza_ids(live), [])
        self.assertEqual(self.stored(), [])
        self.assertEqual(self.query(self.bob).error, "service-unavailable")
        features = self.features()
        self.assertNotIn(MAM, features)
        self.assertNotIn(SID, features)
        # ejabberd's field name turns it on again
        self.assertEqual(self.configure(self.alice, {"mam": "1"}).get("type"), "result")
        self.say(self.alice, "recorded")
        self.assertEqual(len(self.stored()), 1)

    def features(self, client: Client | None = None) -> list[str]:
        info = self.iq(client or self.bob, "get",
                       "<query xmlns='http://jabber.org/protocol/disco#info'/>")
        return [f.get("var") for f in info.iter("{http://jabber.org/protocol/disco#info}feature")]

    def test_disco_and_form(self) -> None:
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))
        features = self.features()
        for feature in (MAM, MAM + "#extended", SID, "jabber:iq:register"):
            self.assertIn(feature, features)
        got = self.iq(self.alice, "get", f"<query xmlns='{OWNER}'/>")
        field = got.find(f".//{{{XDATA}}}field[@var='muc#roomconfig_enablearchiving']")
        self.assertEqual(field.findtext(f"{{{XDATA}}}value"), "1")
        got = self.iq(self.bob, "get", f"<query xmlns='{MAM}'/>")
        vars_ = [f.get("var") for f in got.iter(f"{{{DATA}}}field")]
        for var in ("with", "start", "end", "before-id", "after-id"):
            self.assertIn(var, vars_)


class StoredConfigTests(MucFixture):
    def test_older_stored_config_takes_the_service_default(self) -> None:
        """A room stored before archiving existed has no 'archive' key: it
        gets xmpp.muc_archive; a stored value wins."""
        off = RoomConfig(archive=False)
        self.assertFalse(RoomConfig.from_json('{"persistent": true}', off).archive)
        self.assertTrue(RoomConfig.from_json('{"archive": true}', off).archive)
        self.assertTrue(RoomConfig.from_json(RoomConfig().to_json(), off).archive)


class DefaultOffTests(RoomMamFixture):
    config: ClassVar[dict[str, Any]] = {"muc_archive": False}

    def test_config_default(self) -> None:
        """xmpp.muc_archive = false: new rooms do not archive until an
        owner turns it on."""
        self.room_with((self.alice, "Alice"))
        self.say(self.alice, "x")
        self.assertEqual(self.stored(), [])
        self.configure(self.alice, {"muc#roomconfig_enablearchiving": "1"})
        self.say(self.alice, "y")
        self.assertEqual(len(self.stored()), 1)


class QueryTests(RoomMamFixture):
    def setUp(self) -> None:
        super().setUp()
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))
        self.talk(7)

    def test_everything(self) -> None:
        page = self.query(self.bob)
        self.assertEqual(page.iq.get("type"), "result")
        self.assertEqual(page.bodies, [f"m{n}" for n in range(7)])
        self.assertEqual(page.complete, "true")
        self.assertEqual(page.rsm("count"), "7")
        self.assertEqual(page.ids, [m.id for m in self.stored()])
        first = page.results[0]
        self.assertEqual((first.get("from"), first.get("to")), (ROOM, "bob@localhost/laptop"))
        self.assertEqual(first.find(f"{{{MAM}}}result").get("queryid"), "q1")
        message = forwarded(first)
        self.assertEqual(message.get("from"), f"{ROOM}/Alice")
        self.assertEqual(stanza_ids(message), [(ROOM, page.ids[0])])
        self.assertEqual(message.get("type"), "groupchat")
        self.assertIsNotNone(first.find(f".//{{{FWD}}}forwarded/{{urn:xmpp:delay}}delay"))

    def test_paging_forward_and_backward(self) -> None:
        everything = self.query(self.bob).ids
        seen, after = [], None
        while True:
            page = self.query(self.bob, rsm(3, after=after))
            seen += page.ids
            self.assertEqual(page.rsm("count"), "7")
            if page.complete == "true":
                break
            after = page.rsm("last")
        self.assertEqual(seen, everything)
        last = self.query(self.bob, rsm(3, before=""))
        self.assertEqual(last.ids, everything[-3:])
        self.assertEqual(last.first_index, "4")
        before = self.query(self.bob, rsm(3, before=last.rsm("first")))
        self.assertEqual(before.ids, everything[1:4])
        self.assertEqual(before.complete, "false")

    def test_form_fields(self) -> None:
        everything = self.query(self.bob).ids
        page = self.query(self.bob, form(**{"with": f"{ROOM}/Bob"}))
        self.assertEqual(page.bodies, ["m1", "m3", "m5"])
        page = self.query(self.bob, form(after_id=everything[1], before_id=everything[5]))
        self.assertEqual(page.bodies, ["m2", "m3", "m4"])
        page = self.query(self.bob, form(start="2023-11-14T22:13:20Z"))
        self.assertEqual(len(page.ids), 7)  # 1_700_000_000 is 22:13:20Z
        page = self.query(self.bob, form(end="2023-11-14T22:13:19Z"))
        self.assertEqual(page.ids, [])
        self.assertEqual(self.query(self.bob, form(after_id="nope")).error, "item-not-found")
        self.assertEqual(self.query(self.bob, form(colour="red")).error,
                         "feature-not-implemented")
        self.assertEqual(self.query(self.bob, rsm(after="")).error, "bad-request")

    def test_metadata(self) -> None:
        ids = self.query(self.bob).ids
        got = self.iq(self.bob, "get", f"<metadata xmlns='{MAM}'/>")
        self.assertEqual(got.find(f"{{{MAM}}}metadata/{{{MAM}}}start").get("id"), ids[0])
        self.assertEqual(got.find(f"{{{MAM}}}metadata/{{{MAM}}}end").get("id"), ids[-1])


class AccessTests(RoomMamFixture):
    def test_open_room_occupants_only(self) -> None:
        """carol, not in the open room and not a member: forbidden; in it:
        she reads; another session of an occupant's account reads too."""
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))
        self.talk(2)
        page = self.query(self.carol)
        self.assertEqual(page.error, "forbidden")
        self.assertEqual(page.results, [])
        self.join(self.carol, "Carol")
        self.assertEqual(len(self.query(self.carol).ids), 2)
        other = self.client("bob", "hunter2", "desk")
        self.assertEqual(len(self.query(other).ids), 2)

    def test_members_only_room(self) -> None:
        """A members-only room: a member reads without joining, a
        non-member learns nothing, an outcast neither."""
        self.room_with((self.alice, "Alice"), membersonly="1")
        self.say(self.alice, "inside")
        self.alice.read()
        page = self.query(self.bob)
        self.assertEqual((page.error, page.results, page.fin), ("forbidden", [], None))
        self.assertNotIn(b"inside", etree.tostring(page.iq))
        self.iq(self.alice, "set", f"<query xmlns='{ADMIN}'><item jid='bob@localhost'"
                " affiliation='member'/></query>")
        self.alice.read()
        self.assertEqual(self.query(self.bob).bodies, ["inside"])
        self.iq(self.alice, "set", f"<query xmlns='{ADMIN}'><item jid='bob@localhost'"
                " affiliation='outcast'/></query>")
        self.assertEqual(self.query(self.bob).error, "forbidden")
        self.assertEqual(self.iq(self.bob, "get", f"<metadata xmlns='{MAM}'/>")
                         .find(f"{CLIENT}error") is not None, True)

    def test_unknown_room(self) -> None:
        self.assertEqual(self.query(self.bob, to="nowhere@conference.localhost").error,
                         "item-not-found")


class RealJidTests(RoomMamFixture):
    def test_semi_anonymous_never_leaks(self) -> None:
        """A semi-anonymous room stores no real JID: nobody finds one in
        the archive, not even the owner."""
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))
        self.talk(2)
        for stored in self.stored():
            self.assertNotIn(b"alice@localhost", stored.stanza)
            self.assertNotIn(b"bob@localhost", stored.stanza)
        for client in (self.bob, self.alice):
            page = self.query(client)
            for result in page.results:
                self.assertIsNone(forwarded(result).find(f"{{{USER}}}x"))
                text = etree.tostring(forwarded(result))
                self.assertNotIn(b"alice@localhost", text)
                self.assertNotIn(b"bob@localhost", text)

    def test_non_anonymous_shows_the_bare_jid(self) -> None:
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"), whois="anyone")
        self.say(self.alice, "hello")
        self.alice.read()
        page = self.query(self.bob)
        item = forwarded(page.results[0]).find(f"{{{USER}}}x/{{{USER}}}item")
        self.assertEqual(item.get("jid"), "alice@localhost")

    def test_made_semi_anonymous_later(self) -> None:
        """A message of a non-anonymous time, once the room is
        semi-anonymous: a participant no longer sees the JID, the owner
        (a moderator) does."""
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"), whois="anyone")
        self.say(self.alice, "hello")
        self.configure(self.alice, {"muc#roomconfig_whois": "moderators"})
        for client in (self.alice, self.bob):
            client.read()
        page = self.query(self.bob)
        self.assertIsNone(forwarded(page.results[0]).find(f"{{{USER}}}x"))
        self.assertNotIn(b"alice@localhost", etree.tostring(page.results[0]))
        page = self.query(self.alice)
        item = forwarded(page.results[0]).find(f"{{{USER}}}x/{{{USER}}}item")
        self.assertEqual(item.get("jid"), "alice@localhost")

    def test_spoofed_item_removed(self) -> None:
        """An occupant cannot claim a real JID: its own muc#user x goes."""
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))
        self.say(self.bob, "hi", extra=f"<x xmlns='{USER}'><item jid='alice@localhost'/></x>")
        self.assertNotIn(b"alice@localhost", self.stored()[0].stanza)


class LifecycleTests(RoomMamFixture):
    def test_destroy_deletes_the_archive(self) -> None:
        self.room_with((self.alice, "Alice"), persistentroom="1")
        self.say(self.alice, "x")
        self.assertEqual(len(self.stored()), 1)
        got = self.iq(self.alice, "set", f"<query xmlns='{OWNER}'><destroy/></query>")
        self.assertEqual(got.get("type"), "result")
        self.assertEqual(self.stored(), [])

    def test_temporary_room_takes_its_archive(self) -> None:
        """The last occupant leaves a temporary room: its archive goes,
        and a new room of that name (bob's) starts empty."""
        self.room_with((self.alice, "Alice"))
        self.say(self.alice, "x")
        self.alice.send(f"<presence to='{ROOM}/Alice' type='unavailable'/>")
        self.assertIsNone(self.server.muc.room(ROOM))
        self.assertEqual(self.stored(), [])
        self.room_with((self.bob, "Bob"))
        self.assertEqual(self.query(self.bob).ids, [])

    def test_new_room_starts_empty(self) -> None:
        """Messages left in the store under a room's JID (a crash, say)
        are not given to whoever creates the room next."""
        self.server.archive_store.append("room", "conference.localhost", ArchivedMessage(
            "old", 1.0, ROOM, "Ghost", b"<message xmlns='jabber:client'><body>old</body>"
            b"</message>"))
        self.room_with((self.bob, "Bob"))
        self.assertEqual(self.query(self.bob).ids, [])

    def persistent_room_on_file(self) -> tuple[Path, list[tuple[str, str]]]:
        """A server on a new SQLite file where alice made a persistent room
        and said three things: the file, and the stanza-ids they carried."""
        path = Path(self.mktemp())
        path.parent.mkdir(parents=True, exist_ok=True)
        stores = [SqliteMucStore(path), SqliteArchiveStore(path)]
        for store in stores:
            self.addCleanup(store.close)
        server, clock = make_server(self.mktemp(), muc_store=stores[0],
                                    archive_store=stores[1])
        clock.advance(1_700_000_000)
        alice = Client(server)
        alice.login("alice", "secret", "phone")
        alice.available()
        alice.send(f"<presence to='{ROOM}/Alice'><x xmlns='http://jabber.org/protocol/muc'/>"
                   "</presence>")
        alice.send(f"<iq type='set' id='c' to='{ROOM}'><query xmlns='{OWNER}'><x xmlns='{XDATA}'"
                   " type='submit'><field var='muc#roomconfig_persistentroom'><value>1</value>"
                   "</field></x></query></iq>")
        for n in range(3):
            alice.send(f"<message to='{ROOM}' type='groupchat'><body>kept {n}</body></message>")
        live = [i for m in of(alice.read(), "message", type="groupchat")
                for i in stanza_ids(m)]
        return path, live

    def test_archive_survives_a_restart(self) -> None:
        """A persistent room's archive is in the SQLite file: a new server
        on it answers a query with the messages and their ids."""
        path, live = self.persistent_room_on_file()
        again = [SqliteMucStore(path), SqliteArchiveStore(path)]
        for store in again:
            self.addCleanup(store.close)
        server, _ = make_server(self.mktemp(), muc_store=again[0], archive_store=again[1])
        bob = Client(server)
        bob.login("bob", "hunter2", "laptop")
        bob.available()
        bob.send(f"<presence to='{ROOM}/Bob'><x xmlns='http://jabber.org/protocol/muc'/>"
                 "</presence>")
        bob.read()
        bob.send(f"<iq type='set' id='q' to='{ROOM}'><query xmlns='{MAM}'/></iq>")
        page = Page(bob.read(), "q")
        self.assertEqual(page.bodies, ["kept 0", "kept 1", "kept 2"])
        self.assertEqual([(ROOM, i) for i in page.ids], live)


    def test_application_creates_its_room_before_the_rooms_are_read(self) -> None:
        """An application creates its persistent room at start, before the
        stored rooms are read: the room's archive is kept."""
        path, live = self.persistent_room_on_file()
        again = [SqliteMucStore(path), SqliteArchiveStore(path)]
        for store in again:
            self.addCleanup(store.close)
        server, _ = make_server(self.mktemp(), muc_store=again[0], archive_store=again[1])
        pending: list[tuple[Deferred, Any]] = []
        run_now = server.run_in_db

        def later(f: Any, *args: Any) -> Deferred:
            d: Deferred = Deferred()
            pending.append((d, lambda: f(*args)))
            return d

        server.run_in_db = later
        server.muc.api.create(ROOM, "alice@localhost", persistent=True)
        self.assertFalse(server.muc.loaded)
        while pending:
            d, call = pending.pop(0)
            d.callback(call())
        server.run_in_db = run_now
        self.assertTrue(server.muc.loaded)
        alice = Client(server)
        alice.login("alice", "secret", "phone")
        alice.available()
        alice.send(f"<iq type='set' id='q' to='{ROOM}'><query xmlns='{MAM}'/></iq>")
        page = Page(alice.read(), "q")
        self.assertEqual([(ROOM, i) for i in page.ids], live)


class RetentionTests(RoomMamFixture):
    config: ClassVar[dict[str, Any]] = {"muc_archive_retention": 2, "mam_retention": 0}

    def test_old_messages_hidden_then_swept(self) -> None:
        """Messages older than muc_archive_retention days: queries leave
        them out at once, the sweep deletes them; users' archives are
        not the room sweep's business."""
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))
        self.say(self.alice, "old")
        self.server.archive_store.append("alice", "localhost", ArchivedMessage(
            "mine", self.clock.seconds(), "bob@localhost", "", b"<message/>"))
        retention = self.server.muc.archives.retention
        self.assertTrue(retention._loop.running)  # started with the first session
        retention._loop.stop()  # sweep by hand from here on
        self.clock.advance(DAY)
        self.say(self.alice, "new")
        self.alice.read()
        self.clock.advance(DAY + 10)
        self.assertEqual(self.query(self.bob).bodies, ["new"])
        self.assertEqual(len(self.stored()), 2)  # not swept yet
        self.assertEqual(self.successResultOf(retention.sweep()), 1)
        self.assertEqual([etree.fromstring(m.stanza).findtext(f"{CLIENT}body")
                          for m in self.stored()], ["new"])
        mine = self.server.archive_store.find("alice", "localhost", ArchiveQuery())
        self.assertEqual([m.id for m in mine.messages], ["mine"])

    def test_hourly_sweep(self) -> None:
        self.room_with((self.alice, "Alice"))
        self.say(self.alice, "old")
        self.clock.advance(2 * DAY + INTERVAL)
        self.assertEqual(self.stored(), [])

    def test_user_retention_spares_rooms(self) -> None:
        """A user archive sweep (xmpp.mam_retention) leaves rooms' alone."""
        server, clock = make_server(self.mktemp(), mam_retention=1,
                                    muc_archive_retention=0)
        store = server.archive_store
        store.append("room", "conference.localhost", ArchivedMessage(
            "r", 1.0, ROOM, "A", b"<message/>"))
        store.append("alice", "localhost", ArchivedMessage(
            "u", 1.0, "bob@localhost", "", b"<message/>"))
        clock.advance(3 * DAY)
        Client(server).login()
        clock.advance(INTERVAL)
        self.assertEqual([m.id for m in store.find("room", "conference.localhost",
                                                   ArchiveQuery()).messages], ["r"])
        self.assertEqual(store.find("alice", "localhost", ArchiveQuery()).messages, [])
