"""XEP-0198 stream management on StringTransport and task.Clock: enabling,
counting with wrap-around, acknowledgement requests, the queue limit,
hibernation, resumption and what happens to unacknowledged stanzas."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, ClassVar

from lxml import etree
from twisted.internet.error import ConnectionLost
from twisted.python.failure import Failure

from convergence.store.sqlite_im import SqliteImStore
from convergence.xmpp.features.sm import MODULUS
from tests import test_push
from tests.imhelpers import ImFixture, of
from tests.xmpphelpers import HEADER, Client, make_server

SM = "urn:xmpp:sm:3"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams"
C = "{jabber:client}"


def sm(elements: list[etree._Element], local: str) -> list[etree._Element]:
    return [e for e in elements if e.tag == f"{{{SM}}}{local}"]


def bodies(elements: list[etree._Element]) -> list[str]:
    return [m.findtext(f"{C}body") for m in elements
            if etree.QName(m).localname == "message"]


def authenticate(client: Client, user: str, password: str) -> list[etree._Element]:
    """SASL PLAIN and the restart, no binding; the features offered."""
    client.send(HEADER)
    client.read()
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    client.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>")
    client.expect("success")
    client.restart_parser()
    client.send(HEADER)
    return client.read()


def drop(client: Client) -> None:
    """The TCP connection breaks: no closing tag from either side."""
    client.stream.connectionLost(Failure(ConnectionLost()))


class SmFixture(ImFixture):
    """alice and bob subscribed to each other, both available."""

    options: dict = {"sm_ack_every": 5, "sm_ack_interval": 30.0}
    im_store: Any = None

    def setUp(self) -> None:
        self.server, self.clock = make_server(self.mktemp(), im_store=self.im_store,
                                              **self.options)
        self.server.start()  # the service starts: held messages recovered
        self.server.accounts.add("carol@localhost", "carol-pw")
        self.alice = self.client("alice", "secret", "phone")
        self.bob = self.client("bob", "hunter2", "laptop")
        self.subscribe_both()
        self.alice.available()
        self.bob.available()
        self.alice.read()
        self.bob.read()

    def enable(self, client: Client, attrs: str = " resume='true'") -> etree._Element:
        client.send(f"<enable xmlns='{SM}'{attrs}/>")
        return sm(client.read(), "enabled")[0]

    def chat(self, n: int, to: str = "alice@localhost/phone", start: int = 1) -> None:
        for i in range(start, start + n):
            self.bob.send(f"<message to='{to}' type='chat' id='m{i}'><body>{i}</body></message>")

    def stored(self, user: str = "alice") -> list[str]:
        messages = self.server.im_store.messages(user, "localhost", 100)
        return [etree.fromstring(m.stanza).findtext(f"{C}body") for m in messages]

    def resume(self, previd: str, h: int, user: str = "alice",
               password: str = "secret") -> tuple[Client, list[etree._Element]]:
        client = Client(self.server)
        authenticate(client, user, password)
        client.send(f"<resume xmlns='{SM}' previd='{previd}' h='{h}'/>")
        return client, client.read()


class EnableTests(SmFixture):
    def test_feature_after_authentication_only(self) -> None:
        """<sm/> is offered after SASL, not before."""
        client = Client(self.server)
        client.send(HEADER)
        before = client.read()
        self.assertIsNone(before[0].find(f"{{{SM}}}sm"))
        after = authenticate(Client(self.server), "carol", "carol-pw")
        self.assertIsNotNone(after[0].find(f"{{{SM}}}sm"))

    def test_enable_before_binding_fails(self) -> None:
        """<enable/> in the BIND state: <failed/> with unexpected-request,
        and the client may still bind and enable."""
        client = Client(self.server)
        authenticate(client, "carol", "carol-pw")
        client.send(f"<enable xmlns='{SM}'/>")
        failed = sm(client.read(), "failed")[0]
        self.assertIsNotNone(failed.find(f"{{{STANZAS}}}unexpected-request"))
        client.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
        self.assertTrue(of(client.read(), "iq", type="result"))
        self.assertEqual(self.enable(client).get("resume"), "true")

    def test_enabled_with_resumption(self) -> None:
        """An unguessable id that does not reveal the JID, max capped at
        the server's limit."""
        enabled = self.enable(self.alice, " resume='true' max='100000'")
        previd = enabled.get("id")
        self.assertEqual(enabled.get("max"), "300")
        self.assertGreaterEqual(len(base64.urlsafe_b64decode(previd + "==")) * 8, 128)
        self.assertNotIn("alice", previd)
        self.assertNotIn("phone", previd)
        other = self.enable(self.bob, " resume='1' max='60'")
        self.assertEqual(other.get("max"), "60")
        self.assertNotEqual(other.get("id"), previd)

    def test_enable_without_resume_and_twice(self) -> None:
        enabled = self.enable(self.alice, "")
        self.assertIsNone(enabled.get("id"))
        self.assertIsNone(enabled.get("resume"))
        self.alice.send(f"<enable xmlns='{SM}'/>")
        failed = sm(self.alice.read(), "failed")[0]
        self.assertIsNotNone(failed.find(f"{{{STANZAS}}}unexpected-request"))

    def test_location(self) -> None:
        self.server.config = type(self.server.config)(
            **{**self.server.config.__dict__, "sm_location": "xmpp.example:5222"})
        self.server.sm.config = self.server.config
        self.assertEqual(self.enable(self.alice).get("location"), "xmpp.example:5222")

    def test_r_and_a_before_enable_are_stream_errors(self) -> None:
        self.alice.send(f"<r xmlns='{SM}'/>")
        error = self.alice.read()[0]
        self.assertIsNotNone(error.find(f"{{{STREAMS_ERR}}}unsupported-stanza-type"))

    def test_resume_after_binding_fails(self) -> None:
        previd = self.enable(self.alice).get("id")
        self.alice.send(f"<resume xmlns='{SM}' previd='{previd}' h='0'/>")
        failed = sm(self.alice.read(), "failed")[0]
        self.assertIsNotNone(failed.find(f"{{{STANZAS}}}unexpected-request"))


class CountingTests(SmFixture):
    options = {"sm_ack_every": 5, "sm_ack_interval": 30.0}

    def test_inbound_stanzas_counted_not_nonzas(self) -> None:
        self.enable(self.alice)
        self.alice.send("<message to='bob@localhost' type='chat'><body>x</body></message>")
        self.alice.send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
        self.alice.send("<presence><show>away</show></presence>")
        self.alice.send(f"<r xmlns='{SM}'/>")
        self.alice.send(f"<r xmlns='{SM}'/>")
        acks = sm(self.alice.read(), "a")
        self.assertEqual([a.get("h") for a in acks], ["3", "3"])

    def test_server_requests_after_n_stanzas(self) -> None:
        """One <r/> after the fifth unacked stanza, none while it is
        outstanding; the ack empties the queue."""
        self.enable(self.alice)
        self.chat(4)
        self.assertEqual(sm(self.alice.read(), "r"), [])
        self.chat(3, start=5)
        got = self.alice.read()
        self.assertEqual(len(sm(got, "r")), 1)
        self.assertEqual(bodies(got), ["5", "6", "7"])
        session = self.server.sm.sessions[self.alice.stream]
        self.assertEqual(len(session.queue), 7)
        self.alice.send(f"<a xmlns='{SM}' h='7'/>")
        self.assertEqual(len(session.queue), 0)
        self.assertEqual(session.acked, 7)
        self.assertEqual(self.alice.read(), [])

    def test_partial_ack_requests_again(self) -> None:
        self.enable(self.alice)
        self.chat(12)
        self.assertEqual(len(sm(self.alice.read(), "r")), 1)
        self.alice.send(f"<a xmlns='{SM}' h='5'/>")  # 7 still unacked: ask again
        self.assertEqual(len(sm(self.alice.read(), "r")), 1)
        self.assertEqual(len(self.server.sm.sessions[self.alice.stream].queue), 7)

    def test_server_requests_after_t_seconds(self) -> None:
        self.enable(self.alice)
        self.chat(1)
        self.alice.read()
        self.clock.advance(29)
        self.assertEqual(sm(self.alice.read(), "r"), [])
        self.clock.advance(1)
        self.assertEqual(len(sm(self.alice.read(), "r")), 1)
        self.alice.send(f"<a xmlns='{SM}' h='1'/>")
        self.clock.advance(60)
        self.assertEqual(self.alice.read(), [])

    def test_unanswered_request_drops_the_connection(self) -> None:
        """An <r/> unanswered for sm_ack_timeout: the connection is taken
        for dead and aborted; the session hibernates."""
        self.enable(self.alice)
        self.chat(5)
        self.assertEqual(len(sm(self.alice.read(), "r")), 1)
        self.clock.advance(59)
        self.assertFalse(self.alice.transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(self.alice.transport.disconnecting)
        drop(self.alice)  # what the reactor reports after the abort
        self.assertTrue(self.alice.stream.hibernating)

    def test_answered_request_keeps_the_connection(self) -> None:
        self.enable(self.alice)
        self.chat(5)
        self.alice.send(f"<a xmlns='{SM}' h='5'/>")
        self.clock.advance(120)
        self.assertFalse(self.alice.transport.disconnecting)

    def test_outbound_wraps_around(self) -> None:
        self.enable(self.alice)
        session = self.server.sm.sessions[self.alice.stream]
        session.acked = MODULUS - 2
        self.chat(3)
        self.assertEqual(session.sent, 1)
        self.alice.send(f"<a xmlns='{SM}' h='1'/>")
        self.assertEqual(len(session.queue), 0)
        self.assertEqual(session.acked, 1)
        self.assertFalse(self.alice.closed_tag)

    def test_inbound_wraps_around(self) -> None:
        self.enable(self.alice)
        self.server.sm.sessions[self.alice.stream].handled = MODULUS - 1
        self.alice.send("<message to='bob@localhost' type='chat'><body>x</body></message>")
        self.alice.send(f"<r xmlns='{SM}'/>")
        self.assertEqual(sm(self.alice.read(), "a")[0].get("h"), "0")

    def test_handled_count_too_high(self) -> None:
        """Acknowledging more than was sent ends the stream."""
        self.enable(self.alice)
        self.chat(2)
        self.alice.read()
        self.alice.send(f"<a xmlns='{SM}' h='3'/>")
        error = self.alice.read()[-1]
        self.assertIsNotNone(error.find(f"{{{STREAMS_ERR}}}undefined-condition"))
        app = error.find(f"{{{SM}}}handled-count-too-high")
        self.assertEqual((app.get("h"), app.get("send-count")), ("3", "2"))
        self.assertTrue(self.alice.closed_tag)

    def test_stale_ack_across_wrap_is_too_high(self) -> None:
        """An h behind the last acknowledged one is not a new count."""
        self.enable(self.alice)
        self.chat(2)
        self.alice.send(f"<a xmlns='{SM}' h='2'/>")
        self.alice.read()
        self.alice.send(f"<a xmlns='{SM}' h='1'/>")
        error = self.alice.read()[-1]
        self.assertIsNotNone(error.find(f"{{{SM}}}handled-count-too-high"))

    def test_bad_h(self) -> None:
        self.enable(self.alice)
        self.alice.send(f"<a xmlns='{SM}' h='{MODULUS}'/>")
        error = self.alice.read()[-1]
        self.assertIsNotNone(error.find(f"{{{STREAMS_ERR}}}bad-format"))


class QueueLimitTests(SmFixture):
    options = {"sm_ack_every": 100, "sm_max_queue": 3}

    def test_resource_constraint_and_offline(self) -> None:
        """Over the limit the stream ends; every unacked message goes to
        offline storage, in order, nothing dropped (no ring buffer)."""
        self.enable(self.alice)
        self.chat(4)
        got = self.alice.read()
        self.assertIsNotNone(got[-1].find(f"{{{STREAMS_ERR}}}resource-constraint"))
        self.assertEqual(self.stored(), [])  # still the session's
        self.alice.stream.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(self.stored(), ["1", "2", "3", "4"])
        self.assertFalse(self.alice.stream.hibernating)
        self.assertIsNone(self.server.registry.get(self.alice.stream.jid))

    def test_acked_ones_are_not_stored(self) -> None:
        self.enable(self.alice)
        self.chat(2)
        self.alice.send(f"<a xmlns='{SM}' h='2'/>")
        self.chat(2, start=3)
        self.alice.send("</stream:stream>")
        self.alice.stream.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(self.stored(), ["3", "4"])

    def test_overflow_while_hibernating(self) -> None:
        self.enable(self.alice)
        self.chat(2)
        drop(self.alice)
        self.assertTrue(self.alice.stream.hibernating)
        self.bob.read()
        self.chat(2, start=3)
        self.assertFalse(self.alice.stream.hibernating)
        self.assertEqual(self.stored(), ["1", "2", "3", "4"])
        self.assertTrue(of(self.bob.read(), "presence", type="unavailable"))


class HibernationTests(SmFixture):
    options = {"sm_ack_every": 100, "sm_ack_interval": 0}

    def test_hibernate_and_resume(self) -> None:
        """Presence stays while detached; the resumed stream gets the
        unacked stanzas, then those queued meanwhile, each once, in order;
        counting goes on."""
        previd = self.enable(self.alice).get("id")
        self.chat(3)
        self.alice.send("<message to='bob@localhost' type='chat'><body>a1</body></message>")
        self.alice.send(f"<a xmlns='{SM}' h='1'/>")
        self.bob.read()
        self.alice.read()
        stream = self.alice.stream
        drop(self.alice)
        self.assertTrue(stream.hibernating)
        self.assertEqual(of(self.bob.read(), "presence"), [])
        self.assertIs(self.server.registry.get(stream.jid), stream)
        self.chat(2, start=4)
        self.chat(1, to="alice@localhost", start=6)
        self.assertEqual(self.alice.transport.value(), b"")
        client, got = self.resume(previd, 1)
        resumed = sm(got, "resumed")[0]
        self.assertEqual((resumed.get("previd"), resumed.get("h")), (previd, "1"))
        self.assertEqual(bodies(got), ["2", "3", "4", "5", "6"])
        self.assertFalse(stream.hibernating)
        self.assertIs(self.server.registry.get(stream.jid), stream)
        self.assertEqual(stream.jid.resource, "phone")
        # the session lives on over the new connection, counting as before
        self.chat(1, start=7)
        self.assertEqual(bodies(client.read()), ["7"])
        client.send("<message to='bob@localhost' type='chat'><body>a2</body></message>")
        self.assertEqual(bodies(self.bob.read()), ["a2"])
        client.send(f"<r xmlns='{SM}'/>")
        self.assertEqual(sm(client.read(), "a")[0].get("h"), "2")
        client.send(f"<a xmlns='{SM}' h='7'/>")
        self.assertEqual(len(self.server.sm.sessions[stream].queue), 0)
        self.assertEqual(self.stored(), [])

    def test_resumed_session_is_pinged_on_its_new_connection(self) -> None:
        """XEP-0199's idle check follows the session onto the connection it
        resumed on: an answer there keeps it, silence ends it."""
        self.server, self.clock = make_server(self.mktemp(), ping_interval=300.0,
                                              **self.options)
        self.alice = self.client("alice", "secret", "phone")
        self.bob = self.client("bob", "hunter2", "laptop")
        previd = self.enable(self.alice).get("id")
        drop(self.alice)
        client, _ = self.resume(previd, 0)
        self.clock.advance(300)
        ping = of(client.read(), "iq", type="get")[0]
        client.send(f"<iq type='result' id='{ping.get('id')}' to='localhost'/>")
        self.clock.advance(60)
        self.assertFalse(client.closed_tag)
        self.clock.advance(300)
        self.assertTrue(of(client.read(), "iq", type="get"))
        self.clock.advance(60)
        error = client.read()[-1]
        self.assertIsNotNone(error.find(f"{{{STREAMS_ERR}}}connection-timeout"))

    def test_hibernate_twice(self) -> None:
        previd = self.enable(self.alice).get("id")
        self.chat(1)
        drop(self.alice)
        first, got = self.resume(previd, 0)
        self.assertEqual(bodies(got), ["1"])
        drop(first)
        self.assertTrue(self.alice.stream.hibernating)
        self.chat(1, start=2)
        second, got = self.resume(previd, 1)
        self.assertEqual(bodies(got), ["2"])
        second.send("</stream:stream>")
        self.assertTrue(second.closed_tag or b"</stream:stream>" in second.transport.value())
        second.stream.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(self.stored(), ["2"])
        self.assertTrue(of(self.bob.read(), "presence", type="unavailable"))

    def test_resume_while_old_stream_open(self) -> None:
        """The old connection gets conflict; the new one the session."""
        previd = self.enable(self.alice).get("id")
        self.chat(2)
        self.alice.read()
        client, got = self.resume(previd, 1)
        self.assertEqual(bodies(got), ["2"])
        old = self.alice.read()
        self.assertIsNotNone(old[-1].find(f"{{{STREAMS_ERR}}}conflict"))
        self.assertTrue(self.alice.closed_tag)
        self.assertTrue(self.alice.transport.disconnecting)
        # the old socket's end changes nothing
        self.alice.stream.connectionLost(Failure(ConnectionLost()))
        self.assertFalse(self.alice.stream.closed)
        self.chat(1, start=3)
        self.assertEqual(bodies(client.read()), ["3"])
        self.assertEqual(of(self.bob.read(), "presence"), [])
        self.assertEqual(len(self.server.connections), 2)

    def test_resume_by_another_account(self) -> None:
        """bob cannot take alice's session, nor learn anything of it."""
        previd = self.enable(self.alice).get("id")
        drop(self.alice)
        client, got = self.resume(previd, 0, "bob", "hunter2")
        failed = sm(got, "failed")[0]
        self.assertIsNotNone(failed.find(f"{{{STANZAS}}}item-not-found"))
        self.assertIsNone(failed.get("h"))
        self.assertTrue(self.alice.stream.hibernating)
        client.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
        self.assertTrue(of(client.read(), "iq", type="result"))
        _, got = self.resume(previd, 0)
        self.assertTrue(sm(got, "resumed"))

    def test_unknown_previd_then_bind(self) -> None:
        self.enable(self.alice)
        client, got = self.resume("no-such-session", 0)
        failed = sm(got, "failed")[0]
        self.assertIsNotNone(failed.find(f"{{{STANZAS}}}item-not-found"))
        self.assertIsNone(failed.get("h"))
        client.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
        self.assertTrue(of(client.read(), "iq", type="result"))

    def test_resume_h_too_high(self) -> None:
        previd = self.enable(self.alice).get("id")
        self.chat(1)
        drop(self.alice)
        client, got = self.resume(previd, 5)
        self.assertIsNotNone(got[-1].find(f"{{{SM}}}handled-count-too-high"))
        self.assertTrue(self.alice.stream.hibernating)

    def test_clean_close_does_not_hibernate(self) -> None:
        previd = self.enable(self.alice).get("id")
        self.chat(1)
        self.alice.send("</stream:stream>")
        self.alice.stream.connectionLost(Failure(ConnectionLost()))
        self.assertFalse(self.alice.stream.hibernating)
        self.assertEqual(self.stored(), ["1"])
        _, got = self.resume(previd, 0)
        self.assertTrue(sm(got, "failed"))

    def test_without_resume_no_hibernation(self) -> None:
        self.enable(self.alice, "")
        self.chat(1)
        drop(self.alice)
        self.assertFalse(self.alice.stream.hibernating)
        self.assertEqual(self.stored(), ["1"])
        self.assertTrue(of(self.bob.read(), "presence", type="unavailable"))


class ExpiryTests(SmFixture):
    options = {"sm_ack_every": 100, "sm_ack_interval": 0}

    def test_timeout_to_offline_then_next_login(self) -> None:
        """After max seconds: unacked and queued messages stored in order,
        unavailable broadcast; the next login gets them; a late resume
        fails with the h the server had."""
        previd = self.enable(self.alice, " resume='true' max='60'").get("id")
        self.alice.send("<message to='bob@localhost' type='chat'><body>a1</body></message>")
        self.chat(2)
        drop(self.alice)
        self.chat(1, start=3)
        self.bob.read()
        self.clock.advance(59)
        self.assertTrue(self.alice.stream.hibernating)
        self.assertEqual(of(self.bob.read(), "presence"), [])
        self.clock.advance(1)
        self.assertFalse(self.alice.stream.hibernating)
        self.assertTrue(of(self.bob.read(), "presence", type="unavailable"))
        self.assertEqual(self.stored(), ["1", "2", "3"])
        self.assertEqual(self.server.registry.resources(self.alice.stream.jid.bare), [])
        # a message now goes straight to offline storage, behind the others
        self.chat(1, to="alice@localhost", start=4)
        self.assertEqual(self.stored(), ["1", "2", "3", "4"])
        client, got = self.resume(previd, 0)
        failed = sm(got, "failed")[0]
        self.assertEqual(failed.get("h"), "1")
        self.assertIsNotNone(failed.find(f"{{{STANZAS}}}item-not-found"))
        _, got = self.resume(previd, 0, "bob", "hunter2")
        self.assertIsNone(sm(got, "failed")[0].get("h"))
        again = self.client("alice", "secret", "tablet")
        got = again.available()
        self.assertEqual(bodies(got), ["1", "2", "3", "4"])
        self.assertTrue(all(m.find("{urn:xmpp:delay}delay") is not None
                            for m in got if etree.QName(m).localname == "message"))
        self.assertEqual(self.stored(), [])

    def test_unstorable_bounce_recipient_unavailable(self) -> None:
        self.enable(self.alice)
        self.bob.send("<message to='alice@localhost/phone' type='headline' id='h'><body>h</body></message>")
        self.bob.send("<message to='alice@localhost/phone' type='groupchat' id='g'><body>g</body></message>")
        self.bob.send("<iq to='alice@localhost/phone' type='get' id='q'><query xmlns='jabber:iq:version'/></iq>")
        self.bob.send("<message to='alice@localhost/phone' type='error' id='e'/>")
        carbon = ("<message to='alice@localhost/phone' type='chat' id='c'>"
                  "<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
                  "<message xmlns='jabber:client' type='chat'><body>copy</body></message>"
                  "</forwarded></received></message>")
        self.bob.send(carbon)
        drop(self.alice)
        self.bob.read()
        self.clock.advance(300)
        got = self.bob.read()
        errors = {e.get("id"): e for e in got if e.get("type") == "error"}
        self.assertEqual(sorted(errors), ["g", "h", "q"])
        for e in errors.values():
            self.assertIsNotNone(e.find(f"{C}error/{{{STANZAS}}}recipient-unavailable"))
        self.assertEqual(self.stored(), [])

    def test_shutdown_ends_hibernating_sessions(self) -> None:
        self.enable(self.alice)
        self.chat(2)
        drop(self.alice)
        self.chat(1, start=3)
        self.enable(self.bob)
        self.alice.stream.jid  # still bound
        self.server.shutdown()
        self.assertFalse(self.alice.stream.hibernating)
        self.assertEqual(self.stored(), ["1", "2", "3"])
        self.assertEqual(self.server.sm.sessions, {})
        self.assertTrue(self.bob.transport.disconnecting)
        self.bob.stream.connectionLost(Failure(ConnectionLost()))
        self.assertFalse(self.bob.stream.hibernating)

    def test_replaced_by_new_binding(self) -> None:
        """A new stream binding the same resource ends the hibernating
        session; what it held goes to offline storage."""
        self.enable(self.alice)
        self.chat(2)
        drop(self.alice)
        newcomer = self.client("alice", "secret", "phone")
        self.assertFalse(self.alice.stream.hibernating)
        self.assertEqual(self.stored(), ["1", "2"])
        self.assertIs(self.server.registry.get(newcomer.stream.jid), newcomer.stream)
        self.assertEqual(self.server.sm.sessions, {})


class CrashTests(SmFixture):
    """The server dies (no shutdown) while a session hibernates."""

    options = {"sm_ack_every": 100, "sm_ack_interval": 0}

    def setUp(self) -> None:
        self.path = Path(self.mktemp())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.im_store = SqliteImStore(self.path)
        super().setUp()

    def held(self) -> int:
        return self.im_store._db.execute("SELECT COUNT(*) FROM sm_held").fetchone()[0]

    def test_held_messages_survive_a_crash(self) -> None:
        """Messages of a hibernating session, unacked before the cut or
        queued after it, are committed; the next run makes them offline
        messages, in order (unstorable ones are not held)."""
        self.enable(self.alice)
        self.chat(2)
        self.alice.send(f"<a xmlns='{SM}' h='1'/>")
        drop(self.alice)
        self.chat(2, start=3)
        self.bob.send("<message to='alice@localhost/phone' type='headline'><body>h</body></message>")
        self.assertEqual(self.held(), 3)
        self.assertEqual(self.stored(), [])
        # SIGKILL: nothing else runs; a new server opens the same database
        again = SqliteImStore(self.path)
        server, clock = make_server(self.mktemp(), im_store=again)
        self.assertEqual(self.stored(), [])
        server.start()
        self.assertEqual(self.stored(), ["2", "3", "4"])
        self.assertEqual(self.held(), 0)
        stanza = etree.fromstring(again.messages("alice", "localhost", 10)[0].stanza)
        self.assertIsNotNone(stanza.find("{urn:xmpp:delay}delay"))

    def test_resume_releases(self) -> None:
        previd = self.enable(self.alice).get("id")
        self.chat(2)
        drop(self.alice)
        self.chat(1, start=3)
        self.assertEqual(self.held(), 3)
        client, got = self.resume(previd, 0)
        self.assertEqual(bodies(got), ["1", "2", "3"])
        self.assertEqual(self.held(), 0)
        self.assertEqual(self.stored(), [])
        # no longer hibernating: new messages are not held
        self.chat(1, start=4)
        self.assertEqual(self.held(), 0)
        drop(client)
        self.assertEqual(self.held(), 4)

    def test_timeout_moves_held_within_quota(self) -> None:
        """Held messages over the offline quota bounce, none lost silently."""
        self.server.config = type(self.server.config)(
            **{**self.server.config.__dict__, "offline_quota": 2})
        self.server.sm.config = self.server.config
        self.enable(self.alice)
        self.chat(3)
        drop(self.alice)
        self.bob.read()
        self.clock.advance(300)
        self.assertEqual(self.stored(), ["1", "2"])
        self.assertEqual(self.held(), 0)
        errors = [e for e in self.bob.read() if e.get("type") == "error"]
        self.assertEqual([e.get("id") for e in errors], ["m3"])
        self.assertIsNotNone(errors[0].find(f"{C}error/{{{STANZAS}}}service-unavailable"))


class QueuedDb:
    """A database thread the test runs by hand: calls wait in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, tuple, Any]] = []

    def run(self, f: Any, *args: Any) -> Any:
        from twisted.internet.defer import Deferred

        d: Deferred = Deferred()
        self.calls.append((f, args, d))
        return d

    def drain(self) -> None:
        while self.calls:
            f, args, d = self.calls.pop(0)
            d.callback(f(*args))


class CommitBeforeAckTests(SmFixture):
    """An <a/> to a sender waits for the messages it covers to be committed."""

    options = {"sm_ack_every": 100, "sm_ack_interval": 0}

    def setUp(self) -> None:
        super().setUp()
        self.db = QueuedDb()
        self.server.run_in_db = self.db.run
        self.server.offline.run_in_db = self.db.run

    def test_ack_after_hold_commits(self) -> None:
        self.enable(self.alice)
        drop(self.alice)
        self.db.drain()
        self.enable(self.bob)
        self.bob.send("<message to='alice@localhost/phone' type='chat'><body>1</body></message>")
        self.bob.send(f"<r xmlns='{SM}'/>")
        self.bob.send("<message to='alice@localhost/phone' type='chat'><body>2</body></message>")
        self.bob.send(f"<r xmlns='{SM}'/>")
        self.assertEqual(sm(self.bob.read(), "a"), [])
        self.db.drain()
        self.assertEqual([a.get("h") for a in sm(self.bob.read(), "a")], ["1", "2"])
        self.bob.send(f"<r xmlns='{SM}'/>")  # nothing in flight: at once
        self.assertEqual([a.get("h") for a in sm(self.bob.read(), "a")], ["2"])

    def test_ack_after_offline_commit(self) -> None:
        self.enable(self.bob)
        self.bob.send("<message to='carol@localhost' type='chat'><body>c</body></message>")
        self.bob.send(f"<r xmlns='{SM}'/>")
        self.assertEqual(sm(self.bob.read(), "a"), [])
        self.db.drain()
        self.assertEqual([a.get("h") for a in sm(self.bob.read(), "a")], ["1"])
        self.assertEqual(self.stored("carol"), ["c"])

    def test_session_ending_during_a_flush_is_flushed_too(self) -> None:
        """A hibernating session ends while another resource of the account
        is reading its offline messages: what it held goes there too."""
        self.enable(self.alice)
        self.chat(2)
        drop(self.alice)
        self.db.drain()
        tablet = self.client("alice", "secret", "tablet")
        tablet.send("<presence/>")  # starts a flush: its read waits in the queue
        self.clock.advance(300)  # the phone's session ends: held ones move
        self.db.drain()
        self.assertEqual(bodies(tablet.read()), ["1", "2"])
        self.assertEqual(self.stored(), [])


class PushWhileHibernatingTests(test_push.PushFixture):
    """XEP-0357 reads C{stream.hibernating}: a real hibernation is pushed
    for, and the resumed session reads again."""

    xmpp: ClassVar[dict[str, Any]] = {"push_min_interval": 0}

    def test_pushed_while_hibernating_not_after_resume(self) -> None:
        carol = self.client("carol", "carol-pw", "phone")
        carol.available()
        self.assertEqual(self.enable(carol).get("type"), "result")
        carol.send(f"<enable xmlns='{SM}' resume='true'/>")
        previd = sm(carol.read(), "enabled")[0].get("id")
        drop(carol)
        self.assertTrue(carol.stream.hibernating)
        self.message()
        self.assertEqual(len(self.service.publishes), 1)
        again = Client(self.server)
        authenticate(again, "carol", "carol-pw")
        again.send(f"<resume xmlns='{SM}' previd='{previd}' h='0'/>")
        got = again.read()
        self.assertTrue(sm(got, "resumed"))
        self.message()
        self.assertEqual(len(self.service.publishes), 1)
        self.assertEqual(len(bodies(got + again.read())), 2)
