"""XEP-0191 Blocking Command: the blocklist protocol, pushes, errors, the
limit, and the effect on stanzas both ways and on presence."""

from __future__ import annotations

from typing import Any

from lxml import etree

from convergence.xmpp.im.blocking import matches
from convergence.xmpp.jid import JID
from tests.imhelpers import ImFixture, of
from tests.xmpphelpers import Client, make_server

BLOCKING = "urn:xmpp:blocking"
ERRORS = "{urn:ietf:params:xml:ns:xmpp-stanzas}"


def block(*jids: str, id_: str = "b1") -> str:
    items = "".join(f"<item jid='{j}'/>" for j in jids)
    return f"<iq type='set' id='{id_}'><block xmlns='{BLOCKING}'>{items}</block></iq>"


def unblock(*jids: str, id_: str = "u1") -> str:
    items = "".join(f"<item jid='{j}'/>" for j in jids)
    return f"<iq type='set' id='{id_}'><unblock xmlns='{BLOCKING}'>{items}</unblock></iq>"


def condition(stanza: etree._Element) -> str | None:
    error = stanza.find("{jabber:client}error")
    if error is None:
        return None
    for child in error:
        if child.tag.startswith(ERRORS) and not child.tag.endswith("text"):
            return etree.QName(child).localname
    return None


class MatchTests(ImFixture):
    def test_xep_0016_matching(self) -> None:
        items = frozenset(("bob@a", "c@b/r", "evil.example", "d/r"))
        yes = ["bob@a", "bob@a/x", "c@b/r", "evil.example", "x@evil.example/y", "d/r"]
        no = ["carl@a", "c@b", "c@b/other", "a", "d", "x@d/r", "sub.evil.example"]
        for jid in yes:
            self.assertTrue(matches(items, JID.parse(jid)), jid)
        for jid in no:
            self.assertFalse(matches(items, JID.parse(jid)), jid)


class BlockingFixture(ImFixture):
    def setUp(self) -> None:
        super().setUp()
        self.subscribe_both()
        self.alice.available()
        self.bob.available()
        self.alice.read()
        self.bob.read()

    def blocklist(self, client: Client) -> list[str]:
        client.send(f"<iq type='get' id='g1'><blocklist xmlns='{BLOCKING}'/></iq>")
        [result] = of(client.read(), "iq", id="g1")
        self.assertEqual(result.get("type"), "result")
        return [i.get("jid") for i in result.iter(f"{{{BLOCKING}}}item")]

    def do(self, client: Client, request: str, id_: str) -> etree._Element:
        client.send(request)
        got = client.read()
        [answer] = of(got, "iq", id=id_)
        self.rest = [e for e in got if e is not answer]
        return answer


class ProtocolTests(BlockingFixture):
    def test_block_get_unblock_stored(self) -> None:
        self.assertEqual(self.blocklist(self.alice), [])
        self.assertEqual(self.do(self.alice, block("bob@localhost", "Evil.Example"), "b1")
                         .get("type"), "result")
        self.assertEqual(self.blocklist(self.alice), ["bob@localhost", "evil.example"])
        store = self.server.im_store
        self.assertEqual(store.blocklist("alice", "localhost"),
                         ["bob@localhost", "evil.example"])
        self.assertEqual(self.do(self.alice, unblock("evil.example"), "u1").get("type"),
                         "result")
        self.assertEqual(store.blocklist("alice", "localhost"), ["bob@localhost"])
        self.assertEqual(self.do(self.alice, unblock(), "u1").get("type"), "result")
        self.assertEqual(store.blocklist("alice", "localhost"), [])
        self.assertEqual(self.blocklist(self.alice), [])

    def test_pushes_to_interested_resources_only(self) -> None:
        laptop = self.client("alice", "secret", "laptop")
        tablet = self.client("alice", "secret", "tablet")
        self.blocklist(laptop)
        self.blocklist(self.alice)
        self.do(self.alice, block("carol@localhost"), "b1")
        pushes = [e for e in self.rest if e.get("type") == "set"]
        self.assertEqual(len(pushes), 1)  # the requester asked too
        [push] = of(laptop.read(), "iq", type="set")
        self.assertEqual(push.get("from"), "alice@localhost")
        self.assertEqual([i.get("jid") for i in push.iter(f"{{{BLOCKING}}}item")],
                         ["carol@localhost"])
        self.assertEqual(push[0].tag, f"{{{BLOCKING}}}block")
        self.assertEqual(of(tablet.read(), "iq"), [])
        self.do(self.alice, unblock(), "u1")
        [push] = of(laptop.read(), "iq", type="set")
        self.assertEqual(push[0].tag, f"{{{BLOCKING}}}unblock")
        self.assertEqual(len(push[0]), 0)

    def test_malformed_jid(self) -> None:
        answer = self.do(self.alice, block("bob@localhost", "@bad@"), "b1")
        self.assertEqual(condition(answer), "jid-malformed")
        self.assertEqual(self.server.im_store.blocklist("alice", "localhost"), [])
        answer = self.do(self.alice, f"<iq type='set' id='b2'><block xmlns='{BLOCKING}'>"
                         "<item/></block></iq>", "b2")
        self.assertEqual(condition(answer), "jid-malformed")

    def test_block_without_items_bad_request(self) -> None:
        answer = self.do(self.alice, block(), "b1")
        self.assertEqual(condition(answer), "bad-request")

    def test_other_account_forbidden(self) -> None:
        answer = self.do(self.bob, f"<iq type='get' id='g' to='alice@localhost'>"
                         f"<blocklist xmlns='{BLOCKING}'/></iq>", "g")
        self.assertEqual(condition(answer), "forbidden")
        answer = self.do(self.bob, f"<iq type='set' id='s' to='alice@localhost'>"
                         f"<block xmlns='{BLOCKING}'><item jid='x@y'/></block></iq>", "s")
        self.assertEqual(condition(answer), "forbidden")
        self.assertEqual(self.server.im_store.blocklist("alice", "localhost"), [])

    def test_limit(self) -> None:
        server, _ = make_server(self.mktemp(), max_blocklist_items=2)
        client = Client(server)
        client.login()
        client.send(block("a@x", "b@x", "c@x"))
        [answer] = of(client.read(), "iq", id="b1")
        self.assertEqual(condition(answer), "policy-violation")
        client.send(block("a@x", "b@x"))
        self.assertEqual(of(client.read(), "iq", id="b1")[0].get("type"), "result")
        client.send(block("a@x"))  # already there: still two
        self.assertEqual(of(client.read(), "iq", id="b1")[0].get("type"), "result")
        client.send(block("c@x"))
        self.assertEqual(condition(of(client.read(), "iq", id="b1")[0]), "policy-violation")
        self.assertEqual(server.im_store.blocklist("alice", "localhost"), ["a@x", "b@x"])

    def test_disco(self) -> None:
        answer = self.do(self.alice, "<iq type='get' id='d' to='localhost'>"
                         "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>", "d")
        self.assertIn(BLOCKING, [f.get("var") for f in answer.iter("{*}feature")])

    def test_account_delete_removes_blocklist(self) -> None:
        from convergence.store.sqlite import SqliteAccountStore
        from convergence.store.sqlite_im import SqliteImStore
        path = self.mktemp() + ".sqlite3"
        im = SqliteImStore(path)
        accounts = SqliteAccountStore(path)
        self.addCleanup(im.close)
        self.addCleanup(accounts.close)
        accounts.create("alice", "localhost", {})
        im.block("alice", "localhost", ["bob@localhost"], 10)
        accounts.delete("alice", "localhost")
        self.assertEqual(im.blocklist("alice", "localhost"), [])


class EffectTests(BlockingFixture):
    def test_block_sends_unavailable_and_stops_everything(self) -> None:
        self.do(self.alice, block("bob@localhost"), "b1")
        [unavailable] = of(self.bob.read(), "presence")
        self.assertEqual(unavailable.get("type"), "unavailable")
        self.assertEqual(unavailable.get("from"), "alice@localhost/phone")
        # bob's message and presence are dropped, his iq answered
        self.bob.send("<message to='alice@localhost' type='chat'><body>hey</body></message>")
        self.bob.send("<presence><show>away</show></presence>")
        self.bob.send("<iq type='get' id='v' to='alice@localhost/phone'>"
                      "<query xmlns='jabber:iq:version'/></iq>")
        self.assertEqual(self.alice.read(), [])
        [error] = of(self.bob.read(), "iq", id="v")
        self.assertEqual(condition(error), "service-unavailable")
        # alice's presence no longer reaches bob
        self.alice.send("<presence><show>dnd</show></presence>")
        self.assertEqual(of(self.bob.read(), "presence"), [])

    def test_outbound_not_acceptable_with_blocked(self) -> None:
        self.do(self.alice, block("bob@localhost"), "b1")
        self.bob.read()
        self.alice.send("<message to='bob@localhost/laptop' type='chat' id='m'><body>x</body></message>")
        [error] = of(self.alice.read(), "message")
        self.assertEqual(error.get("type"), "error")
        self.assertEqual(error.get("id"), "m")
        self.assertEqual(condition(error), "not-acceptable")
        self.assertEqual(error.find("{jabber:client}error").get("type"), "cancel")
        self.assertIsNotNone(error.find("{jabber:client}error/{urn:xmpp:blocking:errors}blocked"))
        self.alice.send("<presence to='bob@localhost' type='subscribe'/>")
        [error] = of(self.alice.read(), "presence")
        self.assertEqual(condition(error), "not-acceptable")
        self.assertEqual(self.bob.read(), [])

    def test_unblock_restores_presence_both_ways(self) -> None:
        self.do(self.alice, block("bob@localhost"), "b1")
        self.bob.read()
        self.do(self.alice, unblock("bob@localhost"), "u1")
        # bob sees alice again, and alice gets bob's presence (probe)
        [available] = of(self.bob.read(), "presence")
        self.assertIsNone(available.get("type"))
        self.assertEqual(available.get("from"), "alice@localhost/phone")
        self.assertEqual([p.get("from") for p in of(self.rest, "presence")],
                         ["bob@localhost/laptop"])
        self.bob.send("<message to='alice@localhost' type='chat'><body>back</body></message>")
        self.assertEqual(len(of(self.alice.read(), "message")), 1)

    def test_domain_and_full_jid_items(self) -> None:
        self.do(self.alice, block("localhost/other"), "b1")
        self.bob.send("<message to='alice@localhost' type='chat'><body>1</body></message>")
        self.assertEqual(len(of(self.alice.read(), "message")), 1)
        self.do(self.bob, block("alice@localhost/tablet"), "b1")
        tablet = self.client("alice", "secret", "tablet")
        tablet.send("<message to='bob@localhost' type='chat'><body>t</body></message>")
        self.alice.send("<message to='bob@localhost' type='chat'><body>p</body></message>")
        self.assertEqual([m.findtext("{jabber:client}body")
                          for m in of(self.bob.read(), "message")], ["p"])
        self.do(self.bob, block("localhost", id_="b2"), "b2")
        self.alice.send("<message to='bob@localhost' type='chat'><body>p</body></message>")
        self.assertEqual(of(self.bob.read(), "message"), [])

    def test_offline_messages_from_blocked_not_stored(self) -> None:
        """The blocklist of an offline user is loaded for the stanza."""
        carol = self.client("carol", "carol-pw", "pc")
        carol.send(block("bob@localhost"))
        carol.read()
        carol.stream.connectionLost(None)
        self.assertNotIn(JID.parse("carol@localhost"), self.server.blocking._cache)
        self.bob.send("<message to='carol@localhost' type='chat'><body>x</body></message>")
        self.alice.send("<message to='carol@localhost' type='chat'><body>y</body></message>")
        stored = self.server.im_store.messages("carol", "localhost", 10)
        self.assertEqual([etree.fromstring(m.stanza).findtext("{jabber:client}body")
                          for m in stored], ["y"])
        self.assertNotIn(JID.parse("carol@localhost"), self.server.blocking._cache)
        self.assertEqual(of(self.bob.read(), "message"), [])  # dropped silently


class DelayedLoadTests(ImFixture):
    def test_stanzas_wait_for_the_blocklist(self) -> None:
        """With a database that answers later, stanzas to a user whose
        blocklist is not loaded wait for it, in order, then go on."""
        from twisted.internet.defer import Deferred

        pending: list[tuple[Deferred, object]] = []
        real = self.server.run_in_db

        def later(f, *args):
            if f.__name__ == "blocklist":
                d: Deferred = Deferred()
                pending.append((d, lambda: f(*args)))
                return d
            return real(f, *args)

        self.server.blocking.run_in_db = later
        self.server.im_store.block("carol", "localhost", ["bob@localhost"], 10)
        self.bob.send("<message to='carol@localhost' type='chat'><body>x</body></message>")
        self.alice.send("<message to='carol@localhost' type='chat'><body>y</body></message>")
        self.assertEqual(self.server.im_store.messages("carol", "localhost", 10), [])
        self.assertEqual(len(pending), 1)
        d, call = pending.pop()
        d.callback(call())
        stored = self.server.im_store.messages("carol", "localhost", 10)
        self.assertEqual([etree.fromstring(m.stanza).findtext("{jabber:client}body")
                          for m in stored], ["y"])


class SenderGoneTests(ImFixture):
    def test_sender_leaves_while_lists_load(self) -> None:
        """A sender who disconnects while its messages wait for an offline
        recipient's blocklist: the messages are still stored, once each,
        and loading ends (each list is loaded a bounded number of times)."""
        from twisted.internet.defer import Deferred

        pending: list[tuple[Deferred, Any, tuple]] = []

        def later(f, *args):
            d: Deferred = Deferred()
            pending.append((d, f, args))
            return d

        self.server.blocking.run_in_db = later
        self.alice.stream.connectionLost(None)  # alice's list is forgotten …
        for n in range(3):  # … while her last messages are still routed
            self.server.router.route(etree.fromstring(
                "<message xmlns='jabber:client' from='alice@localhost/phone'"
                f" to='carol@localhost' type='chat'><body>{n}</body></message>"),
                self.alice.stream)
        loads = 0
        while pending and loads < 20:
            d, f, args = pending.pop(0)
            loads += 1
            d.callback(f(*args))
        self.assertEqual(pending, [])
        self.assertLessEqual(loads, 2)
        stored = self.server.im_store.messages("carol", "localhost", 10)
        self.assertEqual([etree.fromstring(m.stanza).findtext("{jabber:client}body")
                          for m in stored], ["0", "1", "2"])
        self.assertEqual(self.server.blocking._cache, {JID.parse("bob@localhost"): frozenset()})


class ApplicationTests(ImFixture):
    def setUp(self) -> None:
        from convergence.xmpp.servlet import XmppServlet
        from tests.xmpphelpers import make_app

        class Echo(XmppServlet):
            def do_message(self, request):
                reply = request.create_response()
                etree.SubElement(reply.stanza, "{jabber:client}body").text = request.body
                reply.send()

        self.server, self.clock = make_server(
            self.mktemp(), (make_app("echo", Echo(), ("bot@localhost",)),))
        self.alice = self.client("alice", "secret", "phone")
        self.loads: list[str] = []
        store = self.server.im_store
        real = store.blocklist

        def counted(localpart: str, domain: str) -> list[str]:
            self.loads.append(f"{localpart}@{domain}")
            return real(localpart, domain)

        store.blocklist = counted  # type: ignore[method-assign]

    def test_app_addresses_have_no_blocklist(self) -> None:
        """Messages to an application never load a blocklist for it."""
        for _ in range(3):
            self.alice.send("<message to='bot@localhost' type='chat'><body>hi</body></message>")
            [reply] = of(self.alice.read(), "message")
            self.assertEqual(reply.findtext("{jabber:client}body"), "hi")
        self.assertEqual(self.loads, [])

    def test_user_blocks_an_application(self) -> None:
        """A user can block an application's address: nothing reaches it."""
        self.alice.send(block("bot@localhost"))
        self.alice.read()
        self.alice.send("<message to='bot@localhost' type='chat'><body>hi</body></message>")
        [error] = of(self.alice.read(), "message")
        self.assertEqual(condition(error), "not-acceptable")
        self.assertEqual(self.server.container.sessions.sessions("echo"), [])

    def test_presence_for_an_offline_user_loads_nothing(self) -> None:
        """Presence the server sends from a user (or app) with no bound
        resource answers a stanza checked on its way in: no load."""
        from convergence.xmpp.im.presence import presence

        self.server.router.route(presence("carol@localhost", "alice@localhost", "unsubscribed"))
        self.server.router.route(presence("bot@localhost", "alice@localhost/phone"))
        self.assertEqual(self.loads, [])
        self.assertEqual(len(of(self.alice.read(), "presence")), 1)
