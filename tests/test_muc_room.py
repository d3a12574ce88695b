"""XEP-0045 rooms on StringTransport: entering, leaving, nicknames,
messages, subject, history, private messages, streams ending."""

from __future__ import annotations

from typing import Any, ClassVar

from tests.muchelpers import ROOM, USER, MucFixture, body, codes, error, item, of


class EnterTests(MucFixture):
    def test_create_locked_then_instant(self) -> None:
        """A new room: 110 and 201, alice owner and moderator; locked to
        others until she accepts the default configuration."""
        got = self.join(self.alice, "Alice")
        own = of(got, "presence", from_=f"{ROOM}/Alice")
        self.assertEqual(len(own), 1)
        self.assertEqual(codes(own[0]), {"110", "170", "201"})
        self.assertEqual(item(own[0])["affiliation"], "owner")
        self.assertEqual(item(own[0])["role"], "moderator")
        subject = of(got, "message", type="groupchat")
        self.assertEqual(len(subject), 1)  # the (empty) subject ends the join
        got = self.join(self.bob, "Bob")
        self.assertEqual(error(of(got, "presence", type="error")[0]), "item-not-found")
        self.instant(self.alice)
        got = self.join(self.bob, "Bob")
        own = of(got, "presence", from_=f"{ROOM}/Bob")[0]
        self.assertEqual(codes(own), {"110", "170"})
        self.assertEqual(item(own)["role"], "participant")
        alice = of(got, "presence", from_=f"{ROOM}/Alice")[0]
        self.assertEqual(item(alice)["affiliation"], "owner")
        self.assertNotIn("jid", item(alice))  # semi-anonymous: bob is no moderator
        # alice, a moderator, sees bob's real JID
        seen = of(self.alice.read(), "presence", from_=f"{ROOM}/Bob")[0]
        self.assertEqual(item(seen)["jid"], "bob@localhost/laptop")
        # order: the others' presence, own presence, then the subject
        kinds = [(e.tag.split("}")[1], e.get("from")) for e in got]
        self.assertEqual(kinds, [("presence", f"{ROOM}/Alice"), ("presence", f"{ROOM}/Bob"),
                                 ("message", ROOM)])

    def test_without_muc_support_instant(self) -> None:
        self.alice.send(f"<presence to='{ROOM}/Alice'/>")
        self.alice.read()
        got = self.join(self.bob, "Bob")
        self.assertTrue(of(got, "presence", from_=f"{ROOM}/Bob"))

    def test_non_anonymous_100(self) -> None:
        self.room_with((self.alice, "Alice"), whois="anyone")
        own = of(self.join(self.bob, "Bob"), "presence", from_=f"{ROOM}/Bob")[0]
        self.assertEqual(codes(own), {"110", "100", "170"})

    def test_nick_modified_210(self) -> None:
        self.room_with((self.alice, "Alice"))
        own = [p for p in of(self.join(self.bob, "Bob%20%20Builder".replace("%20", " ")),
                             "presence") if "110" in codes(p)]
        self.assertEqual(own[0].get("from"), f"{ROOM}/Bob Builder")
        self.assertIn("210", codes(own[0]))

    def test_conflict_and_bad_nicks(self) -> None:
        self.room_with((self.alice, "Alice"))
        got = self.join(self.bob, "alice")  # case-insensitive
        self.assertEqual(error(of(got, "presence", type="error")[0]), "conflict")
        got = self.join(self.bob, "x" * 65)
        self.assertEqual(error(of(got, "presence", type="error")[0]), "not-acceptable")
        self.bob.send(f"<presence to='{ROOM}'/>")
        self.assertEqual(error(of(self.bob.read(), "presence", type="error")[0]),
                         "jid-malformed")
        self.assertEqual(list(self.server.muc.room(ROOM).occupants), ["Alice"])

    def test_creation_restricted(self) -> None:
        self.server.muc.creation = "admins"
        got = self.join(self.alice, "Alice")
        self.assertEqual(error(of(got, "presence", type="error")[0]), "not-allowed")
        self.assertIsNone(self.server.muc.room(ROOM))

    def test_room_limit(self) -> None:
        self.server.muc.max_rooms = 1
        self.room_with((self.alice, "Alice"))
        got = self.join(self.alice, "Alice", "other@conference.localhost")
        self.assertEqual(error(of(got, "presence", type="error")[0]), "resource-constraint")

    def test_occupant_limit(self) -> None:
        self.room_with((self.alice, "Alice"), maxusers="2")
        self.join(self.bob, "Bob")
        got = self.join(self.carol, "Carol")
        self.assertEqual(error(of(got, "presence", type="error")[0]), "service-unavailable")


class LeaveAndNickTests(MucFixture):
    def setUp(self) -> None:
        super().setUp()
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))

    def test_leave(self) -> None:
        self.bob.send(f"<presence to='{ROOM}/Bob' type='unavailable'><status>bye</status>"
                      "</presence>")
        own = of(self.bob.read(), "presence", type="unavailable")[0]
        self.assertEqual(codes(own), {"110"})
        seen = of(self.alice.read(), "presence", type="unavailable")[0]
        self.assertEqual(seen.get("from"), f"{ROOM}/Bob")
        self.assertEqual(item(seen)["role"], "none")
        self.assertEqual(seen.findtext("{jabber:client}status"), "bye")
        self.assertEqual(list(self.server.muc.room(ROOM).occupants), ["Alice"])

    def test_temporary_room_goes_when_empty(self) -> None:
        for client, nick in ((self.bob, "Bob"), (self.alice, "Alice")):
            client.send(f"<presence to='{ROOM}/{nick}' type='unavailable'/>")
        self.assertIsNone(self.server.muc.room(ROOM))

    def test_nick_change(self) -> None:
        self.bob.send(f"<presence to='{ROOM}/Robert'/>")
        got = self.bob.read()
        gone = of(got, "presence", type="unavailable")[0]
        self.assertEqual(gone.get("from"), f"{ROOM}/Bob")
        self.assertEqual(codes(gone), {"110", "303"})
        self.assertEqual(item(gone)["nick"], "Robert")
        new = [p for p in of(got, "presence", from_=f"{ROOM}/Robert") if p.get("type") is None]
        self.assertEqual(codes(new[0]), {"110"})
        seen = self.alice.read()
        self.assertEqual(codes(of(seen, "presence", type="unavailable")[0]), {"303"})
        self.assertTrue(of(seen, "presence", from_=f"{ROOM}/Robert"))
        self.assertEqual(list(self.server.muc.room(ROOM).occupants), ["Alice", "Robert"])

    def test_nick_change_conflict(self) -> None:
        self.bob.send(f"<presence to='{ROOM}/Alice'/>")
        self.assertEqual(error(of(self.bob.read(), "presence", type="error")[0]), "conflict")
        self.assertEqual(self.alice.read(), [])

    def test_presence_update(self) -> None:
        self.bob.send(f"<presence to='{ROOM}/Bob'><show>away</show></presence>")
        seen = of(self.alice.read(), "presence", from_=f"{ROOM}/Bob")[0]
        self.assertEqual(seen.findtext("{jabber:client}show"), "away")

    def test_stream_end_leaves(self) -> None:
        """The connection drops: the others see bob leave."""
        self.bob.transport.loseConnection()
        self.bob.stream.connectionLost(None)
        seen = of(self.alice.read(), "presence", type="unavailable", from_=f"{ROOM}/Bob")
        self.assertEqual(len(seen), 1)
        self.assertEqual(list(self.server.muc.room(ROOM).occupants), ["Alice"])
        self.assertEqual(self.server.muc.joined.get(self.bob.stream.jid or ""), None)

    def test_bounced_groupchat_removes_ghost(self) -> None:
        """An error from an occupant's JID (its client gone): out with 333."""
        self.bob.send(f"<message type='error' to='{ROOM}'><error type='cancel'>"
                      "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                      "</error></message>")
        seen = of(self.alice.read(), "presence", type="unavailable")[0]
        self.assertIn("333", codes(seen))


class MessageTests(MucFixture):
    def setUp(self) -> None:
        super().setUp()
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"), (self.carol, "Carol"))

    def test_fan_out_in_order(self) -> None:
        for n in range(5):
            self.bob.send(f"<message to='{ROOM}' type='groupchat' id='m{n}'><body>{n}</body>"
                          "</message>")
        for client in (self.alice, self.bob, self.carol):
            got = of(client.read(), "message", type="groupchat")
            self.assertEqual([body(m) for m in got], ["0", "1", "2", "3", "4"])
            self.assertEqual({m.get("from") for m in got}, {f"{ROOM}/Bob"})
            self.assertEqual([m.get("id") for m in got], [f"m{n}" for n in range(5)])

    def test_not_an_occupant(self) -> None:
        dave = self.server.accounts.add("dave@localhost", "pw")
        del dave
        dave = self.client("dave", "pw", "x")
        dave.send(f"<message to='{ROOM}' type='groupchat'><body>hi</body></message>")
        self.assertEqual(error(of(dave.read(), "message", type="error")[0]), "not-acceptable")
        self.assertEqual(self.alice.read(), [])

    def test_subject(self) -> None:
        self.bob.send(f"<message to='{ROOM}' type='groupchat'><subject>x</subject></message>")
        self.assertEqual(error(of(self.bob.read(), "message", type="error")[0]), "forbidden")
        self.alice.send(f"<message to='{ROOM}' type='groupchat'><subject>Witches</subject>"
                        "</message>")
        seen = of(self.bob.read(), "message", type="groupchat")[0]
        self.assertEqual(seen.findtext("{jabber:client}subject"), "Witches")
        self.assertEqual(seen.get("from"), f"{ROOM}/Alice")
        self.carol.send(f"<presence to='{ROOM}/Carol' type='unavailable'/>")
        got = self.join(self.carol, "Carol")
        last = got[-1]
        self.assertEqual(last.findtext("{jabber:client}subject"), "Witches")
        self.assertEqual(last.get("from"), f"{ROOM}/Alice")

    def test_private_message(self) -> None:
        self.bob.send(f"<message to='{ROOM}/Carol' type='chat'><body>psst</body></message>")
        got = of(self.carol.read(), "message")[0]
        self.assertEqual(got.get("from"), f"{ROOM}/Bob")
        self.assertEqual(got.get("to"), "carol@localhost/pad")
        self.assertEqual(body(got), "psst")
        self.assertIsNotNone(got.find(f"{{{USER}}}x"))
        self.assertEqual(self.alice.read(), [])
        self.bob.send(f"<message to='{ROOM}/Nobody' type='chat'><body>?</body></message>")
        self.assertEqual(error(of(self.bob.read(), "message")[0]), "item-not-found")
        self.bob.send(f"<message to='{ROOM}/Carol' type='groupchat'><body>?</body></message>")
        self.assertEqual(error(of(self.bob.read(), "message")[0]), "bad-request")

    def test_invitation(self) -> None:
        self.server.accounts.add("dave@localhost", "pw")
        dave = self.client("dave", "pw", "x")
        self.bob.send(f"<message to='{ROOM}'><x xmlns='{USER}'><invite to='dave@localhost'>"
                      "<reason>come</reason></invite></x></message>")
        got = of(dave.read(), "message")[0]
        invite = got.find(f"{{{USER}}}x/{{{USER}}}invite")
        self.assertEqual(got.get("from"), ROOM)
        self.assertEqual(invite.get("from"), "bob@localhost/laptop")
        self.assertEqual(invite.findtext(f"{{{USER}}}reason"), "come")


class HistoryTests(MucFixture):
    def setUp(self) -> None:
        super().setUp()
        self.room_with((self.alice, "Alice"))
        for n in range(5):
            self.clock.advance(10)
            self.alice.send(f"<message to='{ROOM}' type='groupchat'><body>m{n}</body></message>")
        self.alice.read()

    def history(self, x: str = "") -> list[str]:
        got = self.join(self.bob, "Bob", x=x)
        delayed = [m for m in of(got, "message", type="groupchat")
                   if m.find("{urn:xmpp:delay}delay") is not None]
        for m in delayed:
            self.assertEqual(m.find("{urn:xmpp:delay}delay").get("from"), ROOM)
        return [body(m) for m in delayed]

    def test_all(self) -> None:
        self.assertEqual(self.history(), ["m0", "m1", "m2", "m3", "m4"])

    def test_maxstanzas(self) -> None:
        self.assertEqual(self.history("<history maxstanzas='2'/>"), ["m3", "m4"])

    def test_maxstanzas_zero(self) -> None:
        self.assertEqual(self.history("<history maxstanzas='0'/>"), [])

    def test_seconds(self) -> None:
        self.assertEqual(self.history("<history seconds='25'/>"), ["m2", "m3", "m4"])

    def test_since(self) -> None:
        self.assertEqual(self.history("<history since='1970-01-01T00:00:35Z'/>"), ["m3", "m4"])

    def test_maxchars_zero(self) -> None:
        self.assertEqual(self.history("<history maxchars='0'/>"), [])

    def test_maxchars(self) -> None:
        """Whole stanzas only, the newest that fit (each is ~190 characters,
        its stanza-id included)."""
        self.assertEqual(self.history("<history maxchars='450'/>"), ["m3", "m4"])

    def test_room_history_length(self) -> None:
        self.configure(self.alice, {"muc#maxhistoryfetch": "2"})
        self.assertEqual(self.history(), ["m3", "m4"])

    def test_history_then_subject(self) -> None:
        got = self.join(self.bob, "Bob")
        self.assertIsNotNone(got[-1].find("{jabber:client}subject"))


class FloodTests(MucFixture):
    config: ClassVar[dict[str, Any]] = {"muc_occupant_rate": 1.0, "muc_occupant_burst": 3}

    def test_flood_refused_with_policy_violation(self) -> None:
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))
        for n in range(5):
            self.bob.send(f"<message to='{ROOM}' type='groupchat'><body>{n}</body></message>")
        got = self.bob.read()
        refused = of(got, "message", type="error")
        self.assertEqual(len(refused), 2)
        self.assertEqual(error(refused[0]), "policy-violation")
        self.assertEqual(refused[0].find("{jabber:client}error").get("type"), "wait")
        self.assertEqual([body(m) for m in of(self.alice.read(), "message")], ["0", "1", "2"])
        # presence updates count too; leaving is always allowed
        self.bob.send(f"<presence to='{ROOM}/Bob'><show>away</show></presence>")
        self.assertEqual(error(of(self.bob.read(), "presence", type="error")[0]),
                         "policy-violation")
        self.clock.advance(1)
        self.bob.send(f"<message to='{ROOM}' type='groupchat'><body>later</body></message>")
        self.assertEqual([body(m) for m in of(self.alice.read(), "message")], ["later"])
        self.bob.send(f"<presence to='{ROOM}/Bob' type='unavailable'/>")
        self.assertEqual(list(self.server.muc.room(ROOM).occupants), ["Alice"])


class MultiSessionTests(MucFixture):
    """One account in a room from two resources under one nickname."""

    def setUp(self) -> None:
        super().setUp()
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))
        self.laptop = self.client("alice", "secret", "laptop")
        self.got = self.join(self.laptop, "Alice")
        self.alice.read()

    def test_second_session_joins(self) -> None:
        own = [p for p in of(self.got, "presence", from_=f"{ROOM}/Alice") if "110" in codes(p)]
        self.assertEqual(len(own), 1)
        self.assertTrue(of(self.got, "presence", from_=f"{ROOM}/Bob"))
        self.assertIsNotNone(self.got[-1].find("{jabber:client}subject"))
        seen = self.bob.read()
        # bob sees one occupant Alice, updated; never two
        self.assertEqual([p.get("type") for p in of(seen, "presence")], [None])
        self.assertEqual(list(self.server.muc.room(ROOM).occupants), ["Alice", "Bob"])

    def test_messages_reach_every_session(self) -> None:
        self.bob.read()
        self.bob.send(f"<message to='{ROOM}' type='groupchat'><body>both</body></message>")
        self.bob.send(f"<message to='{ROOM}/Alice' type='chat'><body>pm</body></message>")
        for client in (self.alice, self.laptop):
            got = of(client.read(), "message")
            self.assertEqual([body(m) for m in got], ["both", "pm"])

    def test_one_session_leaves_then_the_other(self) -> None:
        self.bob.read()
        self.alice.send(f"<presence to='{ROOM}/Alice' type='unavailable'/>")
        gone = of(self.alice.read(), "presence", type="unavailable")
        self.assertEqual(codes(gone[0]), {"110"})
        self.assertEqual([p.get("type") for p in of(self.bob.read(), "presence")], [None])
        self.assertIn("Alice", self.server.muc.room(ROOM).occupants)
        self.bob.send(f"<message to='{ROOM}' type='groupchat'><body>x</body></message>")
        self.assertEqual(of(self.alice.read(), "message"), [])
        self.assertEqual(len(of(self.laptop.read(), "message")), 1)
        self.laptop.transport.loseConnection()
        self.laptop.stream.connectionLost(None)
        self.assertEqual([p.get("type") for p in of(self.bob.read(), "presence")],
                         ["unavailable"])
        self.assertNotIn("Alice", self.server.muc.room(ROOM).occupants)
        self.assertEqual(self.server.muc.joined.keys() & {self.alice.stream.jid}, set())

    def test_kick_takes_every_session(self) -> None:
        desk = self.client("bob", "hunter2", "desk")
        self.join(desk, "Bob")
        self.bob.read()
        self.iq(self.laptop, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'>"
                "<item nick='Bob' role='none'/></query>")
        for client in (self.bob, desk):
            gone = of(client.read(), "presence", type="unavailable")
            self.assertEqual(codes(gone[0]), {"110", "307"})
        self.assertEqual(list(self.server.muc.room(ROOM).occupants), ["Alice"])
        self.assertEqual(set(self.server.muc.room(ROOM).by_jid),
                         {self.alice.stream.jid, self.laptop.stream.jid})

    def test_other_account_still_conflicts(self) -> None:
        got = self.join(self.carol, "alice")
        self.assertEqual(error(of(got, "presence", type="error")[0]), "conflict")
