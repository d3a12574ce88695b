"""XEP-0077 In-Band Registration: creating, changing and removing accounts."""

from __future__ import annotations

import base64
from pathlib import Path

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from convergence.store.sqlite_im import SqliteImStore
from convergence.xmpp.events import AccountEvent
from tests.imhelpers import ImFixture, items, of
from tests.xmpphelpers import HEADER, Client, make_server

REG = "jabber:iq:register"
R = f"{{{REG}}}"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
STANZA = "{urn:ietf:params:xml:ns:xmpp-stanzas}"
STREAM = "{urn:ietf:params:xml:ns:xmpp-streams}"
FEATURE = "{http://jabber.org/features/iq-register}register"


def condition(reply: etree._Element) -> str | None:
    error = reply.find("{jabber:client}error")
    if error is None:
        return None
    return next(c.tag[len(STANZA):] for c in error
                if c.tag.startswith(STANZA) and c.tag != f"{STANZA}text")


def query(user: str | None = None, password: str | None = None, extra: str = "") -> str:
    fields = "" if user is None else f"<username>{user}</username>"
    fields += "" if password is None else f"<password>{password}</password>"
    return f"<query xmlns='{REG}'>{fields}{extra}</query>"


class Unauthenticated(Client):
    """A client that opens the stream and stops before SASL."""

    def open(self) -> etree._Element:
        self.send(HEADER)
        return self.expect("features")

    def iq(self, type_: str, payload: str, id_: str = "r1") -> etree._Element:
        self.send(f"<iq type='{type_}' id='{id_}'>{payload}</iq>")
        return of(self.read(), "iq", id=id_)[0]

    def authenticate(self, user: str, password: str) -> str:
        """PLAIN on this very stream, then bind; return the full JID."""
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        self.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>{token}</auth>")
        self.expect("success")
        self.restart_parser()
        self.send(HEADER)
        self.read()
        self.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                  "<resource>new</resource></bind></iq>")
        return self.expect("iq").findtext(".//{urn:ietf:params:xml:ns:xmpp-bind}jid")


def can_login(server, user: str, password: str) -> bool:
    client = Client(server)
    client.send(HEADER)
    client.read()
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    client.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>{token}</auth>")
    server.clock.advance(10)  # failures are answered late
    return any(etree.QName(e).localname == "success" for e in client.read())


class RegistrationOffTests(SynchronousTestCase):
    """The default: no in-band registration."""

    def setUp(self) -> None:
        self.server, self.clock = make_server(self.mktemp())
        self.client = Unauthenticated(self.server)
        self.features = self.client.open()

    def test_not_offered(self) -> None:
        self.assertIsNone(self.features.find(FEATURE))

    def test_refused(self) -> None:
        """A registration attempt anyway is service-unavailable and creates nothing."""
        self.assertEqual(condition(self.client.iq("get", query())), "service-unavailable")
        reply = self.client.iq("set", query("mallory", "pw"), "r2")
        self.assertEqual(condition(reply), "service-unavailable")
        self.assertFalse(self.server.accounts.store.exists("mallory", "localhost"))
        self.assertFalse(self.client.stream.closing)

    def test_other_iq_before_auth(self) -> None:
        """Any other iq before authentication is still a stream error."""
        self.client.send("<iq type='get' id='x'><query xmlns='jabber:iq:roster'/></iq>")
        error = self.client.read()[0]
        self.assertIsNotNone(error.find(f"{STREAM}not-authorized"))


class RegistrationTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.server, self.clock = make_server(
            self.mktemp(), allow_registration=True, registrations_per_ip=3,
            registration_window=100)
        self.events: list[tuple[str, AccountEvent]] = []
        for name in ("account/registered", "account/removed"):
            self.server.bus.hook(name, lambda e, n=name: self.events.append((n, e)))
        self.client = Unauthenticated(self.server)
        self.features = self.client.open()

    def test_offered_with_the_mechanisms(self) -> None:
        self.assertIsNotNone(self.features.find(FEATURE))
        self.assertIsNotNone(self.features.find(f"{{{SASL}}}mechanisms"))

    def test_fields(self) -> None:
        """The get lists instructions, username and password (and a form)."""
        result = self.client.iq("get", query())
        self.assertEqual(result.get("type"), "result")
        q = result.find(f"{R}query")
        self.assertIsNone(q.find(f"{R}registered"))
        for name in ("instructions", "username", "password"):
            self.assertIsNotNone(q.find(f"{R}{name}"), name)
        self.assertIsNotNone(q.find("{jabber:x:data}x"))

    def test_register_then_log_in_on_the_same_stream(self) -> None:
        """A new account, usable at once on the same stream and on others."""
        result = self.client.iq("set", query("Newbie", "s3cret!"))
        self.assertEqual(result.get("type"), "result")
        self.assertTrue(self.server.accounts.store.exists("newbie", "localhost"))
        self.assertEqual([(n, e.localpart, e.domain) for n, e in self.events],
                         [("account/registered", "newbie", "localhost")])
        self.assertEqual(self.client.authenticate("newbie", "s3cret!"), "newbie@localhost/new")
        self.assertTrue(can_login(self.server, "newbie", "s3cret!"))

    def test_data_form_submission(self) -> None:
        """A submitted jabber:iq:register form works like the plain fields."""
        form = ("<x xmlns='jabber:x:data' type='submit'>"
                "<field var='FORM_TYPE'><value>jabber:iq:register</value></field>"
                "<field var='username'><value>former</value></field>"
                "<field var='password'><value>formed</value></field></x>")
        self.assertEqual(self.client.iq("set", query(extra=form)).get("type"), "result")
        self.assertTrue(can_login(self.server, "former", "formed"))

    def test_username_taken(self) -> None:
        """An existing name, in any case: conflict, and no password echoed."""
        for i, name in enumerate(("alice", "ALICE")):
            client = Unauthenticated(self.server)
            client.open()
            reply = client.iq("set", query(name, "stolen"), f"c{i}")
            self.assertEqual(condition(reply), "conflict")
            self.assertNotIn(b"stolen", etree.tostring(reply))
        self.assertTrue(can_login(self.server, "alice", "secret"))

    def test_bad_username(self) -> None:
        """Not a localpart (RFC 7622): jid-malformed."""
        for i, name in enumerate(("a b", "a@b", "x/y")):
            client = Unauthenticated(self.server)
            client.open()
            self.assertEqual(condition(client.iq("set", query(name, "pw"), f"b{i}")),
                             "jid-malformed")

    def test_missing_information(self) -> None:
        """No username or an empty password: not-acceptable."""
        self.assertEqual(condition(self.client.iq("set", query("nopw", ""))), "not-acceptable")
        self.assertEqual(condition(self.client.iq("set", query(None, "pw"), "r2")),
                         "not-acceptable")
        self.assertFalse(self.server.accounts.store.exists("nopw", "localhost"))

    def test_unusable_password(self) -> None:
        """A password SASLprep refuses (a private-use character): not-acceptable."""
        reply = self.client.iq("set", query("ctl", "a&#xE000;b"))
        self.assertEqual(condition(reply), "not-acceptable")
        self.assertFalse(self.server.accounts.store.exists("ctl", "localhost"))

    def test_one_account_per_stream(self) -> None:
        self.client.iq("set", query("first", "pw"))
        reply = self.client.iq("set", query("second", "pw"), "r2")
        self.assertEqual(condition(reply), "not-acceptable")
        self.assertFalse(self.server.accounts.store.exists("second", "localhost"))

    def test_remove_before_auth(self) -> None:
        reply = self.client.iq("set", f"<query xmlns='{REG}'><remove/></query>")
        self.assertEqual(condition(reply), "unexpected-request")

    def test_other_iq_still_not_authorized(self) -> None:
        self.client.send("<iq type='get' id='x' to='localhost'>"
                         "<ping xmlns='urn:xmpp:ping'/></iq>")
        self.assertIsNotNone(self.client.read()[0].find(f"{STREAM}not-authorized"))

    def test_limit_per_address(self) -> None:
        """registrations_per_ip attempts per window and address, then
        resource-constraint until the window has passed; other addresses
        are not affected."""
        for i in range(3):
            client = Unauthenticated(self.server)
            client.open()
            self.assertEqual(client.iq("set", query(f"user{i}", "pw")).get("type"), "result")
        client = Unauthenticated(self.server)
        client.open()
        self.assertEqual(condition(client.iq("set", query("user3", "pw"))),
                         "resource-constraint")
        other = Unauthenticated(self.server, host="192.0.2.7")
        other.open()
        self.assertEqual(other.iq("set", query("elsewhere", "pw")).get("type"), "result")
        self.clock.advance(100)
        again = Unauthenticated(self.server)
        again.open()
        self.assertEqual(again.iq("set", query("user3", "pw")).get("type"), "result")


class AccountManagementTests(ImFixture):
    """Password change and removal by the user, registration off (default)."""

    def setUp(self) -> None:
        # rosters in the accounts' database, as in a real deployment
        tmp = Path(self.mktemp())
        tmp.mkdir(parents=True)
        self.im = SqliteImStore(tmp / "db.sqlite3")
        self.addCleanup(self.im.close)
        self.server, self.clock = make_server(str(tmp), im_store=self.im)
        self.server.accounts.add("carol@localhost", "carol-pw")
        self.alice = self.client("alice", "secret", "phone")
        self.bob = self.client("bob", "hunter2", "laptop")
        self.removed: list[AccountEvent] = []
        self.server.bus.hook("account/removed", self.removed.append)

    def iq(self, client: Client, type_: str, payload: str, to: str | None = "localhost",
           id_: str = "m1") -> etree._Element:
        to_attr = "" if to is None else f" to='{to}'"
        client.send(f"<iq type='{type_}' id='{id_}'{to_attr}>{payload}</iq>")
        return of(client.read(), "iq", id=id_)[0]

    def test_registered_fields(self) -> None:
        """A get from an authenticated user: registered, with the username."""
        q = self.iq(self.alice, "get", query()).find(f"{R}query")
        self.assertIsNotNone(q.find(f"{R}registered"))
        self.assertEqual(q.findtext(f"{R}username"), "alice")

    def test_change_password(self) -> None:
        """Works with registration off; to the domain or without 'to'."""
        self.assertEqual(self.iq(self.alice, "set", query("alice", "n3w")).get("type"), "result")
        self.assertTrue(can_login(self.server, "alice", "n3w"))
        self.assertFalse(can_login(self.server, "alice", "secret"))
        reply = self.iq(self.alice, "set", query("alice", "newer"), to=None, id_="m2")
        self.assertEqual(reply.get("type"), "result")
        self.assertTrue(can_login(self.server, "alice", "newer"))

    def test_change_password_errors(self) -> None:
        """Another user's name: bad-request; an empty password keeps the old one."""
        reply = self.iq(self.alice, "set", query("bob", "owned"))
        self.assertEqual(condition(reply), "bad-request")
        self.assertNotIn(b"owned", etree.tostring(reply))
        self.assertEqual(condition(self.iq(self.alice, "set", query("alice", ""), id_="m2")),
                         "bad-request")
        self.assertTrue(can_login(self.server, "bob", "hunter2"))
        self.assertTrue(can_login(self.server, "alice", "secret"))

    def test_not_to_someone_elses_account(self) -> None:
        """jabber:iq:register to another user's bare JID is not handled for them."""
        reply = self.iq(self.alice, "set", query("bob", "owned"), to="bob@localhost")
        self.assertEqual(condition(reply), "service-unavailable")
        self.assertTrue(can_login(self.server, "bob", "hunter2"))

    def test_remove_must_be_alone(self) -> None:
        reply = self.iq(self.alice, "set", f"<query xmlns='{REG}'><remove/><username>alice"
                        "</username></query>")
        self.assertEqual(condition(reply), "bad-request")
        self.assertTrue(self.server.accounts.store.exists("alice", "localhost"))

    def test_remove_account(self) -> None:
        """<remove/>: result, the account and its data gone, an
        account/removed event, subscriptions cancelled, every stream of
        the user closed with not-authorized."""
        self.subscribe_both()
        self.alice.available()
        self.bob.available()
        tablet = self.client("alice", "secret", "tablet")
        self.roster(self.bob)  # bob's client gets roster pushes
        for c in (self.alice, self.bob, tablet):
            c.read()
        self.server.im_store.store_message("alice", "localhost", 1.0, b"<message/>", 0)
        self.assertIsNotNone(self.server.rosters.cached(self.alice.stream.jid.bare))

        self.alice.send(f"<iq type='set' id='rm'><query xmlns='{REG}'><remove/></query></iq>")
        got = self.alice.read()
        self.assertEqual(of(got, "iq", id="rm")[0].get("type"), "result")
        self.assertIsNotNone(got[-1].find(f"{STREAM}not-authorized"))
        self.assertIsNotNone(tablet.read()[-1].find(f"{STREAM}not-authorized"))
        self.assertFalse(self.server.accounts.store.exists("alice", "localhost"))
        self.assertEqual(self.im.roster("alice", "localhost"), (0, []))
        self.assertEqual(self.im.count_messages("alice", "localhost"), 0)
        self.assertEqual([(e.localpart, e.domain) for e in self.removed],
                         [("alice", "localhost")])
        self.assertIsNone(self.server.rosters.cached(self.alice.stream.jid.bare))
        self.assertEqual(self.server.registry.resources(self.alice.stream.jid.bare), [])

        # bob saw alice go and lost both subscriptions
        seen = self.bob.read()
        self.assertTrue(of(seen, "presence", type="unavailable", **{"from": "alice@localhost/phone"}))
        _, bob_items = self.im.roster("bob", "localhost")
        self.assertEqual([(i.contact, i.subscription) for i in bob_items],
                         [("alice@localhost", "none")])
        pushes = [items(e) for e in of(seen, "iq", type="set")]
        self.assertEqual(pushes[-1]["alice@localhost"]["subscription"], "none")

        # the closing streams leave no presence or last activity behind
        self.alice.stream.connectionLost(None)
        tablet.stream.connectionLost(None)
        self.assertEqual(self.bob.read(), [])
        self.assertIsNone(self.im.last_logout("alice", "localhost"))
        self.assertFalse(can_login(self.server, "alice", "secret"))
