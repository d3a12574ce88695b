"""Chat rooms in the servlet API: an application owns a room and answers
in it as an occupant (a bot)."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from convergence.xmpp.servlet import XmppRequest, XmppServlet
from tests.muchelpers import MUC, USER, body, codes, error, item, of
from tests.xmpphelpers import Client, make_app, make_server

HELP = "help@conference.localhost"
BOT = "bot@localhost/helper"


class HelpBot(XmppServlet):
    """Answers "!ping" in the room, and privately what it is told privately."""

    def __init__(self) -> None:
        self.presence: list[tuple[str, str | None]] = []
        self.heard: list[str] = []

    @property
    def rooms(self) -> Any:
        return self.context.container.factories["xmpp"].rooms

    def do_message(self, request: XmppRequest) -> None:
        if request.type == "error" or request.body is None:
            return
        rooms = self.rooms
        if request.type == "groupchat":
            if rooms.is_own(request.stanza) or rooms.is_history(request.stanza):
                return
            self.heard.append(request.body)
            if request.body == "!ping":
                rooms.say(str(request.to), str(request.sender.bare),
                          f"pong, {request.sender.resource}")
            return
        reply = request.create_response()  # a private message: to room/nick
        reply.stanza.append(reply.stanza.makeelement("{jabber:client}body"))
        reply.stanza[-1].text = f"you said {request.body}"
        reply.send()

    def on_presence(self, request: XmppRequest) -> None:
        self.presence.append((str(request.sender), request.type))


class BotTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.bot = HelpBot()
        self.server, self.clock = make_server(
            self.mktemp(), (make_app("helpbot", self.bot, ("bot@localhost",)),))
        self.rooms = self.server.container.factories["xmpp"].rooms
        self.alice = Client(self.server)
        self.alice.login()
        self.alice.available()

    def start_bot(self, **config: Any) -> None:
        self.assertEqual(self.rooms.create(HELP, "bot@localhost", name="Help", **config), HELP)
        self.rooms.join(BOT, HELP, "HelpBot")
        self.assertEqual(self.rooms.occupants(HELP), ["HelpBot"])

    def test_bot_answers_in_the_room(self) -> None:
        self.start_bot()
        self.assertEqual(self.bot.presence, [(f"{HELP}/HelpBot", None)])
        self.alice.send(f"<presence to='{HELP}/Alice'><x xmlns='{MUC}'/></presence>")
        got = self.alice.read()
        botp = of(got, "presence", from_=f"{HELP}/HelpBot")[0]
        self.assertEqual((item(botp)["affiliation"], item(botp)["role"]), ("owner", "moderator"))
        self.assertNotIn("201", codes(of(got, "presence", from_=f"{HELP}/Alice")[0]))
        self.assertIn((f"{HELP}/Alice", None), self.bot.presence)
        self.alice.send(f"<message to='{HELP}' type='groupchat'><body>!ping</body></message>")
        got = of(self.alice.read(), "message", type="groupchat")
        self.assertEqual([(m.get("from"), body(m)) for m in got],
                         [(f"{HELP}/Alice", "!ping"), (f"{HELP}/HelpBot", "pong, Alice")])
        self.assertEqual(self.bot.heard, ["!ping"])  # not its own pong
        self.assertEqual(self.rooms.nick_of(BOT, HELP), "HelpBot")

    def test_private_answer(self) -> None:
        self.start_bot()
        self.alice.send(f"<presence to='{HELP}/Alice'/>")
        self.alice.read()
        self.alice.send(f"<message to='{HELP}/HelpBot' type='chat'><body>hi</body></message>")
        got = of(self.alice.read(), "message", type="chat")[0]
        self.assertEqual((got.get("from"), body(got)), (f"{HELP}/HelpBot", "you said hi"))
        self.assertIsNotNone(got.find(f"{{{USER}}}x"))

    def test_owned_room_settings_and_leave(self) -> None:
        self.start_bot(members_only=True)
        self.alice.send(f"<presence to='{HELP}/Alice'/>")
        self.assertEqual(error(of(self.alice.read(), "presence", type="error")[0]),
                         "registration-required")
        self.assertEqual(self.rooms.create(HELP, "bot@localhost"), HELP)  # kept
        with self.assertRaises(ValueError):
            self.rooms.create(HELP, "alice@localhost")
        with self.assertRaises(ValueError):
            self.rooms.create("help@elsewhere.example", "bot@localhost")
        with self.assertRaises(ValueError):
            self.rooms.create("other@conference.localhost", "bot@localhost", colour="red")
        self.rooms.leave(BOT, HELP)
        self.assertEqual(self.rooms.occupants(HELP), [])
        self.assertEqual(self.rooms.domain(), "conference.localhost")

    def test_no_service(self) -> None:
        server, _ = make_server(self.mktemp(), muc_enabled=False)
        self.assertIsNone(server.container.factories["xmpp"].rooms)
