"""XEP-0045 voice requests in a moderated room."""

from __future__ import annotations

from tests.muchelpers import ROOM, MucFixture, body, error, item, of

XDATA = "jabber:x:data"
REQUEST = "http://jabber.org/protocol/muc#request"


def request_form(**fields: str) -> str:
    inner = "".join(f"<field var='{k.replace('__', '#')}'><value>{v}</value></field>"
                    for k, v in fields.items())
    return (f"<message to='{ROOM}'><x xmlns='{XDATA}' type='submit'>"
            f"<field var='FORM_TYPE'><value>{REQUEST}</value></field>{inner}</x></message>")


class VoiceRequestTests(MucFixture):
    def setUp(self) -> None:
        super().setUp()
        self.room_with((self.alice, "Alice"), moderatedroom="1")
        self.join(self.bob, "Bob")
        self.alice.read()

    def test_request_and_approval(self) -> None:
        self.bob.send(request_form(muc__role="participant"))
        asked = of(self.alice.read(), "message")[0]
        fields = {f.get("var"): f.findtext(f"{{{XDATA}}}value")
                  for f in asked.iter(f"{{{XDATA}}}field")}
        self.assertEqual(fields["FORM_TYPE"], REQUEST)
        self.assertEqual((fields["muc#roomnick"], fields["muc#jid"]),
                         ("Bob", "bob@localhost/laptop"))
        self.assertEqual(asked.get("from"), ROOM)
        self.assertEqual(of(self.bob.read(), "message"), [])
        self.alice.send(request_form(muc__role="participant", muc__roomnick="Bob",
                                     muc__jid="bob@localhost/laptop",
                                     muc__request_allow="true"))
        voiced = of(self.bob.read(), "presence", from_=f"{ROOM}/Bob")[0]
        self.assertEqual(item(voiced)["role"], "participant")
        self.bob.send(f"<message to='{ROOM}' type='groupchat'><body>thanks</body></message>")
        self.assertEqual([body(m) for m in of(self.alice.read(), "message")], ["thanks"])

    def test_denied_or_not_a_moderator(self) -> None:
        self.bob.send(request_form(muc__role="participant"))
        self.alice.read()
        self.alice.send(request_form(muc__roomnick="Bob", muc__request_allow="false"))
        self.assertEqual(of(self.bob.read(), "presence"), [])
        # bob cannot approve himself
        self.bob.send(request_form(muc__roomnick="Bob", muc__request_allow="true"))
        self.assertEqual(error(of(self.bob.read(), "message")[0]), "bad-request")
        self.assertEqual(self.server.muc.room(ROOM).occupants["Bob"].role, "visitor")

    def test_bad_forms(self) -> None:
        self.alice.send(request_form(muc__roomnick="Bob", muc__request_allow="perhaps"))
        self.assertEqual(error(of(self.alice.read(), "message")[0]), "not-acceptable")
        self.carol.send(request_form(muc__role="participant"))
        self.assertEqual(error(of(self.carol.read(), "message")[0]), "not-acceptable")
