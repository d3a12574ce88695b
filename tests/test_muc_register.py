"""Registering with a room (XEP-0045 7.10) and discovering the reserved
nickname (7.12) on StringTransport."""

from __future__ import annotations

from lxml import etree

from tests.muchelpers import ADMIN, ROOM, XDATA, MucFixture, codes, error, item, of
from tests.xmpphelpers import Client

REGISTER = "jabber:iq:register"
MUC_REGISTER = "http://jabber.org/protocol/muc#register"
DISCO = "http://jabber.org/protocol/disco#info"


def registration(nick: str | None = None, **fields: str) -> str:
    values = dict(fields)
    if nick is not None:
        values["muc#register_roomnick"] = nick
    xml = "".join(f"<field var='{k}'><value>{v}</value></field>" for k, v in values.items())
    return (f"<query xmlns='{REGISTER}'><x xmlns='{XDATA}' type='submit'>"
            f"<field var='FORM_TYPE'><value>{MUC_REGISTER}</value></field>{xml}</x></query>")


class RegisterTests(MucFixture):
    def setUp(self) -> None:
        super().setUp()
        self.room_with((self.alice, "Alice"))

    def register(self, client: Client, nick: str | None, **fields: str) -> etree._Element:
        return self.iq(client, "set", registration(nick, **fields))

    def reserved(self, client: Client) -> list[str]:
        got = self.iq(client, "get", f"<query xmlns='{DISCO}' node='x-roomuser-item'/>")
        return [i.get("name") for i in got.iter(f"{{{DISCO}}}identity")]

    def test_form(self) -> None:
        got = self.iq(self.bob, "get", f"<query xmlns='{REGISTER}'/>")
        self.assertEqual(got.get("type"), "result")
        x = got.find(f"{{{REGISTER}}}query/{{{XDATA}}}x")
        self.assertEqual(x.get("type"), "form")
        fields = {f.get("var"): f for f in x.iter(f"{{{XDATA}}}field")}
        self.assertEqual(fields["FORM_TYPE"].findtext(f"{{{XDATA}}}value"), MUC_REGISTER)
        self.assertIsNotNone(fields["muc#register_roomnick"].find(f"{{{XDATA}}}required"))
        for var in ("first", "last", "url", "email", "faqentry"):
            self.assertIsNone(fields[f"muc#register_{var}"].find(f"{{{XDATA}}}required"))

    def test_register_makes_a_member_with_a_reserved_nick(self) -> None:
        self.assertEqual(self.reserved(self.bob), [])
        got = self.register(self.bob, "Builder", **{"muc#register_first": "Bob"})
        self.assertEqual(got.get("type"), "result")
        room = self.server.muc.room(ROOM)
        self.assertEqual(room.affiliations["bob@localhost"], "member")
        self.assertEqual(room.nicks["bob@localhost"], "Builder")
        self.assertEqual(self.reserved(self.bob), ["Builder"])
        # the owner's member list shows him with his nickname
        got = self.iq(self.alice, "get", f"<query xmlns='{ADMIN}'><item affiliation='member'/>"
                      "</query>")
        items = [dict(i.attrib) for i in got.iter(f"{{{ADMIN}}}item")]
        self.assertEqual(items, [{"affiliation": "member", "jid": "bob@localhost",
                                  "nick": "Builder"}])
        # registered: the get answers <registered/> and the nickname
        got = self.iq(self.bob, "get", f"<query xmlns='{REGISTER}'/>")
        query = got.find(f"{{{REGISTER}}}query")
        self.assertIsNotNone(query.find(f"{{{REGISTER}}}registered"))
        self.assertEqual(query.findtext(f"{{{REGISTER}}}username"), "Builder")
        self.assertIsNone(query.find(f"{{{XDATA}}}x"))
        # the same again is fine; a new nickname replaces the old one
        self.assertEqual(self.register(self.bob, "Builder").get("type"), "result")
        self.assertEqual(self.register(self.bob, "Bobby").get("type"), "result")
        self.assertEqual(self.reserved(self.bob), ["Bobby"])

    def test_reserved_nick_enforced_at_join(self) -> None:
        self.register(self.bob, "Builder")
        got = self.join(self.carol, "builder")  # case-insensitively
        self.assertEqual(error(of(got, "presence", type="error")[0]), "conflict")
        own = of(self.join(self.bob, "Builder"), "presence", from_=f"{ROOM}/Builder")
        self.assertEqual(item(own[-1])["affiliation"], "member")

    def test_conflicts(self) -> None:
        self.register(self.bob, "Builder")
        got = self.register(self.carol, "BUILDER")
        self.assertEqual(error(got), "conflict")
        self.join(self.carol, "Carol")
        self.assertEqual(error(self.register(self.bob, "Carol")), "conflict")
        # her own occupant's nickname she may reserve
        self.assertEqual(self.register(self.carol, "Carol").get("type"), "result")

    def test_member_in_the_room_sees_the_change(self) -> None:
        self.join(self.bob, "Bob")
        self.alice.read()
        self.register(self.bob, "Bob")
        seen = of(self.alice.read(), "presence", from_=f"{ROOM}/Bob")
        self.assertEqual(item(seen[-1])["affiliation"], "member")
        self.assertNotIn("110", codes(seen[-1]))

    def test_bad_forms(self) -> None:
        self.assertEqual(error(self.register(self.bob, None)), "not-acceptable")
        self.assertEqual(error(self.register(self.bob, "   ")), "not-acceptable")
        self.assertEqual(error(self.register(self.bob, "x" * 65)), "not-acceptable")
        got = self.iq(self.bob, "set", f"<query xmlns='{REGISTER}'/>")
        self.assertEqual(error(got), "bad-request")
        got = self.iq(self.bob, "set", registration("Bob").replace(MUC_REGISTER, "urn:other"))
        self.assertEqual(error(got), "bad-request")
        self.assertNotIn("bob@localhost", self.server.muc.room(ROOM).affiliations)

    def test_cancel_and_remove(self) -> None:
        got = self.iq(self.bob, "set", f"<query xmlns='{REGISTER}'><x xmlns='{XDATA}'"
                      " type='cancel'/></query>")
        self.assertEqual(got.get("type"), "result")
        self.register(self.bob, "Builder")
        got = self.iq(self.bob, "set", f"<query xmlns='{REGISTER}'><remove/></query>")
        self.assertEqual(got.get("type"), "result")
        room = self.server.muc.room(ROOM)
        self.assertNotIn("bob@localhost", room.affiliations)
        self.assertNotIn("bob@localhost", room.nicks)
        self.assertEqual(self.register(self.carol, "Builder").get("type"), "result")
        # an owner keeps being one: only the nickname goes
        self.register(self.alice, "Boss")
        self.iq(self.alice, "set", f"<query xmlns='{REGISTER}'><remove/></query>")
        self.assertEqual(room.affiliations["alice@localhost"], "owner")
        self.assertNotIn("alice@localhost", room.nicks)

    def test_owner_registers_and_stays_owner(self) -> None:
        self.assertEqual(self.register(self.alice, "Boss").get("type"), "result")
        room = self.server.muc.room(ROOM)
        self.assertEqual(room.affiliations["alice@localhost"], "owner")
        self.assertEqual(self.reserved(self.alice), ["Boss"])

    def test_outcast_forbidden(self) -> None:
        self.iq(self.alice, "set", f"<query xmlns='{ADMIN}'><item jid='carol@localhost'"
                " affiliation='outcast'/></query>")
        self.assertEqual(error(self.register(self.carol, "Carol")), "forbidden")
        got = self.iq(self.carol, "get", f"<query xmlns='{REGISTER}'/>")
        self.assertEqual(error(got), "forbidden")

    def test_members_only_room(self) -> None:
        """Only members register in a members-only room (to reserve a
        nickname): it makes nobody a member."""
        self.configure(self.alice, {"muc#roomconfig_membersonly": "1"})
        self.assertEqual(error(self.register(self.bob, "Bob")), "not-allowed")
        self.assertEqual(error(self.iq(self.bob, "get", f"<query xmlns='{REGISTER}'/>")),
                         "not-allowed")
        self.assertNotIn("bob@localhost", self.server.muc.room(ROOM).affiliations)
        self.iq(self.alice, "set", f"<query xmlns='{ADMIN}'><item jid='bob@localhost'"
                " affiliation='member'/></query>")
        self.assertEqual(self.register(self.bob, "Bob").get("type"), "result")
        self.assertEqual(self.reserved(self.bob), ["Bob"])

    def test_disco_feature(self) -> None:
        got = self.iq(self.bob, "get", f"<query xmlns='{DISCO}'/>")
        self.assertIn(REGISTER, [f.get("var") for f in got.iter(f"{{{DISCO}}}feature")])

    def test_survives_a_restart(self) -> None:
        """The reservation is stored with a persistent room."""
        self.configure(self.alice, {"muc#roomconfig_persistentroom": "1"})
        self.register(self.bob, "Builder")
        stored = {r.name: r for r in self.server.muc_store.rooms("conference.localhost")}
        self.assertEqual(stored["room"].nicks, {"bob@localhost": "Builder"})
        self.assertEqual(stored["room"].affiliations["bob@localhost"], "member")
