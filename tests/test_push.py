"""XEP-0357 Push Notifications, the server side, on StringTransport with the
test app server of tests/pushapp.py on push.localhost."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from convergence.auth.accounts import Accounts
from convergence.config import ConfigError, load_config
from convergence.store.interfaces import IPushStore, PushRegistration
from convergence.store.sqlite import SqliteAccountStore
from convergence.store.sqlite_push import SqlitePushStore
from convergence.xmpp.features.push import MAX_BODY, REPLY_TIMEOUT, is_important
from convergence.xmpp.jid import JID
from convergence.xmpp.stanza import split_tag
from tests.imhelpers import C, of
from tests.pushapp import PushService
from tests.xmpphelpers import Client, make_app, make_server

PUSH = "urn:xmpp:push:0"
OPTIONS = ("<x xmlns='jabber:x:data' type='submit'>"
           "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options"
           "</value></field><field var='secret'><value>s3cret</value></field></x>")


def error_of(iq: Any) -> str:
    error = iq.find(f"{C}error")
    return split_tag(error[0].tag)[1]


class PushFixture(SynchronousTestCase):
    """alice and bob online, carol offline, the app server on push.localhost."""

    xmpp: ClassVar[dict[str, Any]] = {}

    def setUp(self) -> None:
        self.service = PushService()
        app = make_app("pushservice", self.service, ("push.localhost",))
        self.server, self.clock = make_server(self.mktemp(), apps=(app,), **self.xmpp)
        self.server.accounts.add("carol@localhost", "carol-pw")
        self.alice = self.client("alice", "secret", "phone")
        self.bob = self.client("bob", "hunter2", "laptop")

    def client(self, user: str, password: str, resource: str) -> Client:
        client = Client(self.server)
        client.login(user, password, resource)
        return client

    def enable(self, client: Client, node: str = "n1", jid: str = "push.localhost",
               form: str = "", extra: str = "") -> Any:
        client.send(f"<iq type='set' id='e1'{extra}><enable xmlns='{PUSH}' jid='{jid}'"
                    f" node='{node}'>{form}</enable></iq>")
        return of(client.read(), "iq", id="e1")[0]

    def disable(self, client: Client, jid: str = "push.localhost",
                node: str | None = None) -> Any:
        attr = "" if node is None else f" node='{node}'"
        client.send(f"<iq type='set' id='d1'><disable xmlns='{PUSH}' jid='{jid}'{attr}/></iq>")
        return of(client.read(), "iq", id="d1")[0]

    def registrations(self, user: str = "carol") -> list[tuple[str, str]]:
        return [(r.service, r.node)
                for r in self.server.push_store.registrations(user, "localhost")]

    def carol_registers_and_leaves(self, node: str = "n1", form: str = OPTIONS) -> None:
        carol = self.client("carol", "carol-pw", "phone")
        self.assertEqual(self.enable(carol, node, form=form).get("type"), "result")
        carol.stream.connectionLost(None)

    def message(self, to: str = "carol@localhost", body: str | None = "hello",
                type_: str = "chat", payload: str = "") -> None:
        text = "" if body is None else f"<body>{body}</body>"
        self.alice.send(f"<message to='{to}' type='{type_}'>{text}{payload}</message>")


class EnableDisableTests(PushFixture):
    def test_account_disco_feature(self) -> None:
        """urn:xmpp:push:0 is a feature of the account's bare JID."""
        self.alice.send("<iq type='get' id='i1' to='alice@localhost'>"
                        "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
        [result] = of(self.alice.read(), "iq", id="i1")
        features = [f.get("var") for f in result.iter(
            "{http://jabber.org/protocol/disco#info}feature")]
        self.assertIn(PUSH, features)
        self.assertNotIn(PUSH, self.server.features.disco_features())

    def test_enable_stores_registration(self) -> None:
        """enable is answered with a result and kept; several per account,
        one per (jid, node); enabling again replaces."""
        self.assertEqual(self.enable(self.alice, "n1").get("type"), "result")
        self.assertEqual(self.enable(self.alice, "n2", form=OPTIONS).get("type"), "result")
        self.assertEqual(self.enable(self.alice, "n1", jid="other.localhost")
                         .get("type"), "result")
        self.assertEqual(self.enable(self.alice, "n2").get("type"), "result")
        self.assertEqual(sorted(self.registrations("alice")),
                         [("other.localhost", "n1"), ("push.localhost", "n1"),
                          ("push.localhost", "n2")])
        replaced = [r for r in self.server.push_store.registrations("alice", "localhost")
                    if r.node == "n2"]
        self.assertIsNone(replaced[0].options)
        self.assertEqual(self.registrations("bob"), [])

    def test_enable_with_explicit_own_bare_jid(self) -> None:
        """An enable addressed to the own bare JID works the same."""
        iq = self.enable(self.alice, extra=" to='alice@localhost'")
        self.assertEqual(iq.get("type"), "result")
        self.assertEqual(iq.get("from"), "alice@localhost")

    def test_bad_enables(self) -> None:
        """Missing or malformed jid or node, or a wrong form: bad-request;
        nothing is stored."""
        cases = [
            f"<enable xmlns='{PUSH}' node='n'/>",
            f"<enable xmlns='{PUSH}' jid='a@@b' node='n'/>",
            f"<enable xmlns='{PUSH}' jid='push.localhost'/>",
            f"<enable xmlns='{PUSH}' jid='push.localhost' node=''/>",
            f"<enable xmlns='{PUSH}' jid='push.localhost' node='{'x' * 1024}'/>",
            (f"<enable xmlns='{PUSH}' jid='push.localhost' node='n'>"
             "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
             "<value>urn:other</value></field></x></enable>"),
            (f"<enable xmlns='{PUSH}' jid='push.localhost' node='n'>"
             + OPTIONS.replace("type='submit'", "type='form'") + "</enable>"),
            (f"<enable xmlns='{PUSH}' jid='push.localhost' node='n'>{OPTIONS}{OPTIONS}"
             "</enable>"),
            (f"<enable xmlns='{PUSH}' jid='push.localhost' node='n'>"
             + OPTIONS.replace("s3cret", "x" * 9000) + "</enable>"),
        ]
        for n, payload in enumerate(cases):
            self.alice.send(f"<iq type='set' id='b{n}'>{payload}</iq>")
            [iq] = of(self.alice.read(), "iq", id=f"b{n}")
            self.assertEqual((iq.get("type"), error_of(iq)), ("error", "bad-request"), n)
        self.assertEqual(self.registrations("alice"), [])

    def test_only_own_account(self) -> None:
        """bob cannot enable or disable push for alice: forbidden, whether
        the account exists or not."""
        for to in ("alice@localhost", "nobody@localhost"):
            iq = self.enable(self.bob, extra=f" to='{to}'")
            self.assertEqual((iq.get("type"), error_of(iq)), ("error", "forbidden"))
        self.assertEqual(self.enable(self.alice).get("type"), "result")
        self.bob.send(f"<iq type='set' id='d1' to='alice@localhost'><disable xmlns='{PUSH}'"
                      " jid='push.localhost'/></iq>")
        [iq] = of(self.bob.read(), "iq", id="d1")
        self.assertEqual(error_of(iq), "forbidden")
        self.assertEqual(self.registrations("alice"), [("push.localhost", "n1")])
        self.assertEqual(self.registrations("bob"), [])

    def test_registration_limit(self) -> None:
        """Past xmpp.max_push_registrations a new one is refused with
        resource-constraint; replacing an existing one still works."""
        for n in range(20):
            self.assertEqual(self.enable(self.alice, f"n{n}").get("type"), "result")
        iq = self.enable(self.alice, "one-more")
        self.assertEqual((iq.get("type"), error_of(iq)), ("error", "resource-constraint"))
        self.assertEqual(self.enable(self.alice, "n3", form=OPTIONS).get("type"), "result")
        self.assertEqual(len(self.registrations("alice")), 20)

    def test_disable(self) -> None:
        """disable with a node removes that registration; without one, every
        registration with that jid; unknown ones are fine."""
        for jid, node in (("push.localhost", "a"), ("push.localhost", "b"),
                          ("other.localhost", "a")):
            self.enable(self.alice, node, jid=jid)
        self.assertEqual(self.disable(self.alice, node="a").get("type"), "result")
        self.assertEqual(sorted(self.registrations("alice")),
                         [("other.localhost", "a"), ("push.localhost", "b")])
        self.assertEqual(self.disable(self.alice).get("type"), "result")
        self.assertEqual(self.registrations("alice"), [("other.localhost", "a")])
        self.assertEqual(self.disable(self.alice, "never.localhost").get("type"), "result")
        self.alice.send(f"<iq type='set' id='d2'><disable xmlns='{PUSH}'/></iq>")
        [iq] = of(self.alice.read(), "iq", id="d2")
        self.assertEqual(error_of(iq), "bad-request")

    def test_stream_association_dropped_on_close(self) -> None:
        """A closed stream leaves no state behind; its registration stays."""
        carol = self.client("carol", "carol-pw", "phone")
        self.enable(carol)
        push = self.server.push
        self.assertIn(carol.stream, push.by_stream)
        carol.stream.connectionLost(None)
        self.assertEqual((push.by_stream, push.attached), ({}, {}))
        self.assertEqual(self.registrations(), [("push.localhost", "n1")])


class OfflineNotificationTests(PushFixture):
    def test_offline_message_is_pushed_and_stored(self) -> None:
        """A message for offline storage: a publish from the account's bare
        JID with the summary and the publish-options; the message is still
        stored and delivered later; no body by default."""
        self.carol_registers_and_leaves()
        self.message(body="secret words")
        [publish] = self.service.publishes
        self.assertEqual((publish["from"], publish["to"], publish["node"]),
                         ("carol@localhost", "push.localhost", "n1"))
        self.assertEqual(publish["summary"], {
            "FORM_TYPE": "urn:xmpp:push:summary", "message-count": "1",
            "last-message-sender": "alice@localhost/phone"})
        self.assertEqual(publish["options"]["secret"], "s3cret")
        self.assertEqual(self.server.im_store.count_messages("carol", "localhost"), 1)
        self.assertEqual(of(self.alice.read(), "message"), [])  # no error
        carol = self.client("carol", "carol-pw", "phone")
        got = of(carol.available(), "message")
        self.assertEqual([m.findtext(f"{C}body") for m in got], ["secret words"])
        self.assertEqual(self.server.push.in_flight, {})  # answered

    def test_every_registration_is_notified(self) -> None:
        """Each registration of the account gets its own publish."""
        carol = self.client("carol", "carol-pw", "phone")
        self.enable(carol, "phone-token")
        tablet = self.client("carol", "carol-pw", "tablet")
        self.enable(tablet, "tablet-token")
        carol.stream.connectionLost(None)
        tablet.stream.connectionLost(None)
        self.message()
        self.assertEqual(sorted(p["node"] for p in self.service.publishes),
                         ["phone-token", "tablet-token"])

    def test_unimportant_stanzas_are_not_pushed(self) -> None:
        """Chat states, empty bodies, headlines, groupchat and presence do
        not wake the device."""
        self.carol_registers_and_leaves()
        self.message(body=None, payload="<active xmlns='http://jabber.org/protocol/chatstates'/>")
        self.message(body=" ")
        self.message(type_="headline")
        self.message(type_="groupchat")
        self.alice.send("<presence to='carol@localhost' type='subscribe'/>")
        self.assertEqual(self.service.publishes, [])

    def test_call_proposal_is_pushed(self) -> None:
        """An XEP-0353 call proposal without a body is important."""
        self.carol_registers_and_leaves()
        self.message(body=None, payload="<propose xmlns='urn:xmpp:jingle-message:0'"
                     " id='c1'><description xmlns='urn:xmpp:jingle:apps:rtp:1'"
                     " media='audio'/></propose>")
        self.assertEqual(len(self.service.publishes), 1)

    def test_removed_account_gets_no_trailing_push(self) -> None:
        """account/removed (XEP-0077 <remove/>) drops the account's pending
        summary: the trailing publish of a burst does not go out."""
        from convergence.xmpp.events import AccountEvent

        self.carol_registers_and_leaves()
        self.message(body="one")
        self.message(body="two")
        self.assertEqual(len(self.service.publishes), 1)
        self.server.bus.fire("account/removed", AccountEvent("carol", "localhost"))
        self.clock.advance(10)
        self.assertEqual(len(self.service.publishes), 1)

    def test_no_registration_no_push(self) -> None:
        """Without registrations nothing is published; other accounts'
        registrations do not matter."""
        self.enable(self.bob)
        self.message()
        self.assertEqual(self.service.publishes, [])

    def test_burst_is_rate_limited_and_summed_up(self) -> None:
        """One publish at once, then at most one per push_min_interval
        carrying the count and the latest sender."""
        self.carol_registers_and_leaves()
        self.message(body="one")
        self.bob.send("<message to='carol@localhost' type='chat'><body>two</body></message>")
        self.message(body="three")
        self.assertEqual([p["summary"]["message-count"] for p in self.service.publishes],
                         ["1"])
        self.clock.advance(4.9)
        self.assertEqual(len(self.service.publishes), 1)
        self.clock.advance(0.1)
        self.assertEqual(len(self.service.publishes), 2)
        second = self.service.publishes[1]["summary"]
        self.assertEqual((second["message-count"], second["last-message-sender"]),
                         ("3", "alice@localhost/phone"))
        self.clock.advance(60)
        self.assertEqual(len(self.service.publishes), 2)  # nothing new, nothing sent
        self.message(body="four")
        self.assertEqual(self.service.publishes[2]["summary"]["message-count"], "4")

    def test_count_starts_anew_when_the_user_comes_online(self) -> None:
        """Available presence of the account resets the count and drops a
        trailing notification that is no longer needed."""
        self.carol_registers_and_leaves()
        self.message()
        self.message()
        carol = self.client("carol", "carol-pw", "desk")
        carol.available()
        self.clock.advance(10)
        self.assertEqual(len(self.service.publishes), 1)
        carol.stream.connectionLost(None)
        self.message()
        self.assertEqual(self.service.publishes[-1]["summary"]["message-count"], "1")

    def test_disabled_registration_is_not_pushed(self) -> None:
        """After disable, offline messages are stored but not pushed, and a
        pending trailing notification is dropped."""
        self.carol_registers_and_leaves()
        self.message()
        self.message()
        carol = self.client("carol", "carol-pw", "phone")
        self.assertEqual(self.disable(carol, node="n1").get("type"), "result")
        carol.stream.connectionLost(None)
        self.clock.advance(10)
        self.message()
        self.assertEqual(len(self.service.publishes), 1)
        self.assertEqual(self.server.im_store.count_messages("carol", "localhost"), 3)


class BodyTests(PushFixture):
    xmpp: ClassVar[dict[str, Any]] = {"push_include_body": True, "push_min_interval": 0}

    def test_body_when_configured(self) -> None:
        """With push_include_body the body travels, cut to MAX_BODY; with
        push_min_interval 0 every message is published."""
        self.carol_registers_and_leaves(form="")
        self.message(body="hello")
        self.message(body="x" * 1000)
        first, second = self.service.publishes
        self.assertEqual(first["summary"]["last-message-body"], "hello")
        self.assertEqual(second["summary"]["last-message-body"], "x" * MAX_BODY)
        self.assertEqual(second["summary"]["message-count"], "2")
        self.assertEqual(first["options"], {})


class LiveSessionTests(PushFixture):
    """(b) inactive (XEP-0352) and (c) hibernating (XEP-0198) sessions."""

    xmpp: ClassVar[dict[str, Any]] = {"push_min_interval": 0}

    def setUp(self) -> None:
        super().setUp()
        self.carol = self.client("carol", "carol-pw", "phone")
        self.carol.available()
        self.assertEqual(self.enable(self.carol).get("type"), "result")

    def test_active_session_is_not_pushed(self) -> None:
        """Delivered live to an active session: no push."""
        self.message()
        self.assertEqual(len(of(self.carol.read(), "message")), 1)
        self.assertEqual(self.service.publishes, [])

    def test_inactive_session_is_pushed(self) -> None:
        """An inactive session still gets the message, and a push goes out;
        to the bare or the full JID."""
        self.carol.stream.client_state = "inactive"
        self.message()
        self.message(to="carol@localhost/phone")
        self.assertEqual(len(of(self.carol.read(), "message")), 2)
        self.assertEqual([p["summary"]["message-count"] for p in self.service.publishes],
                         ["1", "2"])

    def test_hibernating_session_is_pushed(self) -> None:
        """A session hibernating under stream management is pushed for."""
        self.carol.stream.hibernating = True
        self.message()
        self.assertEqual(len(self.service.publishes), 1)

    def test_count_resets_when_active_again(self) -> None:
        """What the active session is delivered, it reads: counting starts
        anew once it is active again."""
        self.carol.stream.client_state = "inactive"
        self.message()
        self.message()
        self.carol.stream.client_state = "active"
        self.bob.send("<presence to='carol@localhost/phone'/>")
        self.carol.stream.client_state = "inactive"
        self.message()
        self.assertEqual([p["summary"]["message-count"] for p in self.service.publishes],
                         ["1", "2", "1"])

    def test_other_resource_inactive_is_not_pushed(self) -> None:
        """Only the stream that enabled push counts: another inactive
        resource of the account does not trigger the registration."""
        desk = self.client("carol", "carol-pw", "desk")
        desk.available()
        desk.stream.client_state = "inactive"
        self.message(to="carol@localhost/desk")
        self.assertEqual(len(of(desk.read(), "message")), 1)
        self.assertEqual(self.service.publishes, [])

    def test_enable_on_another_stream_moves_the_registration(self) -> None:
        """Enabling the same (jid, node) from another stream makes that
        stream the registration's own."""
        desk = self.client("carol", "carol-pw", "desk")
        desk.available()
        self.enable(desk)
        self.carol.stream.client_state = "inactive"
        self.message(to="carol@localhost/phone")
        self.assertEqual(self.service.publishes, [])
        desk.stream.client_state = "inactive"
        self.message(to="carol@localhost/desk")
        self.assertEqual(len(self.service.publishes), 1)

    def test_disable_detaches_the_stream(self) -> None:
        """After disable an inactive session is not pushed for."""
        self.disable(self.carol, node="n1")
        self.carol.stream.client_state = "inactive"
        self.message()
        self.assertEqual(self.service.publishes, [])


class AppServerAnswerTests(PushFixture):
    xmpp: ClassVar[dict[str, Any]] = {"push_min_interval": 0}

    def test_cancel_error_disables_the_registration(self) -> None:
        """item-not-found from the app server removes the registration, in
        memory and in the store; the next message is not pushed."""
        self.service.errors["n1"] = "item-not-found"
        self.carol_registers_and_leaves()
        self.message()
        self.assertEqual(self.registrations(), [])
        self.message()
        self.assertEqual(len(self.service.publishes), 1)
        self.assertEqual(self.server.push.pending, {})

    def test_auth_error_disables_the_registration(self) -> None:
        """not-authorized (type auth) disables too."""
        self.service.errors["n1"] = "not-authorized"
        self.carol_registers_and_leaves()
        self.message()
        self.assertEqual(self.registrations(), [])

    def test_wait_error_keeps_the_registration(self) -> None:
        """resource-constraint (type wait) is logged and changes nothing."""
        self.service.errors["n1"] = "resource-constraint"
        self.carol_registers_and_leaves()
        self.message()
        self.message()
        self.assertEqual(self.registrations(), [("push.localhost", "n1")])
        self.assertEqual(len(self.service.publishes), 2)

    def test_unreachable_app_server_keeps_the_registration(self) -> None:
        """A remote app server this server cannot reach yet
        (remote-server-not-found from the router) is not disabled."""
        carol = self.client("carol", "carol-pw", "phone")
        self.enable(carol, jid="push.example.net")
        carol.stream.connectionLost(None)
        self.message()
        self.assertEqual(self.registrations(), [("push.example.net", "n1")])
        self.assertEqual(self.server.push.in_flight, {})

    def test_local_domain_without_service_disables(self) -> None:
        """A local address where nobody serves PubSub answers
        service-unavailable: the registration goes."""
        carol = self.client("carol", "carol-pw", "phone")
        self.enable(carol, jid="localhost")
        carol.stream.connectionLost(None)
        self.message()
        self.assertEqual(self.registrations(), [])

    def test_forged_answer_is_ignored_and_silence_times_out(self) -> None:
        """An error with the right id from anyone but the app server does
        not disable; an unanswered publish is forgotten after
        REPLY_TIMEOUT."""
        self.service.silent.add("n1")
        self.carol_registers_and_leaves()
        self.message()
        [iq_id] = self.server.push.in_flight
        self.bob.send(f"<iq type='error' id='{iq_id}' to='carol@localhost'>"
                      "<error type='cancel'><item-not-found"
                      " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
        self.assertEqual(self.registrations(), [("push.localhost", "n1")])
        self.assertEqual(list(self.server.push.in_flight), [iq_id])
        self.clock.advance(REPLY_TIMEOUT)
        self.assertEqual(self.server.push.in_flight, {})
        self.assertEqual(self.registrations(), [("push.localhost", "n1")])


class ImportanceTests(SynchronousTestCase):
    def test_is_important(self) -> None:
        from lxml import etree

        def m(xml: str) -> Any:
            return etree.fromstring(f"<message xmlns='jabber:client' {xml}</message>")

        self.assertTrue(is_important(m("type='chat'><body>hi</body>")))
        self.assertTrue(is_important(m("><body>hi</body>")))
        self.assertTrue(is_important(m("type='normal'><body>hi</body>")))
        self.assertFalse(is_important(m("type='chat'><body/>")))
        self.assertFalse(is_important(m("type='groupchat'><body>hi</body>")))
        self.assertFalse(is_important(m("type='error'><body>hi</body>")))
        self.assertFalse(is_important(m(
            "><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
            "<message xmlns='jabber:client'><body>hi</body></message></forwarded>"
            "</received>")))
        self.assertFalse(is_important(etree.fromstring(
            "<presence xmlns='jabber:client'><status>x</status></presence>")))


class StoreTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = Path(self.mktemp())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.accounts_store = SqliteAccountStore(self.path)
        self.addCleanup(self.accounts_store.close)
        accounts = Accounts(self.accounts_store, 4096)
        accounts.add("alice@localhost", "pw")
        accounts.add("bob@localhost", "pw")
        self.store = SqlitePushStore(self.path)
        self.addCleanup(self.store.close)

    def test_interface(self) -> None:
        verifyObject(IPushStore, self.store)

    def test_round_trip_limit_and_removal(self) -> None:
        a = PushRegistration("push.example", "a", b"<x/>", 1.0)
        b = PushRegistration("push.example", "b", None, 2.0)
        c = PushRegistration("other.example", "a", None, 3.0)
        for r in (a, b):
            self.assertTrue(self.store.put_registration("alice", "localhost", r, 2))
        self.assertFalse(self.store.put_registration("alice", "localhost", c, 2))
        self.assertTrue(self.store.put_registration("alice", "localhost", c, 0))
        newer = PushRegistration("push.example", "a", b"<y/>", 4.0)
        self.assertTrue(self.store.put_registration("alice", "localhost", newer, 3))
        self.assertEqual(self.store.registrations("alice", "localhost"), [b, c, newer])
        self.assertEqual(self.store.registrations("bob", "localhost"), [])
        self.assertEqual(self.store.remove_registrations("alice", "localhost",
                                                         "push.example", "b"), 1)
        self.assertEqual(self.store.remove_registrations("alice", "localhost",
                                                         "push.example"), 1)
        self.assertEqual(self.store.registrations("alice", "localhost"), [c])

    def test_survives_restart_and_goes_with_the_account(self) -> None:
        """Registrations are durable; deleting the account removes them."""
        r = PushRegistration("push.example", "a", None, 1.0)
        self.store.put_registration("alice", "localhost", r, 0)
        self.store.close()
        again = SqlitePushStore(self.path)
        self.addCleanup(again.close)
        self.assertEqual(again.registrations("alice", "localhost"), [r])
        self.accounts_store.delete("alice", "localhost")
        self.assertEqual(again.registrations("alice", "localhost"), [])

    def test_server_restart_keeps_pushing(self) -> None:
        """A registration made on one server is pushed for by the next one
        on the same database."""
        carol = None
        for run in range(2):
            service = PushService()
            server = file_server(self.path, service)
            self.addCleanup(server.push_store.close)
            self.addCleanup(server.accounts.store.close)
            if run == 0:
                carol = Client(server)
                carol.login("alice", "pw", "phone")
                carol.send(f"<iq type='set' id='e1'><enable xmlns='{PUSH}'"
                           " jid='push.localhost' node='n1'/></iq>")
                self.assertEqual(of(carol.read(), "iq", id="e1")[0].get("type"), "result")
                carol.stream.connectionLost(None)
        bob = Client(server)
        bob.login("bob", "pw", "laptop")
        bob.send("<message to='alice@localhost' type='chat'><body>hi</body></message>")
        self.assertEqual([p["node"] for p in service.publishes], ["n1"])


def file_server(path: Path, service: PushService) -> Any:
    """A server like make_server's whose push registrations live in the
    SQLite file at C{path} (its accounts too)."""
    from convergence.config import XmppConfig
    from convergence.container.container import Container
    from convergence.xmpp.server import XmppServer
    from tests.xmpphelpers import run_now

    clock = Clock()
    accounts = Accounts(SqliteAccountStore(path), 4096)
    app = make_app("pushservice", service, ("push.localhost",))
    config = XmppConfig(require_tls=False, allow_plain_without_tls=True)
    return XmppServer(config, ["localhost"], accounts, Container(clock, (app,)), clock,
                      run_in_thread=run_now, push_store=SqlitePushStore(path))


class ConfigTests(SynchronousTestCase):
    def test_keys(self) -> None:
        path = Path(self.mktemp())
        path.write_text("[xmpp]\npush_include_body = true\npush_min_interval = 0.5\n"
                        "max_push_registrations = 0\n")
        xmpp = load_config(path).xmpp
        self.assertEqual((xmpp.push_include_body, xmpp.push_min_interval,
                          xmpp.max_push_registrations), (True, 0.5, 0))
        defaults = load_config().xmpp
        self.assertEqual((defaults.push_include_body, defaults.push_min_interval,
                          defaults.max_push_registrations), (False, 5.0, 20))
        for bad in ("push_include_body = 1", "push_min_interval = -1",
                    "max_push_registrations = -2"):
            path.write_text(f"[xmpp]\n{bad}\n")
            with self.assertRaises(ConfigError) as e:
                load_config(path)
            self.assertIn("xmpp.", str(e.exception))


class ResumedSessionTests(PushFixture):
    """XEP-0198 resumption keeps the stream push was enabled on."""

    xmpp: ClassVar[dict[str, Any]] = {"push_min_interval": 0}

    def test_push_survives_hibernation_and_resumption(self) -> None:
        from twisted.internet.error import ConnectionLost
        from twisted.python.failure import Failure

        from tests.test_sm import SM, authenticate, sm

        carol = self.client("carol", "carol-pw", "phone")
        carol.available()
        carol.send(f"<enable xmlns='{SM}' resume='true'/>")
        previd = sm(carol.read(), "enabled")[0].get("id")
        self.assertEqual(self.enable(carol).get("type"), "result")
        carol.stream.connectionLost(Failure(ConnectionLost()))  # hibernates
        self.message()
        self.assertEqual(len(self.service.publishes), 1)
        again = Client(self.server)
        authenticate(again, "carol", "carol-pw")
        again.send(f"<resume xmlns='{SM}' previd='{previd}' h='0'/>")
        self.assertEqual(len(sm(again.read(), "resumed")), 1)
        self.message()  # live and active: read, not pushed
        self.assertEqual(len(self.service.publishes), 1)
        session = self.server.registry.get(JID.parse("carol@localhost/phone"))
        session.client_state = "inactive"
        self.message()
        self.assertEqual(len(self.service.publishes), 2)
        self.assertEqual(self.service.publishes[-1]["summary"]["message-count"], "1")

    def test_push_survives_resumption_over_a_live_connection(self) -> None:
        """Resumed while the old connection still looked open (closed with
        conflict): the registration stays on the session."""
        from tests.test_sm import SM, authenticate, sm

        carol = self.client("carol", "carol-pw", "phone")
        carol.available()
        carol.send(f"<enable xmlns='{SM}' resume='true'/>")
        previd = sm(carol.read(), "enabled")[0].get("id")
        self.assertEqual(self.enable(carol).get("type"), "result")
        again = Client(self.server)
        authenticate(again, "carol", "carol-pw")
        again.send(f"<resume xmlns='{SM}' previd='{previd}' h='0'/>")
        self.assertEqual(len(sm(again.read(), "resumed")), 1)
        self.assertTrue(carol.transport.disconnecting)  # the old one: conflict
        session = self.server.registry.get(JID.parse("carol@localhost/phone"))
        session.client_state = "inactive"
        self.message()
        self.assertEqual(len(self.service.publishes), 1)
