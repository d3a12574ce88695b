"""XEP-0045 roles and affiliations, room types and destruction on StringTransport."""

from __future__ import annotations

from lxml import etree

from tests.muchelpers import (
    ADMIN,
    OWNER,
    ROOM,
    USER,
    XDATA,
    MucFixture,
    body,
    codes,
    error,
    item,
    of,
)


def admin_item(**attrs: str) -> str:
    reason = attrs.pop("reason", None)
    attributes = " ".join(f"{k}='{v}'" for k, v in attrs.items())
    inner = f"<reason>{reason}</reason>" if reason else ""
    return f"<query xmlns='{ADMIN}'><item {attributes}>{inner}</item></query>"


class RoleTests(MucFixture):
    def setUp(self) -> None:
        super().setUp()
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"), (self.carol, "Carol"))

    def test_kick(self) -> None:
        result = self.iq(self.alice, "set", admin_item(nick="Bob", role="none", reason="out"))
        self.assertEqual(result.get("type"), "result")
        own = of(self.bob.read(), "presence", type="unavailable")[0]
        self.assertEqual(codes(own), {"110", "307"})
        x = own.find(f"{{{USER}}}x/{{{USER}}}item")
        self.assertEqual(x.find(f"{{{USER}}}actor").get("nick"), "Alice")
        self.assertEqual(x.findtext(f"{{{USER}}}reason"), "out")
        seen = of(self.carol.read(), "presence", type="unavailable")[0]
        self.assertEqual(codes(seen), {"307"})
        self.assertNotIn("Bob", self.server.muc.room(ROOM).occupants)

    def test_participant_cannot_kick(self) -> None:
        result = self.iq(self.bob, "set", admin_item(nick="Carol", role="none"))
        self.assertEqual(error(result), "forbidden")
        self.assertIn("Carol", self.server.muc.room(ROOM).occupants)

    def test_moderator_cannot_kick_owner(self) -> None:
        self.iq(self.alice, "set", admin_item(nick="Bob", role="moderator"))
        result = self.iq(self.bob, "set", admin_item(nick="Alice", role="none"))
        self.assertEqual(error(result), "not-allowed")

    def test_voice_in_moderated_room(self) -> None:
        self.configure(self.alice, {"muc#roomconfig_moderatedroom": "1"})
        self.carol.send(f"<presence to='{ROOM}/Carol' type='unavailable'/>")
        own = of(self.join(self.carol, "Carol"), "presence", from_=f"{ROOM}/Carol")
        self.assertEqual(item(own[-1])["role"], "visitor")
        self.carol.send(f"<message to='{ROOM}' type='groupchat'><body>hi</body></message>")
        self.assertEqual(error(of(self.carol.read(), "message", type="error")[0]), "forbidden")
        self.iq(self.alice, "set", admin_item(nick="Carol", role="participant"))
        self.carol.read()
        self.carol.send(f"<message to='{ROOM}' type='groupchat'><body>hi</body></message>")
        self.assertEqual([body(m) for m in of(self.carol.read(), "message")], ["hi"])
        lst = self.iq(self.alice, "get", admin_item(role="participant"))
        nicks = [i.get("nick") for i in lst.iter(f"{{{ADMIN}}}item")]
        self.assertEqual(sorted(nicks), ["Bob", "Carol"])
        self.assertEqual(error(self.iq(self.bob, "get", admin_item(role="participant"))),
                         "forbidden")

    def test_both_role_and_affiliation(self) -> None:
        result = self.iq(self.alice, "set", admin_item(nick="Bob", role="none",
                                                       affiliation="none"))
        self.assertEqual(error(result), "bad-request")


class AffiliationTests(MucFixture):
    def setUp(self) -> None:
        super().setUp()
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))

    def test_ban(self) -> None:
        result = self.iq(self.alice, "set", admin_item(jid="bob@localhost",
                                                       affiliation="outcast"))
        self.assertEqual(result.get("type"), "result")
        self.assertEqual(codes(of(self.bob.read(), "presence", type="unavailable")[0]),
                         {"110", "301"})
        got = self.join(self.bob, "Bob")
        self.assertEqual(error(of(got, "presence", type="error")[0]), "forbidden")
        lst = self.iq(self.alice, "get", admin_item(affiliation="outcast"))
        self.assertEqual([i.get("jid") for i in lst.iter(f"{{{ADMIN}}}item")],
                         ["bob@localhost"])
        self.assertEqual(error(self.iq(self.bob, "get", admin_item(affiliation="outcast"))),
                         "forbidden")

    def test_members_only(self) -> None:
        """Going members-only puts out non-members (322); a stranger is
        refused; a member enters."""
        self.iq(self.alice, "set", admin_item(jid="carol@localhost", affiliation="member"))
        self.configure(self.alice, {"muc#roomconfig_membersonly": "1"})
        self.assertIn("322", codes(of(self.bob.read(), "presence", type="unavailable")[0]))
        got = self.join(self.bob, "Bob")
        self.assertEqual(error(of(got, "presence", type="error")[0]), "registration-required")
        got = self.join(self.carol, "Carol")
        self.assertEqual(item(of(got, "presence", from_=f"{ROOM}/Carol")[0])["affiliation"],
                         "member")
        # taking carol's membership away puts her out (321)
        self.iq(self.alice, "set", admin_item(jid="carol@localhost", affiliation="none"))
        self.assertIn("321", codes(of(self.carol.read(), "presence", type="unavailable")[0]))

    def test_admin_rules(self) -> None:
        self.iq(self.alice, "set", admin_item(jid="bob@localhost", affiliation="admin"))
        self.assertEqual(item(of(self.bob.read(), "presence")[0])["role"], "moderator")
        # an admin may not make owners or touch owners
        self.assertEqual(error(self.iq(self.bob, "set", admin_item(
            jid="carol@localhost", affiliation="owner"))), "not-allowed")
        self.assertEqual(error(self.iq(self.bob, "set", admin_item(
            jid="alice@localhost", affiliation="outcast"))), "not-allowed")
        self.assertEqual(self.iq(self.bob, "set", admin_item(
            jid="carol@localhost", affiliation="member")).get("type"), "result")
        admins = self.iq(self.alice, "get", admin_item(affiliation="admin"))
        self.assertEqual([i.get("jid") for i in admins.iter(f"{{{ADMIN}}}item")],
                         ["bob@localhost"])

    def test_members_see_lists_in_non_anonymous_rooms(self) -> None:
        self.iq(self.alice, "set", admin_item(jid="bob@localhost", affiliation="member"))
        self.assertEqual(error(self.iq(self.bob, "get", admin_item(affiliation="member"))),
                         "forbidden")
        self.configure(self.alice, {"muc#roomconfig_whois": "anyone"})
        owners = self.iq(self.bob, "get", admin_item(affiliation="owner"))
        self.assertEqual([i.get("jid") for i in owners.iter(f"{{{ADMIN}}}item")],
                         ["alice@localhost"])
        self.assertEqual(error(self.iq(self.bob, "get", admin_item(affiliation="outcast"))),
                         "forbidden")
        self.assertEqual(error(self.iq(self.carol, "get", admin_item(affiliation="owner"))),
                         "forbidden")

    def test_last_owner_stays(self) -> None:
        result = self.iq(self.alice, "set", admin_item(jid="alice@localhost",
                                                       affiliation="admin"))
        self.assertEqual(error(result), "conflict")
        self.iq(self.alice, "set", admin_item(jid="bob@localhost", affiliation="owner"))
        result = self.iq(self.alice, "set", admin_item(jid="alice@localhost",
                                                       affiliation="member"))
        self.assertEqual(result.get("type"), "result")
        self.assertEqual(self.server.muc.room(ROOM).affiliations,
                         {"alice@localhost": "member", "bob@localhost": "owner"})

    def test_participant_cannot_change_affiliations(self) -> None:
        self.assertEqual(error(self.iq(self.bob, "set", admin_item(
            jid="carol@localhost", affiliation="member"))), "forbidden")


class RoomTypeTests(MucFixture):
    def test_password(self) -> None:
        self.room_with((self.alice, "Alice"), passwordprotectedroom="1", roomsecret="cauldron")
        got = self.join(self.bob, "Bob")
        self.assertEqual(error(of(got, "presence", type="error")[0]), "not-authorized")
        got = self.join(self.bob, "Bob", x="<password>wrong</password>")
        refused = of(got, "presence", type="error")[0]
        self.assertEqual(error(refused), "not-authorized")
        # the error carries the MUC <x/>, never the password
        x = refused.find("{http://jabber.org/protocol/muc}x")
        self.assertIsNotNone(x)
        self.assertEqual(len(x), 0)
        self.assertNotIn(b"wrong", etree.tostring(refused))
        got = self.join(self.bob, "Bob", x="<password>cauldron</password>")
        self.assertTrue(of(got, "presence", from_=f"{ROOM}/Bob"))

    def test_password_protected_needs_a_password(self) -> None:
        self.join(self.alice, "Alice")
        result = self.configure(self.alice, {"muc#roomconfig_passwordprotectedroom": "1"})
        self.assertEqual(error(result), "not-acceptable")

    def test_bad_form_values(self) -> None:
        self.join(self.alice, "Alice")
        for fields in ({"muc#roomconfig_membersonly": "maybe"},
                       {"muc#roomconfig_maxusers": "many"},
                       {"muc#roomconfig_maxusers": "100000"},
                       {"muc#roomconfig_whois": "everyone"},
                       {"muc#maxhistoryfetch": "-1"}):
            self.assertEqual(error(self.configure(self.alice, fields)), "not-acceptable", fields)
        self.assertTrue(self.server.muc.room(ROOM).locked)

    def test_non_owner_cannot_configure(self) -> None:
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))
        self.assertEqual(error(self.iq(self.bob, "get", f"<query xmlns='{OWNER}'/>")),
                         "forbidden")
        self.assertEqual(error(self.configure(self.bob, {"muc#roomconfig_roomname": "x"})),
                         "forbidden")

    def test_config_form(self) -> None:
        self.room_with((self.alice, "Alice"), roomname="Cave")
        result = self.iq(self.alice, "get", f"<query xmlns='{OWNER}'/>")
        fields = {f.get("var"): [v.text for v in f.findall(f"{{{XDATA}}}value")]
                  for f in result.iter(f"{{{XDATA}}}field")}
        self.assertEqual(fields["FORM_TYPE"], ["http://jabber.org/protocol/muc#roomconfig"])
        self.assertEqual(fields["muc#roomconfig_roomname"], ["Cave"])
        self.assertEqual(fields["muc#roomconfig_persistentroom"], ["0"])

    def test_config_change_status_codes(self) -> None:
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))
        self.configure(self.alice, {"muc#roomconfig_whois": "anyone"})
        note = of(self.bob.read(), "message", type="groupchat")[0]
        self.assertEqual(codes(note), {"104", "172"})
        self.configure(self.alice, {"muc#roomconfig_roomname": "Cave"})
        self.assertEqual(codes(of(self.bob.read(), "message")[0]), {"104"})

    def test_owner_and_admin_lists_in_the_form(self) -> None:
        """10.1.3's roomowners/roomadmins: shown, and a submitted list adds
        the JIDs new on it and makes those taken off it members; the last
        owner stays; a bad JID is jid-malformed with nothing changed."""
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))
        result = self.configure(self.alice, {"muc#roomconfig_roomadmins": "bob@localhost",
                                             "muc#roomconfig_roomowners":
                                             ["alice@localhost", "carol@localhost"]})
        self.assertEqual(result.get("type"), "result", etree.tostring(result))
        room = self.server.muc.room(ROOM)
        self.assertEqual(room.affiliations, {"alice@localhost": "owner",
                                             "bob@localhost": "admin",
                                             "carol@localhost": "owner"})
        # bob, in the room, sees his new affiliation
        changed = [p for p in of(self.bob.read(), "presence") if "110" in codes(p)]
        self.assertEqual(item(changed[-1])["affiliation"], "admin")
        form = self.iq(self.alice, "get", f"<query xmlns='{OWNER}'/>")
        fields = {f.get("var"): [v.text for v in f.findall(f"{{{XDATA}}}value")]
                  for f in form.iter(f"{{{XDATA}}}field")}
        self.assertEqual(fields["muc#roomconfig_roomowners"],
                         ["alice@localhost", "carol@localhost"])
        self.assertEqual(fields["muc#roomconfig_roomadmins"], ["bob@localhost"])
        self.configure(self.alice, {"muc#roomconfig_roomowners": "alice@localhost",
                                    "muc#roomconfig_roomadmins": []})
        self.assertEqual(room.affiliations, {"alice@localhost": "owner",
                                             "bob@localhost": "member",
                                             "carol@localhost": "member"})
        self.assertEqual(error(self.configure(self.alice, {"muc#roomconfig_roomowners": []})),
                         "conflict")
        self.assertEqual(error(self.configure(self.alice, {
            "muc#roomconfig_roomadmins": "not a jid@", "muc#roomconfig_roomname": "X"})),
            "jid-malformed")
        self.assertEqual(room.config.name, "")
        self.assertEqual(room.owners(), ["alice@localhost"])

    def test_logging_status_codes(self) -> None:
        """170 on entering an archived room; 170/171 when archiving is
        turned on or off (10.2.1)."""
        self.room_with((self.alice, "Alice"))
        got = self.join(self.bob, "Bob")
        self_presence = [p for p in of(got, "presence") if "110" in codes(p)][0]
        self.assertIn("170", codes(self_presence))
        self.configure(self.alice, {"muc#roomconfig_enablearchiving": "0"})
        self.assertEqual(codes(of(self.bob.read(), "message")[0]), {"104", "171"})
        got = self.join(self.carol, "Carol")
        self_presence = [p for p in of(got, "presence") if "110" in codes(p)][0]
        self.assertNotIn("170", codes(self_presence))
        self.configure(self.alice, {"muc#roomconfig_enablearchiving": "1"})
        self.assertEqual(codes(of(self.bob.read(), "message")[0]), {"104", "170"})

    def test_cancel_new_room(self) -> None:
        self.join(self.alice, "Alice")
        result = self.iq(self.alice, "set", f"<query xmlns='{OWNER}'><x xmlns='{XDATA}'"
                         " type='cancel'/></query>")
        self.assertEqual(result.get("type"), "result")
        self.assertIsNone(self.server.muc.room(ROOM))

    def test_destroy(self) -> None:
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))
        self.assertEqual(error(self.iq(self.bob, "set", f"<query xmlns='{OWNER}'><destroy/>"
                                       "</query>")), "forbidden")
        result = self.iq(self.alice, "set", f"<query xmlns='{OWNER}'>"
                         "<destroy jid='new@conference.localhost'><reason>moved</reason>"
                         "</destroy></query>")
        self.assertEqual(result.get("type"), "result")
        gone = of(self.bob.read(), "presence", type="unavailable")[0]
        destroy = gone.find(f"{{{USER}}}x/{{{USER}}}destroy")
        self.assertEqual(destroy.get("jid"), "new@conference.localhost")
        self.assertEqual(destroy.findtext(f"{{{USER}}}reason"), "moved")
        self.assertIsNone(self.server.muc.room(ROOM))
        self.assertEqual(self.server.muc.joined, {})
        self.bob.send(f"<message to='{ROOM}' type='groupchat'><body>?</body></message>")
        self.assertEqual(error(of(self.bob.read(), "message")[0]), "item-not-found")

    def test_persistent_room_stays_when_empty(self) -> None:
        self.room_with((self.alice, "Alice"), persistentroom="1")
        self.alice.send(f"<presence to='{ROOM}/Alice' type='unavailable'/>")
        self.assertIsNotNone(self.server.muc.room(ROOM))
        stored = self.server.muc_store.rooms("conference.localhost")
        self.assertEqual([r.name for r in stored], ["room"])
        self.assertEqual(stored[0].affiliations, {"alice@localhost": "owner"})
        # made temporary again: forgotten by the store, gone once empty
        self.join(self.alice, "Alice")
        self.configure(self.alice, {"muc#roomconfig_persistentroom": "0"})
        self.assertEqual(self.server.muc_store.rooms("conference.localhost"), [])
        self.alice.send(f"<presence to='{ROOM}/Alice' type='unavailable'/>")
        self.assertIsNone(self.server.muc.room(ROOM))

    def test_hidden_not_listed(self) -> None:
        self.room_with((self.alice, "Alice"), publicroom="0")
        items = self.iq(self.bob, "get", "<query xmlns='http://jabber.org/protocol/disco#items'/>",
                        "conference.localhost")
        self.assertEqual(list(items.iter("{http://jabber.org/protocol/disco#items}item")), [])


class ReservedNickTests(MucFixture):
    def setUp(self) -> None:
        super().setUp()
        self.room_with((self.alice, "Alice"), persistentroom="1")
        result = self.iq(self.alice, "set", admin_item(jid="bob@localhost",
                                                       affiliation="member", nick="Builder"))
        self.assertEqual(result.get("type"), "result")

    def test_reserved_for_its_owner(self) -> None:
        got = self.join(self.carol, "builder")
        self.assertEqual(error(of(got, "presence", type="error")[0]), "conflict")
        got = self.join(self.bob, "Builder")
        self.assertTrue(of(got, "presence", from_=f"{ROOM}/Builder"))
        members = self.iq(self.alice, "get", admin_item(affiliation="member"))
        self.assertEqual([(i.get("jid"), i.get("nick")) for i in members.iter(f"{{{ADMIN}}}item")],
                         [("bob@localhost", "Builder")])
        # nobody takes it by changing nickname either
        self.join(self.carol, "Carol")
        self.carol.send(f"<presence to='{ROOM}/BUILDER'/>")
        self.assertEqual(error(of(self.carol.read(), "presence", type="error")[0]), "conflict")

    def test_discovered_by_its_owner(self) -> None:
        query = "<query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/>"
        mine = self.iq(self.bob, "get", query)
        identity = mine.find(".//{http://jabber.org/protocol/disco#info}identity")
        self.assertEqual(identity.get("name"), "Builder")
        other = self.iq(self.carol, "get", query)
        self.assertIsNone(other.find(".//{http://jabber.org/protocol/disco#info}identity"))

    def test_stored_freed_and_refused(self) -> None:
        stored = self.server.muc_store.rooms("conference.localhost")[0]
        self.assertEqual(stored.nicks, {"bob@localhost": "Builder"})
        self.assertEqual(error(self.iq(self.alice, "set", admin_item(
            jid="carol@localhost", affiliation="member", nick="builder"))), "conflict")
        self.assertEqual(error(self.iq(self.alice, "set", admin_item(
            jid="carol@localhost", affiliation="member", nick="x" * 100))), "not-acceptable")
        self.iq(self.alice, "set", admin_item(jid="bob@localhost", affiliation="none"))
        self.assertEqual(self.server.muc.room(ROOM).nicks, {})
        got = self.join(self.carol, "Builder")
        self.assertTrue(of(got, "presence", from_=f"{ROOM}/Builder"))
