"""XEP-0045 queries between occupants: relayed through the room, real JIDs hidden."""

from __future__ import annotations

from lxml import etree

from convergence.xmpp.muc import relay
from tests.muchelpers import ROOM, MucFixture, error, of

VERSION = "jabber:iq:version"


class RelayTests(MucFixture):
    def setUp(self) -> None:
        super().setUp()
        self.room_with((self.alice, "Alice"), (self.bob, "Bob"))

    def test_query_and_answer(self) -> None:
        self.bob.send(f"<iq type='get' id='v1' to='{ROOM}/Alice'>"
                      f"<query xmlns='{VERSION}'/></iq>")
        asked = of(self.alice.read(), "iq", type="get")[0]
        self.assertEqual(asked.get("from"), f"{ROOM}/Bob")
        self.assertEqual(asked.get("to"), "alice@localhost/phone")
        self.assertNotEqual(asked.get("id"), "v1")
        self.alice.send(f"<iq type='result' id='{asked.get('id')}' to='{ROOM}/Bob'>"
                        f"<query xmlns='{VERSION}'><name>Cauldron</name></query></iq>")
        answer = of(self.bob.read(), "iq", id="v1")[0]
        self.assertEqual((answer.get("type"), answer.get("from"), answer.get("to")),
                         ("result", f"{ROOM}/Alice", "bob@localhost/laptop"))
        self.assertEqual(answer.findtext(f"{{{VERSION}}}query/{{{VERSION}}}name"), "Cauldron")
        self.assertNotIn(b"alice@localhost", etree.tostring(answer))
        # the same answer again goes nowhere
        self.alice.send(f"<iq type='result' id='{asked.get('id')}' to='{ROOM}/Bob'/>")
        self.assertEqual(self.bob.read(), [])

    def test_answer_from_someone_else_is_dropped(self) -> None:
        self.bob.send(f"<iq type='get' id='v1' to='{ROOM}/Alice'>"
                      f"<query xmlns='{VERSION}'/></iq>")
        asked = of(self.alice.read(), "iq", type="get")[0]
        self.carol.send(f"<iq type='result' id='{asked.get('id')}' to='{ROOM}/Bob'/>")
        self.assertEqual(self.bob.read(), [])

    def test_vcard_goes_to_the_bare_jid(self) -> None:
        """The server answers for the account: bob gets alice's vCard from
        her occupant JID."""
        self.alice.send("<iq type='set' id='s'><vCard xmlns='vcard-temp'><FN>Alice</FN>"
                        "</vCard></iq>")
        self.alice.read()
        self.bob.send(f"<iq type='get' id='c' to='{ROOM}/Alice'><vCard xmlns='vcard-temp'/>"
                      "</iq>")
        answer = of(self.bob.read(), "iq", id="c")[0]
        self.assertEqual((answer.get("type"), answer.get("from")), ("result", f"{ROOM}/Alice"))
        self.assertEqual(answer.findtext("{vcard-temp}vCard/{vcard-temp}FN"), "Alice")
        self.assertEqual(of(self.alice.read(), "iq"), [])

    def test_refusals(self) -> None:
        self.carol.send(f"<iq type='get' id='n' to='{ROOM}/Alice'><query xmlns='{VERSION}'/>"
                        "</iq>")
        self.assertEqual(error(of(self.carol.read(), "iq", id="n")[0]), "not-acceptable")
        self.bob.send(f"<iq type='get' id='m' to='{ROOM}/Nobody'><query xmlns='{VERSION}'/>"
                      "</iq>")
        self.assertEqual(error(of(self.bob.read(), "iq", id="m")[0]), "item-not-found")
        self.bob.send(f"<iq type='get' id='z' to='none@conference.localhost/X'>"
                      f"<query xmlns='{VERSION}'/></iq>")
        self.assertEqual(error(of(self.bob.read(), "iq", id="z")[0]), "item-not-found")

    def test_ping_to_another_occupant_is_relayed(self) -> None:
        self.bob.send(f"<iq type='get' id='p' to='{ROOM}/Alice'><ping xmlns='urn:xmpp:ping'/>"
                      "</iq>")
        self.assertEqual(len(of(self.alice.read(), "iq", type="get")), 1)

    def test_pending_is_bounded(self) -> None:
        self.patch(relay, "MAX_PENDING", 2)
        for n in range(3):
            self.bob.send(f"<iq type='get' id='q{n}' to='{ROOM}/Alice'>"
                          f"<query xmlns='{VERSION}'/></iq>")
        asked = of(self.alice.read(), "iq", type="get")
        self.alice.send(f"<iq type='result' id='{asked[0].get('id')}' to='{ROOM}/Bob'/>")
        self.assertEqual(self.bob.read(), [])  # the oldest was forgotten
        self.alice.send(f"<iq type='result' id='{asked[2].get('id')}' to='{ROOM}/Bob'/>")
        self.assertEqual([i.get("id") for i in of(self.bob.read(), "iq")], ["q2"])
