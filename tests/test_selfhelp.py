"""
The selfhelp bot's XMPP conversation on a StringTransport: menu answers,
per-user state, agent hand-over and relay, and the goodbye.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from apps.selfhelp import menu
from convergence.container.application import load_application
from tests.xmpphelpers import Client, make_server

BODY = "{jabber:client}body"
THREAD = "{jabber:client}thread"


class SelfhelpXmppTests(SynchronousTestCase):
    def setUp(self) -> None:
        app = load_application("selfhelp", "apps.selfhelp", ["localhost"],
                               settings={"agent": "xmpp:bob@localhost"})
        self.server, self.clock = make_server(self.mktemp(), (app,))
        self.alice = Client(self.server)
        self.alice.login()
        self.alice.available()

    def say(self, text: str, thread: str = "t1") -> str:
        self.alice.send(f"<message to='selfhelp@localhost' type='chat'><body>{text}</body>"
                        f"<thread>{thread}</thread></message>")
        reply = self.alice.expect("message")
        self.assertEqual(reply.findtext(THREAD), thread)
        return reply.findtext(BODY)

    def sessions(self):
        return self.server.container.sessions.sessions("selfhelp")

    def test_menu(self) -> None:
        """Each choice gets its answer; unknown input repeats the menu; state is kept."""
        self.assertIn("order #4711", self.say("1"))
        self.assertEqual(self.say("2"), menu.OPENING_HOURS)
        self.assertIn("did not understand", self.say("hello"))
        self.assertEqual(self.say("0"), menu.MENU)
        [session] = self.sessions()
        self.assertEqual(session["choices"], 4)
        self.assertEqual(session["customer_jid"], "alice@localhost/phone")
        self.assertEqual(session["channel"], "xmpp")

    def test_end_chat(self) -> None:
        """9 says goodbye and ends the ApplicationSession."""
        self.assertEqual(self.say("9"), menu.GOODBYE)
        self.assertEqual(self.sessions(), [])

    def test_agent_hand_over(self) -> None:
        """3 brings the XMPP agent in; messages are relayed both ways in one session."""
        bob = Client(self.server)
        bob.login("bob", "hunter2", "desk")
        bob.available()
        self.assertEqual(self.say("3"), menu.AGENT)
        intro = bob.expect("message")
        self.assertIn("alice@localhost/phone", intro.findtext(BODY))
        agent_thread = intro.findtext(THREAD)
        self.assertTrue(agent_thread)
        bob.send(f"<message to='selfhelp@localhost' type='chat'><body>How can I help?</body>"
                 f"<thread>{agent_thread}</thread></message>")
        relayed = self.alice.expect("message")
        self.assertEqual(relayed.findtext(BODY), "Agent: How can I help?")
        self.alice.send("<message to='selfhelp@localhost' type='chat'><body>my parcel</body>"
                        "<thread>t1</thread></message>")
        self.assertEqual(bob.expect("message").findtext(BODY), "Customer: my parcel")
        [session] = self.sessions()
        peers = sorted(s.peer for s in session.sessions_of("xmpp"))
        self.assertEqual(peers, ["alice@localhost/phone", "bob@localhost/desk"])

    def test_expiry_says_goodbye(self) -> None:
        """An idle conversation expires; the customer is told goodbye."""
        self.say("1")
        self.clock.advance(901)
        self.assertEqual(self.sessions(), [])
        self.assertEqual(self.alice.expect("message").findtext(BODY), menu.GOODBYE)
