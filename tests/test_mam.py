"""
XEP-0313 Message Archive Management on StringTransport: what is archived,
stanza-ids, paging with RSM, the query form and its filters, errors,
preferences, retention on the server clock, no access across users.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from lxml import etree
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from convergence.config import ConfigError, load_config
from convergence.store.interfaces import (
    ArchivedMessage,
    ArchivePrefs,
    ArchiveQuery,
    IArchiveStore,
)
from convergence.store.sqlite import SqliteAccountStore
from convergence.store.sqlite_mam import SqliteArchiveStore
from convergence.xmpp.im.offline import stamp
from tests.imhelpers import ImFixture, of
from tests.xmpphelpers import Client, make_server

MAM = "urn:xmpp:mam:2"
SID = "urn:xmpp:sid:0"
RSM = "http://jabber.org/protocol/rsm"
DATA = "jabber:x:data"
FWD = "urn:xmpp:forward:0"
DAY = 86400.0


def stanza_ids(message: etree._Element) -> list[tuple[str, str]]:
    return [(s.get("by"), s.get("id")) for s in message.iter(f"{{{SID}}}stanza-id")]


def form(**fields: Any) -> str:
    """A submitted query form; a list value gives several <value/>s."""
    out = [(f"<x xmlns='{DATA}' type='submit'><field var='FORM_TYPE' type='hidden'>"
            f"<value>{MAM}</value></field>")]
    for var, value in fields.items():
        values = value if isinstance(value, list) else [value]
        out.append(f"<field var='{var.replace('_', '-')}'>"
                   + "".join(f"<value>{v}</value>" for v in values) + "</field>")
    out.append("</x>")
    return "".join(out)


def rsm(max_: int | None = None, after: str | None = None, before: str | None = None,
        index: int | None = None) -> str:
    parts = []
    if max_ is not None:
        parts.append(f"<max>{max_}</max>")
    if after is not None:
        parts.append(f"<after>{after}</after>")
    if before is not None:
        parts.append(f"<before>{before}</before>" if before else "<before/>")
    if index is not None:
        parts.append(f"<index>{index}</index>")
    return f"<set xmlns='{RSM}'>{''.join(parts)}</set>"


class Page:
    """What one query brought: the results, then the iq."""

    def __init__(self, elements: list[etree._Element], iq_id: str) -> None:
        self.results = [e for e in elements if e.find(f"{{{MAM}}}result") is not None]
        iqs = of(elements, "iq", id=iq_id)
        assert len(iqs) == 1, [etree.tostring(e) for e in elements]
        self.iq = iqs[0]
        self.fin = self.iq.find(f"{{{MAM}}}fin")

    @property
    def error(self) -> str | None:
        if self.iq.get("type") != "error":
            return None
        return etree.QName(self.iq.find("{jabber:client}error")[0]).localname

    @property
    def ids(self) -> list[str]:
        return [r.find(f"{{{MAM}}}result").get("id") for r in self.results]

    @property
    def bodies(self) -> list[str]:
        return [r.findtext(f".//{{{FWD}}}forwarded/{{jabber:client}}message/"
                           "{jabber:client}body") for r in self.results]

    @property
    def complete(self) -> str:
        return self.fin.get("complete")

    def rsm(self, name: str) -> str | None:
        return self.fin.findtext(f"{{{RSM}}}set/{{{RSM}}}{name}")

    @property
    def first_index(self) -> str | None:
        first = self.fin.find(f"{{{RSM}}}set/{{{RSM}}}first")
        return None if first is None else first.get("index")


class MamFixture(ImFixture):
    """alice and bob online and available; carol offline."""

    config: ClassVar[dict[str, Any]] = {}

    def setUp(self) -> None:
        self.server, self.clock = make_server(self.mktemp(), **self.config)
        self.clock.advance(1_700_000_000)
        self.server.accounts.add("carol@localhost", "carol-pw")
        self.alice = self.client("alice", "secret", "phone")
        self.bob = self.client("bob", "hunter2", "laptop")
        self.alice.available()
        self.bob.available()
        self.alice.read()
        self.bob.read()
        self.store = self.server.archive_store
        self.n = 0

    def chat(self, sender: Client, to: str, body: str | None = "hi", type_: str = "chat",
             extra: str = "") -> None:
        self.n += 1
        text = "" if body is None else f"<body>{body}</body>"
        attr = "" if type_ is None else f" type='{type_}'"
        sender.send(f"<message to='{to}'{attr} id='m{self.n}'>{text}{extra}</message>")

    def query(self, client: Client, inner: str = "", queryid: str = "q1",
              to: str | None = None, extra: str = "") -> Page:
        self.n += 1
        iq_id = f"iq{self.n}"
        to_attr = "" if to is None else f" to='{to}'"
        client.send(f"<iq type='set' id='{iq_id}'{to_attr}><query xmlns='{MAM}'"
                    f" queryid='{queryid}'>{inner}{extra}</query></iq>")
        return Page(client.read(), iq_id)

    def messages(self, client: Client) -> list[etree._Element]:
        return of(client.read(), "message")

    def archive(self, user: str) -> list[bytes]:
        page = self.store.find(user, "localhost", ArchiveQuery(limit=1000))
        return [m.stanza for m in page.messages]


class ArchivingTests(MamFixture):
    def test_blocked_messages_are_not_archived(self) -> None:
        """XEP-0191 and XEP-0313: a message bob's blocklist drops is not in
        his archive, and one alice may not send him is not in hers."""
        self.bob.send("<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'>"
                      "<item jid='alice@localhost'/></block></iq>")
        self.bob.read()
        self.chat(self.alice, "bob@localhost", "let me in")
        self.assertEqual(self.archive("bob"), [])
        self.chat(self.bob, "alice@localhost", "blocked by me")
        errors = of(self.bob.read(), "message", type="error")
        self.assertEqual(len(errors), 1)
        self.assertEqual(self.archive("bob"), [])
        self.assertEqual([b"let me in" in m for m in self.archive("alice")], [True])

    def test_chat_in_both_archives_with_stanza_id(self) -> None:
        """A chat from alice to bob is in alice's archive (outgoing) and in
        bob's (incoming); bob's live copy names the id of his archive."""
        self.chat(self.alice, "bob@localhost", "hello")
        got = self.messages(self.bob)
        self.assertEqual(len(got), 1)
        ids = stanza_ids(got[0])
        self.assertEqual([by for by, _ in ids], ["bob@localhost"])
        bob = self.query(self.bob)
        self.assertEqual(bob.ids, [ids[0][1]])
        self.assertEqual(bob.bodies, ["hello"])
        alice = self.query(self.alice)
        self.assertEqual(alice.bodies, ["hello"])
        self.assertNotEqual(alice.ids, bob.ids)
        forwarded = alice.results[0].find(f".//{{{FWD}}}forwarded")
        self.assertIsNotNone(forwarded.find("{urn:xmpp:delay}delay").get("stamp"))
        inner = forwarded.find("{jabber:client}message")
        self.assertEqual((inner.get("from"), inner.get("to")),
                         ("alice@localhost/phone", "bob@localhost"))
        self.assertEqual(alice.results[0].get("from"), "alice@localhost")
        self.assertEqual(alice.results[0].get("to"), "alice@localhost/phone")
        self.assertEqual(alice.results[0].find(f"{{{MAM}}}result").get("queryid"), "q1")

    def test_sent_carbon_names_the_senders_archive_id(self) -> None:
        """XEP-0313 with XEP-0280: the sent carbon's forwarded message
        carries the stanza-id alice's archive gave her copy, so her other
        client can match it with a later archive query."""
        laptop = self.client("alice", "secret", "laptop")
        laptop.available()
        for client in (self.alice, laptop):
            client.send("<iq type='set' id='c'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
            client.read()
        self.chat(self.alice, "bob@localhost", "synced")
        [carbon] = of(laptop.read(), "message")
        inner = carbon.find("{urn:xmpp:carbons:2}sent/{urn:xmpp:forward:0}forwarded"
                            "/{jabber:client}message")
        [(by, id_)] = stanza_ids(inner)
        self.assertEqual(by, "alice@localhost")
        self.assertEqual(self.query(self.alice).ids, [id_])
        # bob's copy names bob's archive only
        [(bob_by, bob_id)] = stanza_ids(self.messages(self.bob)[0])
        self.assertEqual(bob_by, "bob@localhost")
        self.assertNotEqual(bob_id, id_)

    def test_normal_with_body_and_chat_with_receipt_are_kept(self) -> None:
        self.chat(self.alice, "bob@localhost", "plain", type_=None)
        self.chat(self.alice, "bob@localhost", None,
                  extra="<received xmlns='urn:xmpp:receipts' id='x'/>")
        self.chat(self.alice, "bob@localhost", None, type_="normal",
                  extra="<store xmlns='urn:xmpp:hints'/><x xmlns='jabber:x:oob'/>")
        self.assertEqual(len(self.archive("bob")), 3)
        self.assertEqual(len(self.archive("alice")), 3)

    def test_not_archived(self) -> None:
        """Headline, error, groupchat, no-store hints, chat states alone, a
        normal message without body and Carbons copies stay out."""
        hints = "urn:xmpp:hints"
        self.chat(self.alice, "bob@localhost", "news", type_="headline")
        self.chat(self.alice, "bob@localhost/laptop", "oops", type_="error")
        self.chat(self.alice, "bob@localhost", "room", type_="groupchat")
        self.chat(self.alice, "bob@localhost", "secret", extra=f"<no-store xmlns='{hints}'/>")
        self.chat(self.alice, "bob@localhost", "secret",
                  extra=f"<no-permanent-store xmlns='{hints}'/>")
        self.chat(self.alice, "bob@localhost", None,
                  extra="<composing xmlns='http://jabber.org/protocol/chatstates'/>")
        self.chat(self.alice, "bob@localhost", None, type_="normal",
                  extra="<x xmlns='jabber:x:oob'/>")
        self.chat(self.alice, "bob@localhost", None, extra=(
            "<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
            "<message xmlns='jabber:client' type='chat'><body>c</body></message>"
            "</forwarded></received>"))
        for message in self.messages(self.bob):
            self.assertEqual(stanza_ids(message), [])
        self.assertEqual(self.archive("alice"), [])
        self.assertEqual(self.archive("bob"), [])

    def test_chat_states_left_out_of_the_archived_copy(self) -> None:
        self.chat(self.alice, "bob@localhost", "typed",
                  extra="<active xmlns='http://jabber.org/protocol/chatstates'/>")
        (stored,) = self.archive("bob")
        self.assertNotIn(b"chatstates", stored)
        self.assertIn(b"typed", stored)

    def test_spoofed_stanza_ids_removed_others_kept(self) -> None:
        """stanza-ids by the recipient's or the sender's account are the
        server's to write; a room's, and origin-id, are kept."""
        self.chat(self.alice, "bob@localhost", "x", extra=(
            f"<stanza-id xmlns='{SID}' by='Bob@localhost' id='fake'/>"
            f"<stanza-id xmlns='{SID}' by='alice@localhost' id='mine'/>"
            f"<stanza-id xmlns='{SID}' by='room@muc.example' id='room1'/>"
            f"<origin-id xmlns='{SID}' id='o1'/>"))
        (message,) = self.messages(self.bob)
        self.assertEqual(sorted(by for by, _ in stanza_ids(message)),
                         ["bob@localhost", "room@muc.example"])
        ids = dict(stanza_ids(message))
        self.assertNotEqual(ids["bob@localhost"], "fake")
        self.assertEqual(message.find(f"{{{SID}}}origin-id").get("id"), "o1")
        self.assertEqual(self.query(self.bob).ids, [ids["bob@localhost"]])
        (stored,) = self.archive("alice")
        self.assertNotIn(b"mine", stored)

    def test_spoofed_stanza_id_stripped_even_when_not_archived(self) -> None:
        self.chat(self.alice, "bob@localhost", "n", type_="headline",
                  extra=f"<stanza-id xmlns='{SID}' by='bob@localhost' id='fake'/>")
        (message,) = self.messages(self.bob)
        self.assertEqual(stanza_ids(message), [])

    def test_offline_recipient_archive_and_stored_copy_share_the_id(self) -> None:
        """A message to carol, offline, goes into her archive; the copy
        offline storage delivers later names the same id."""
        self.chat(self.alice, "carol@localhost", "while you were out")
        self.assertEqual(len(self.archive("carol")), 1)
        carol = self.client("carol", "carol-pw", "desk")
        delivered = [m for m in carol.available() if etree.QName(m).localname == "message"]
        self.assertEqual(len(delivered), 1)
        ((by, id_),) = stanza_ids(delivered[0])
        self.assertEqual(by, "carol@localhost")
        page = self.query(carol)
        self.assertEqual(page.ids, [id_])
        self.assertEqual(page.bodies, ["while you were out"])

    def test_bound_but_unavailable_recipient_archived_once(self) -> None:
        """carol bound without presence: the message goes to offline storage
        after being archived in pre-stanza; it is archived once."""
        silent = self.client("carol", "carol-pw", "silent")  # bound, no presence
        self.chat(self.alice, "carol@localhost", "once")
        self.assertEqual(len(self.archive("carol")), 1)
        self.assertEqual(self.server.im_store.count_messages("carol", "localhost"), 1)
        self.assertEqual(silent.read(), [])

    def test_unknown_recipient_has_no_archive(self) -> None:
        self.chat(self.alice, "nobody@localhost", "anyone?")
        errors = of(self.alice.read(), "message", type="error")
        self.assertEqual(len(errors), 1)
        self.assertEqual(self.archive("nobody"), [])
        self.assertEqual(len(self.archive("alice")), 1)

    def test_message_to_oneself_archived_once(self) -> None:
        self.chat(self.alice, "alice@localhost", "note to self")
        self.chat(self.alice, "bob@localhost", "to bob")
        page = self.query(self.alice)
        self.assertEqual(page.bodies, ["note to self", "to bob"])
        # with = one's own JID: only the messages to oneself (4.1.1)
        page = self.query(self.alice, form(**{"with": "alice@localhost"}))
        self.assertEqual(page.bodies, ["note to self"])

    def test_routed_again_is_not_archived_again(self) -> None:
        """A message the server routes a second time (origin None) with an
        id it issued keeps that id and is not archived twice."""
        self.chat(self.alice, "bob@localhost", "once")
        (message,) = self.messages(self.bob)
        self.server.router.route(message)
        (again,) = self.messages(self.bob)
        self.assertEqual(stanza_ids(again), stanza_ids(message))
        self.assertEqual(len(self.archive("bob")), 1)

    def test_delivery_does_not_wait_for_the_archive(self) -> None:
        """With the database thread busy, the message is delivered at once
        and written later."""
        queued: list[tuple[Any, tuple]] = []

        def later(f: Any, *args: Any) -> Deferred:
            d: Deferred = Deferred()
            queued.append((lambda: d.callback(f(*args)), args))
            return d

        self.server.run_in_db = later
        self.chat(self.alice, "bob@localhost", "fast")
        self.assertEqual(len(self.messages(self.bob)), 1)
        self.assertEqual(self.archive("bob"), [])
        for run, _ in queued:
            run()
        self.assertEqual(len(self.archive("bob")), 1)

    def test_held_until_prefs_loaded_in_order(self) -> None:
        """When the recipient's preferences are not in memory yet, its
        messages wait for them, in order, then go on."""
        queued: list[Any] = []

        def later(f: Any, *args: Any) -> Deferred:
            d: Deferred = Deferred()
            queued.append(lambda: d.callback(f(*args)))
            return d

        archiver = self.server.mam.archiver
        archiver._contexts.clear()
        original = self.server.run_in_db
        self.server.run_in_db = later
        self.chat(self.alice, "bob@localhost", "one")
        self.chat(self.alice, "bob@localhost", "two")
        self.assertEqual(self.messages(self.bob), [])
        while queued:
            queued.pop(0)()
        self.server.run_in_db = original
        got = self.messages(self.bob)
        self.assertEqual([m.findtext("{jabber:client}body") for m in got], ["one", "two"])
        self.assertEqual(self.query(self.bob).ids, [stanza_ids(m)[0][1] for m in got])


    def test_outgoing_not_held_for_the_senders_prefs(self) -> None:
        """The sender's preferences not in memory: the message goes on at
        once, its outgoing copy is written once they are, in order."""
        queued: list[Any] = []

        def later(f: Any, *args: Any) -> Deferred:
            d: Deferred = Deferred()
            queued.append(lambda: d.callback(f(*args)))
            return d

        archiver = self.server.mam.archiver
        del archiver._contexts[self.alice.stream.jid.bare]
        original = self.server.run_in_db
        self.server.run_in_db = later
        self.chat(self.alice, "bob@localhost", "one")
        self.chat(self.alice, "bob@localhost", "two")
        got = self.messages(self.bob)
        self.assertEqual([m.findtext("{jabber:client}body") for m in got], ["one", "two"])
        self.assertTrue(all(stanza_ids(m) for m in got))
        while queued:
            queued.pop(0)()
        self.server.run_in_db = original
        self.assertEqual(self.query(self.alice).bodies, ["one", "two"])


class PagingTests(MamFixture):
    def setUp(self) -> None:
        super().setUp()
        for i in range(25):
            self.clock.advance(1)
            self.chat(self.alice if i % 2 == 0 else self.bob,
                      "bob@localhost" if i % 2 == 0 else "alice@localhost", f"m{i}")
        self.alice.read()
        self.bob.read()
        self.everything = self.query(self.alice, rsm(100))

    def test_everything_in_order(self) -> None:
        self.assertEqual(self.everything.bodies, [f"m{i}" for i in range(25)])
        self.assertEqual(self.everything.complete, "true")
        self.assertEqual(self.everything.rsm("count"), "25")
        self.assertEqual(len(set(self.everything.ids)), 25)

    def test_forward_pages(self) -> None:
        seen: list[str] = []
        after = None
        completes = []
        indexes = []
        while True:
            page = self.query(self.alice, rsm(10, after=after))
            seen += page.ids
            completes.append(page.complete)
            indexes.append(page.first_index)
            self.assertEqual(page.rsm("first"), page.ids[0])
            self.assertEqual(page.rsm("last"), page.ids[-1])
            self.assertEqual(page.rsm("count"), "25")
            if page.complete == "true":
                break
            after = page.rsm("last")
        self.assertEqual(seen, self.everything.ids)
        self.assertEqual(completes, ["false", "false", "true"])
        self.assertEqual(indexes, ["0", "10", "20"])

    def test_backward_pages_from_the_end(self) -> None:
        pages = []
        before = ""
        while True:
            page = self.query(self.alice, rsm(10, before=before))
            pages.append(page.ids)
            if page.complete == "true":
                break
            before = page.rsm("first")
        ids = self.everything.ids
        self.assertEqual(pages, [ids[15:], ids[5:15], ids[:5]])

    def test_index(self) -> None:
        page = self.query(self.alice, rsm(3, index=4))
        self.assertEqual(page.ids, self.everything.ids[4:7])
        self.assertEqual(page.first_index, "4")

    def test_max_zero_counts(self) -> None:
        page = self.query(self.alice, rsm(0))
        self.assertEqual(page.results, [])
        self.assertEqual(page.rsm("count"), "25")
        self.assertEqual(page.complete, "false")

    def test_flip_page(self) -> None:
        page = self.query(self.alice, rsm(5), extra=f"<flip-page xmlns='{MAM}'/>")
        self.assertEqual(page.ids, list(reversed(self.everything.ids[:5])))
        self.assertEqual(page.rsm("first"), self.everything.ids[0])

    def test_before_id_and_after_id(self) -> None:
        ids = self.everything.ids
        page = self.query(self.alice, form(after_id=ids[3], before_id=ids[8]))
        self.assertEqual(page.ids, ids[4:8])
        self.assertEqual(page.rsm("count"), "4")
        self.assertEqual(page.complete, "true")

    def test_ids_field(self) -> None:
        ids = self.everything.ids
        page = self.query(self.alice, form(ids=[ids[9], ids[2]]))
        self.assertEqual(page.ids, [ids[2], ids[9]])

    def test_with_filter(self) -> None:
        self.chat(self.alice, "carol@localhost", "to carol")
        page = self.query(self.alice, form(**{"with": "carol@localhost"}))
        self.assertEqual(page.bodies, ["to carol"])
        page = self.query(self.alice, form(**{"with": "bob@localhost"}) + rsm(100))
        self.assertEqual(len(page.ids), 25)

    def test_with_full_jid(self) -> None:
        page = self.query(self.alice, form(**{"with": "bob@localhost/laptop"}) + rsm(100))
        # incoming from bob/laptop only: the outgoing went to the bare JID
        self.assertEqual(page.bodies, [f"m{i}" for i in range(1, 25, 2)])

    def test_start_and_end(self) -> None:
        base = 1_700_000_000
        page = self.query(self.alice, form(start=stamp(base + 5), end=stamp(base + 9)))
        self.assertEqual(page.bodies, ["m4", "m5", "m6", "m7", "m8"])

    def test_default_page_size(self) -> None:
        page = self.query(self.alice)
        self.assertEqual(len(page.ids), 25)  # default 50


class PageLimitTests(MamFixture):
    config: ClassVar[dict[str, Any]] = {"mam_default_page_size": 4, "mam_max_page_size": 6}

    def test_default_and_clamped(self) -> None:
        for i in range(10):
            self.chat(self.alice, "bob@localhost", f"m{i}")
        self.assertEqual(len(self.query(self.alice).ids), 4)
        page = self.query(self.alice, rsm(1000))
        self.assertEqual(len(page.ids), 6)
        self.assertEqual(page.complete, "false")


class ErrorTests(MamFixture):
    def setUp(self) -> None:
        super().setUp()
        self.chat(self.alice, "bob@localhost", "one")

    def test_bad_form_type(self) -> None:
        inner = (f"<x xmlns='{DATA}' type='submit'><field var='FORM_TYPE'>"
                 "<value>urn:xmpp:mam:1</value></field></x>")
        self.assertEqual(self.query(self.alice, inner).error, "bad-request")

    def test_unknown_field(self) -> None:
        inner = form().replace("</x>", "<field var='{urn:example}free-text'>"
                                 "<value>milk</value></field></x>")
        self.assertEqual(self.query(self.alice, inner).error, "feature-not-implemented")

    def test_include_groupchat_understood(self) -> None:
        for value in ("true", "false"):
            page = self.query(self.alice, form(include_groupchat=value))
            self.assertEqual(page.bodies, ["one"])
        self.assertEqual(self.query(self.alice, form(include_groupchat="maybe")).error,
                         "bad-request")

    def test_bad_values(self) -> None:
        for inner in (form(start="yesterday"), form(end="2020-01-01"),
                      form(**{"with": "@@"}), form(start=["2020-01-01T00:00:00Z"] * 2),
                      f"<set xmlns='{RSM}'><max>ten</max></set>",
                      f"<set xmlns='{RSM}'><after/></set>"):
            self.assertEqual(self.query(self.alice, inner).error, "bad-request", inner)

    def test_unknown_ids(self) -> None:
        for inner in (rsm(10, after="nope"), rsm(10, before="nope"), form(after_id="nope"),
                      form(before_id="nope"), form(ids=["nope"])):
            page = self.query(self.alice, inner)
            self.assertEqual(page.error, "item-not-found", inner)
            self.assertEqual(page.results, [])

    def test_another_users_archive_is_forbidden(self) -> None:
        page = self.query(self.alice, to="bob@localhost")
        self.assertEqual(page.error, "forbidden")
        self.assertEqual(page.results, [])
        for payload in (f"<metadata xmlns='{MAM}'/>", f"<prefs xmlns='{MAM}'/>",
                        f"<query xmlns='{MAM}'/>"):
            self.alice.send(f"<iq type='get' id='g' to='bob@localhost'>{payload}</iq>")
            (iq,) = of(self.alice.read(), "iq", id="g")
            self.assertEqual(iq.get("type"), "error")
            self.assertIsNotNone(iq.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}forbidden"))

    def test_each_user_sees_only_their_own(self) -> None:
        self.chat(self.alice, "carol@localhost", "private")
        bob = self.query(self.bob)
        self.assertEqual(bob.bodies, ["one"])
        self.assertEqual(self.bob.read(), [])
        alice = self.query(self.alice, to="alice@localhost")
        self.assertEqual(alice.bodies, ["one", "private"])
        # bob cannot page through alice's archive with her ids
        page = self.query(self.bob, rsm(10, after=alice.ids[0]))
        self.assertEqual(page.error, "item-not-found")


class FormAndMetadataTests(MamFixture):
    def test_form_fields(self) -> None:
        self.alice.send(f"<iq type='get' id='f'><query xmlns='{MAM}'/></iq>")
        (iq,) = of(self.alice.read(), "iq", id="f")
        fields = {f.get("var"): f.get("type") for f in iq.iter(f"{{{DATA}}}field")}
        self.assertEqual(fields, {
            "FORM_TYPE": "hidden", "with": "jid-single", "start": "text-single",
            "end": "text-single", "before-id": "text-single", "after-id": "text-single",
            "ids": "list-multi", "include-groupchat": "boolean"})
        self.assertEqual(iq.findtext(f".//{{{DATA}}}field[@var='FORM_TYPE']/{{{DATA}}}value"),
                         MAM)
        self.assertIsNotNone(iq.find(".//{http://jabber.org/protocol/xdata-validate}open"))

    def test_metadata(self) -> None:
        self.alice.send(f"<iq type='get' id='md'><metadata xmlns='{MAM}'/></iq>")
        (iq,) = of(self.alice.read(), "iq", id="md")
        self.assertEqual(len(iq.find(f"{{{MAM}}}metadata")), 0)
        self.chat(self.alice, "bob@localhost", "a")
        self.clock.advance(5)
        self.chat(self.alice, "bob@localhost", "b")
        ids = self.query(self.alice).ids
        self.alice.send(f"<iq type='get' id='md2'><metadata xmlns='{MAM}'/></iq>")
        (iq,) = of(self.alice.read(), "iq", id="md2")
        metadata = iq.find(f"{{{MAM}}}metadata")
        self.assertEqual(metadata.find(f"{{{MAM}}}start").get("id"), ids[0])
        self.assertEqual(metadata.find(f"{{{MAM}}}end").get("id"), ids[1])
        self.assertTrue(metadata.find(f"{{{MAM}}}end").get("timestamp").endswith("Z"))

    def test_disco_account_features(self) -> None:
        self.alice.send("<iq type='get' id='d' to='alice@localhost'>"
                        "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
        (iq,) = of(self.alice.read(), "iq", id="d")
        features = {f.get("var") for f in iq.iter("{http://jabber.org/protocol/disco#info}feature")}
        self.assertTrue({MAM, MAM + "#extended", MAM + "#groupchat-field", SID} <= features)
        self.assertNotIn(MAM + "#groupchat-available", features)


class PrefsTests(MamFixture):
    def prefs(self, client: Client, body: str | None = None) -> etree._Element:
        if body is None:
            client.send(f"<iq type='get' id='p'><prefs xmlns='{MAM}'/></iq>")
        else:
            client.send(f"<iq type='set' id='p'>{body}</iq>")
        (iq,) = of(client.read(), "iq", id="p")
        return iq

    @staticmethod
    def lists(iq: etree._Element) -> tuple[str, list[str], list[str]]:
        prefs = iq.find(f"{{{MAM}}}prefs")
        return (prefs.get("default"),
                [j.text for j in prefs.iterfind(f"{{{MAM}}}always/{{{MAM}}}jid")],
                [j.text for j in prefs.iterfind(f"{{{MAM}}}never/{{{MAM}}}jid")])

    def test_default(self) -> None:
        iq = self.prefs(self.alice)
        self.assertEqual(self.lists(iq), ("always", [], []))
        prefs = iq.find(f"{{{MAM}}}prefs")
        self.assertIsNotNone(prefs.find(f"{{{MAM}}}always"))
        self.assertIsNotNone(prefs.find(f"{{{MAM}}}never"))

    def test_never_by_default_with_an_exception(self) -> None:
        iq = self.prefs(self.alice, f"<prefs xmlns='{MAM}' default='never'>"
                        "<always><jid>Bob@localhost</jid></always><never/></prefs>")
        self.assertEqual(self.lists(iq), ("never", ["bob@localhost"], []))
        self.assertEqual(self.lists(self.prefs(self.alice)), ("never", ["bob@localhost"], []))
        self.chat(self.alice, "bob@localhost", "kept")
        self.chat(self.alice, "carol@localhost", "not kept")
        self.assertEqual(self.query(self.alice).bodies, ["kept"])
        # carol's own archive does not depend on alice's wishes
        self.assertEqual(len(self.archive("carol")), 1)
        stored = self.store.prefs("alice", "localhost")
        self.assertEqual((stored.default, stored.always), ("never", ("bob@localhost",)))

    def test_never_list_for_incoming_leaves_no_stanza_id(self) -> None:
        self.prefs(self.bob, f"<prefs xmlns='{MAM}' default='always'><always/>"
                   "<never><jid>alice@localhost</jid></never></prefs>")
        self.chat(self.alice, "bob@localhost", "unrecorded")
        (message,) = self.messages(self.bob)
        self.assertEqual(stanza_ids(message), [])
        self.assertEqual(self.archive("bob"), [])
        self.assertEqual(len(self.archive("alice")), 1)

    def test_full_jid_in_never_list(self) -> None:
        self.prefs(self.alice, f"<prefs xmlns='{MAM}' default='always'><always/>"
                   "<never><jid>bob@localhost/laptop</jid></never></prefs>")
        self.chat(self.bob, "alice@localhost", "from laptop")
        self.chat(self.alice, "bob@localhost", "to bare")
        self.assertEqual(self.query(self.alice).bodies, ["to bare"])

    def test_roster_default(self) -> None:
        self.subscribe_both()
        self.prefs(self.alice, f"<prefs xmlns='{MAM}' default='roster'/>")
        self.chat(self.alice, "bob@localhost", "contact")
        self.chat(self.alice, "carol@localhost", "stranger")
        self.assertEqual(self.query(self.alice).bodies, ["contact"])

    def test_prefs_survive_a_new_login(self) -> None:
        self.prefs(self.alice, f"<prefs xmlns='{MAM}' default='never'/>")
        self.alice.transport.loseConnection()
        self.alice.stream.connectionLost(None)
        self.assertIsNone(self.server.mam.archiver.prefs(
            self.alice.stream.jid.bare))
        alice = self.client("alice", "secret", "tablet")
        alice.available()
        alice.read()
        self.chat(alice, "bob@localhost", "unrecorded")
        self.assertEqual(self.archive("alice"), [])

    def test_bad_prefs(self) -> None:
        for body in (f"<prefs xmlns='{MAM}' default='sometimes'/>",
                     f"<prefs xmlns='{MAM}'/>",
                     f"<prefs xmlns='{MAM}' default='always'><never><jid>@x</jid></never></prefs>"):
            iq = self.prefs(self.alice, body)
            self.assertEqual(iq.get("type"), "error", body)
            self.assertIsNotNone(iq.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}bad-request"))


class DefaultPrefsTests(MamFixture):
    config: ClassVar[dict[str, Any]] = {"mam_default_prefs": "never"}

    def test_configured_default(self) -> None:
        self.chat(self.alice, "bob@localhost", "x")
        self.assertEqual(self.archive("alice"), [])
        self.assertEqual(self.archive("bob"), [])


class RetentionTests(MamFixture):
    config: ClassVar[dict[str, Any]] = {"mam_retention": 2}

    def test_expired_hidden_then_swept(self) -> None:
        """Older than the retention: left out of queries at once, deleted
        by the next sweep on the server clock."""
        self.chat(self.alice, "bob@localhost", "old")
        self.clock.advance(DAY)
        self.chat(self.alice, "bob@localhost", "new")
        self.assertEqual(self.query(self.alice).bodies, ["old", "new"])
        old_id = self.query(self.alice).ids[0]
        expires = 1_700_000_000 + 2 * DAY
        # run each sweep at its own time up to the first one after expiry
        while True:
            (sweep,) = self.clock.getDelayedCalls()
            if sweep.getTime() > expires + 10:
                break
            self.clock.advance(sweep.getTime() - self.clock.seconds())
        self.clock.advance(sweep.getTime() - 5 - self.clock.seconds())
        self.assertEqual(self.query(self.alice).bodies, ["new"])
        self.assertEqual(self.query(self.alice, rsm(5, after=old_id)).error, "item-not-found")
        self.assertEqual(len(self.archive("alice")), 2)  # not swept yet
        self.clock.advance(5)
        self.assertEqual(len(self.archive("alice")), 1)
        self.assertEqual(len(self.archive("bob")), 1)

    def test_no_timer_before_the_first_session(self) -> None:
        server, clock = make_server(self.mktemp(), mam_retention=2)
        self.assertEqual(clock.getDelayedCalls(), [])
        Client(server).login()
        self.assertEqual(len(clock.getDelayedCalls()), 1)

    def test_sweep_stops_on_shutdown(self) -> None:
        self.assertTrue(self.clock.getDelayedCalls())
        self.server.shutdown()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class ForeverTests(MamFixture):
    config: ClassVar[dict[str, Any]] = {"mam_retention": 0}

    def test_kept_forever(self) -> None:
        self.chat(self.alice, "bob@localhost", "old")
        self.clock.advance(3650 * DAY)
        self.assertEqual(self.query(self.alice).bodies, ["old"])
        self.assertEqual(self.clock.getDelayedCalls(), [])


class StoreTests(MamFixture):
    def test_interface(self) -> None:
        self.assertTrue(verifyObject(IArchiveStore, SqliteArchiveStore(":memory:")))

    def test_account_delete_removes_archive_and_prefs(self) -> None:
        path = self.mktemp()
        accounts = SqliteAccountStore(path)
        archives = SqliteArchiveStore(path)
        accounts.create("dave", "localhost", {})
        archives.append("dave", "localhost", ArchivedMessage("a", 1.0, "x@y", "", b"<m/>"))
        archives.set_prefs("dave", "localhost", ArchivePrefs("never"))
        accounts.delete("dave", "localhost")
        self.assertEqual(archives.find("dave", "localhost", ArchiveQuery()).count, 0)
        self.assertIsNone(archives.prefs("dave", "localhost"))


class ConfigTests(SynchronousTestCase):
    def load(self, text: str) -> Any:
        path = Path(self.mktemp())
        path.write_text(text)
        return load_config(path)

    def test_defaults(self) -> None:
        xmpp = load_config().xmpp
        self.assertEqual((xmpp.mam_default_page_size, xmpp.mam_max_page_size,
                          xmpp.mam_default_prefs, xmpp.mam_retention), (50, 250, "always", 365))

    def test_keys(self) -> None:
        xmpp = self.load("[xmpp]\nmam_default_page_size = 10\nmam_max_page_size = 20\n"
                         "mam_default_prefs = 'roster'\nmam_retention = 0\n").xmpp
        self.assertEqual((xmpp.mam_default_page_size, xmpp.mam_max_page_size,
                          xmpp.mam_default_prefs, xmpp.mam_retention), (10, 20, "roster", 0))

    def test_bad_values_name_the_key(self) -> None:
        for text, key in (("mam_default_prefs = 'sometimes'", "xmpp.mam_default_prefs"),
                          ("mam_max_page_size = 0", "xmpp.mam_max_page_size"),
                          ("mam_retention = -1", "xmpp.mam_retention"),
                          ("mam_default_page_size = 300", "xmpp.mam_default_page_size")):
            with self.assertRaises(ConfigError) as cm:
                self.load(f"[xmpp]\n{text}\n")
            self.assertIn(key, str(cm.exception))


class PrefsRaceTests(MamFixture):
    def test_newer_prefs_win_over_a_roster_load(self) -> None:
        """Preferences set while older ones wait for the roster are the
        ones applied."""
        queued: list[Any] = []

        def later(f: Any, *args: Any) -> Deferred:
            d: Deferred = Deferred()
            queued.append(lambda: d.callback(f(*args)))
            return d

        archiver = self.server.mam.archiver
        owner = self.alice.stream.jid.bare
        rosters = self.server.rosters
        rosters._cache.clear()
        rosters.run_in_db = later
        archiver.use(owner, ArchivePrefs("roster"))  # waits for the roster
        archiver.use(owner, ArchivePrefs("never"))
        while queued:
            queued.pop(0)()
        self.assertEqual(archiver.prefs(owner), ArchivePrefs("never"))


class OfflineRaceTests(MamFixture):
    def later(self) -> list[Any]:
        queued: list[Any] = []

        def later(f: Any, *args: Any) -> Deferred:
            d: Deferred = Deferred()
            queued.append(lambda: d.callback(f(*args)))
            return d

        self.original = self.server.run_in_db
        self.server.run_in_db = later
        return queued

    def test_offline_message_waits_for_prefs_then_is_stored(self) -> None:
        queued = self.later()
        self.chat(self.alice, "carol@localhost", "later")
        self.assertEqual(self.server.im_store.count_messages("carol", "localhost"), 0)
        while queued:
            queued.pop(0)()
        self.server.run_in_db = self.original
        self.assertEqual(self.server.im_store.count_messages("carol", "localhost"), 1)
        (stored,) = self.server.im_store.messages("carol", "localhost", 10)
        self.assertIn(b"urn:xmpp:sid:0", stored.stanza)
        self.assertEqual(len(self.archive("carol")), 1)

    def test_recipient_online_meanwhile_gets_it_at_once(self) -> None:
        """carol comes online while her preferences load: the message is
        delivered to her, not left in offline storage after her flush."""
        queued = self.later()
        self.chat(self.alice, "carol@localhost", "race")
        self.server.run_in_db = self.original
        carol = self.client("carol", "carol-pw", "desk")
        carol.available()
        carol.read()
        while queued:
            queued.pop(0)()
        got = self.messages(carol)
        self.assertEqual([m.findtext("{jabber:client}body") for m in got], ["race"])
        self.assertEqual(stanza_ids(got[0])[0][0], "carol@localhost")
        self.assertEqual(self.server.im_store.count_messages("carol", "localhost"), 0)
        self.assertEqual(len(self.archive("carol")), 1)

    def test_never_for_an_offline_recipient_is_stored_once(self) -> None:
        self.store.set_prefs("carol", "localhost", ArchivePrefs("never"))
        queued = self.later()
        self.chat(self.alice, "carol@localhost", "unrecorded")
        while queued:
            queued.pop(0)()
        self.server.run_in_db = self.original
        self.assertEqual(self.server.im_store.count_messages("carol", "localhost"), 1)
        self.assertEqual(self.archive("carol"), [])

    def test_other_offline_handlers_see_it_once_with_its_id(self) -> None:
        """Handlers of message/offline below the archive (push, at 10) see
        a held message once, with its stanza-id."""
        seen: list[list[tuple[str, str]]] = []
        self.server.bus.hook("message/offline", lambda e: seen.append(stanza_ids(e.stanza)), 10)
        queued = self.later()
        self.chat(self.alice, "carol@localhost", "once")
        self.assertEqual(seen, [])
        while queued:
            queued.pop(0)()
        self.server.run_in_db = self.original
        self.assertEqual(len(seen), 1)
        self.assertEqual([by for by, _ in seen[0]], ["carol@localhost"])
