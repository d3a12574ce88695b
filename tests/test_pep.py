"""XEP-0163 PEP on StringTransport: publish, items, access, notifications,
configuration, publish-options (XEP-0223), disco, the server-side API."""

from __future__ import annotations

from dataclasses import replace

from lxml import etree

from convergence.xmpp.jid import JID
from convergence.xmpp.pep.nodeconfig import NODE_CONFIG, PUBLISH_OPTIONS
from tests.imhelpers import of
from tests.pephelpers import (
    DATA,
    EVENT,
    OWNER,
    PUBSUB,
    PepFixture,
    error_of,
    events,
    form,
)

TUNE = "http://jabber.org/protocol/tune"
AVATAR_DATA = "urn:xmpp:avatar:data"
AVATAR_META = "urn:xmpp:avatar:metadata"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"


def tune(artist: str) -> str:
    return f"<tune xmlns='{TUNE}'><artist>{artist}</artist></tune>"


class PublishTests(PepFixture):
    def test_publish_creates_node_with_current_id(self) -> None:
        """A publish auto-creates the node; a single-item node's default
        item id is 'current'; the owner reads the item back."""
        result = self.publish(self.alice, TUNE, tune("Yes"))
        self.assertEqual(result.get("type"), "result")
        self.assertEqual(self.item_ids(result), ["current"])
        items = self.items(self.alice, TUNE)
        self.assertEqual(self.item_ids(items), ["current"])
        self.assertEqual(items.findtext(f".//{{{TUNE}}}artist"), "Yes")
        self.assertEqual(self.server.pep_store.pep_items("alice", "localhost", TUNE),
                         [("current", etree.tostring(etree.fromstring(tune("Yes"))))])

    def test_single_item_node_keeps_the_newest(self) -> None:
        self.publish(self.alice, TUNE, tune("one"))
        self.publish(self.alice, TUNE, tune("two"), item_id="other")
        items = self.items(self.alice, TUNE)
        self.assertEqual(self.item_ids(items), ["other"])
        self.assertEqual(items.findtext(f".//{{{TUNE}}}artist"), "two")

    def test_multi_item_node_max_items_and_ids(self) -> None:
        """publish-options max_items 3: the oldest go beyond it;
        retrieval by max_items (newest, oldest first) and by id."""
        options = form(PUBLISH_OPTIONS, pubsub_max_items="3")
        for n in range(5):
            result = self.publish(self.alice, "urn:x:list", f"<n xmlns='x'>{n}</n>",
                                  item_id=f"i{n}", options=options)
            self.assertEqual(result.get("type"), "result", etree.tostring(result))
        self.assertEqual(self.item_ids(self.items(self.alice, "urn:x:list")),
                         ["i2", "i3", "i4"])
        self.assertEqual(self.item_ids(self.items(self.alice, "urn:x:list",
                                                  extra=" max_items='2'")), ["i3", "i4"])
        by_id = self.items(self.alice, "urn:x:list",
                           inner=f"<item xmlns='{PUBSUB}' id='i3'/>")
        self.assertEqual(self.item_ids(by_id), ["i3"])
        # a multi-item node without an id: a generated, unique one
        result = self.publish(self.alice, "urn:x:list", "<n xmlns='x'>x</n>",
                              options=options)
        new_id = self.item_ids(result)[0]
        self.assertNotIn(new_id, ("current", "i4"))

    def test_republished_id_becomes_newest(self) -> None:
        options = form(PUBLISH_OPTIONS, pubsub_max_items="2")
        for item_id in ("a", "b", "a", "c"):
            self.publish(self.alice, "urn:x:l", "<n xmlns='x'/>", item_id, options)
        self.assertEqual(self.item_ids(self.items(self.alice, "urn:x:l")), ["a", "c"])

    def test_bad_publishes(self) -> None:
        no_node = self.iq(self.alice, "set", f"<pubsub xmlns='{PUBSUB}'><publish>"
                          "<item><x xmlns='y'/></item></publish></pubsub>")
        self.assertEqual(error_of(no_node), ("modify", "bad-request", "nodeid-required"))
        no_item = self.iq(self.alice, "set", f"<pubsub xmlns='{PUBSUB}'>"
                          f"<publish node='{TUNE}'/></pubsub>")
        self.assertEqual(error_of(no_item), ("modify", "bad-request", "item-required"))
        empty = self.publish(self.alice, TUNE, "")
        self.assertEqual(error_of(empty), ("modify", "bad-request", "payload-required"))
        two = self.publish(self.alice, TUNE, "<a xmlns='x'/><b xmlns='x'/>")
        self.assertEqual(error_of(two), ("modify", "bad-request", "invalid-payload"))
        others = self.iq(self.bob, "set", f"<pubsub xmlns='{PUBSUB}'><publish node='{TUNE}'>"
                         f"<item>{tune('x')}</item></publish></pubsub>", to="alice@localhost")
        self.assertEqual(error_of(others)[1], "forbidden")
        self.assertEqual(self.server.pep_store.pep_nodes("alice", "localhost"), [])

    def test_item_size_limits_per_node(self) -> None:
        """Over xmpp.pep_max_item_size: not-acceptable payload-too-big;
        avatar data takes up to xmpp.pep_max_avatar_size."""
        self.server.config = replace(self.server.config, pep_max_item_size=2048,
                                     pep_max_avatar_size=8192)
        big = "A" * 4000
        refused = self.publish(self.alice, TUNE, f"<tune xmlns='{TUNE}'>{big}</tune>")
        self.assertEqual(error_of(refused), ("modify", "not-acceptable", "payload-too-big"))
        self.assertEqual(self.publish(self.alice, AVATAR_DATA,
                                      f"<data xmlns='{AVATAR_DATA}'>{big}</data>",
                                      "sha1").get("type"), "result")
        huge = "A" * (self.server.config.pep_max_avatar_size + 1)
        refused = self.publish(self.alice, AVATAR_DATA,
                               f"<data xmlns='{AVATAR_DATA}'>{huge}</data>", "sha1")
        self.assertEqual(error_of(refused)[2], "payload-too-big")

    def test_node_limit(self) -> None:
        self.server.config = replace(self.server.config, pep_max_nodes=2)
        for n in range(2):
            self.assertEqual(self.publish(self.alice, f"urn:n:{n}", tune("x")).get("type"),
                             "result")
        self.assertEqual(error_of(self.publish(self.alice, "urn:n:2", tune("x")))[1],
                         "policy-violation")
        # the existing ones still take items
        self.assertEqual(self.publish(self.alice, "urn:n:0", tune("y")).get("type"), "result")

    def test_publish_options_first(self) -> None:
        options = form(PUBLISH_OPTIONS, pubsub_access_model="open")
        answer = self.iq(self.alice, "set", f"<pubsub xmlns='{PUBSUB}'><publish-options>"
                         f"{options}</publish-options><publish node='{TUNE}'><item>"
                         f"{tune('x')}</item></publish></pubsub>")
        self.assertEqual(self.item_ids(answer), ["current"])
        empty = self.iq(self.alice, "set", f"<pubsub xmlns='{PUBSUB}'/>")
        self.assertEqual(error_of(empty)[1], "bad-request")

    def test_unsupported_requests(self) -> None:
        options = self.iq(self.bob, "get", f"<pubsub xmlns='{PUBSUB}'><options node='{TUNE}'"
                          " jid='bob@localhost'/></pubsub>", to="alice@localhost")
        self.assertEqual(error_of(options), ("cancel", "feature-not-implemented",
                                             "unsupported"))
        unsupported = options.find(".//{http://jabber.org/protocol/pubsub#errors}"
                                   "unsupported")
        self.assertEqual(unsupported.get("feature"), "subscription-options")

    def test_unknown_account(self) -> None:
        answer = self.items(self.bob, TUNE, to="nobody@localhost")
        self.assertEqual(error_of(answer)[1], "service-unavailable")


class AccessTests(PepFixture):
    def setUp(self) -> None:
        super().setUp()
        self.carol = self.client("carol", "carol-pw", "tablet")
        self.carol.available()
        self.carol.read()

    def test_presence_access(self) -> None:
        """bob (subscribed) reads alice's items; carol (not) is refused
        with XEP-0060's presence-subscription-required."""
        self.publish(self.alice, AVATAR_META, f"<metadata xmlns='{AVATAR_META}'/>", "abc")
        bob = self.items(self.bob, AVATAR_META, to="alice@localhost")
        self.assertEqual(self.item_ids(bob), ["abc"])
        carol = self.items(self.carol, AVATAR_META, to="alice@localhost")
        self.assertEqual(error_of(carol), ("auth", "not-authorized",
                                           "presence-subscription-required"))
        self.assertIsNone(carol.find(f".//{{{AVATAR_META}}}metadata"))
        # a node that does not exist: as refused as one that does
        missing = self.items(self.carol, "urn:nothing", to="alice@localhost")
        self.assertEqual(error_of(missing)[2], "presence-subscription-required")
        self.assertEqual(error_of(self.items(self.bob, "urn:nothing",
                                             to="alice@localhost"))[1], "item-not-found")

    def test_whitelist_is_private(self) -> None:
        """XEP-0223: a node published with whitelist access is the
        owner's only; no contact gets its items or notifications."""
        self.wants(self.bob, "urn:x:secret")
        self.wants(self.alice, "urn:x:secret")
        options = form(PUBLISH_OPTIONS, pubsub_persist_items="true",
                       pubsub_access_model="whitelist")
        self.assertEqual(self.publish(self.alice, "urn:x:secret", "<s xmlns='x'>pw</s>",
                                      options=options).get("type"), "result")
        self.assertEqual(len(events(self.last_read)), 1)  # alice's own resource
        self.assertEqual(events(self.bob.read()), [])
        bob = self.items(self.bob, "urn:x:secret", to="alice@localhost")
        self.assertEqual(error_of(bob), ("cancel", "not-allowed", "closed-node"))
        self.assertEqual(self.item_ids(self.items(self.alice, "urn:x:secret")), ["current"])

    def test_roster_access(self) -> None:
        """The roster model: contacts in an allowed group only."""
        self.alice.send("<iq type='set' id='g'><query xmlns='jabber:iq:roster'>"
                        "<item jid='bob@localhost'><group>Friends</group></item></query></iq>")
        self.alice.read()
        options = form(PUBLISH_OPTIONS, pubsub_access_model="roster",
                       pubsub_roster_groups_allowed="Family")
        self.publish(self.alice, "urn:x:r", "<r xmlns='x'/>", options=options)
        refused = self.items(self.bob, "urn:x:r", to="alice@localhost")
        self.assertEqual(error_of(refused), ("auth", "not-authorized", "not-in-roster-group"))
        config = form(NODE_CONFIG, pubsub_roster_groups_allowed="Friends")
        self.iq(self.alice, "set", f"<pubsub xmlns='{OWNER}'><configure node='urn:x:r'>"
                f"{config}</configure></pubsub>")
        self.assertEqual(self.item_ids(self.items(self.bob, "urn:x:r",
                                                  to="alice@localhost")), ["current"])

    def test_open_access(self) -> None:
        options = form(PUBLISH_OPTIONS, pubsub_access_model="open")
        self.publish(self.alice, "urn:x:o", "<o xmlns='x'/>", options=options)
        self.assertEqual(self.item_ids(self.items(self.carol, "urn:x:o",
                                                  to="alice@localhost")), ["current"])

    def test_only_the_owner_manages(self) -> None:
        self.publish(self.alice, TUNE, tune("x"))
        for body in (f"<pubsub xmlns='{OWNER}'><delete node='{TUNE}'/></pubsub>",
                     f"<pubsub xmlns='{OWNER}'><purge node='{TUNE}'/></pubsub>",
                     (f"<pubsub xmlns='{PUBSUB}'><retract node='{TUNE}'>"
                      "<item id='current'/></retract></pubsub>")):
            self.assertEqual(error_of(self.iq(self.bob, "set", body, to="alice@localhost"))[1],
                             "forbidden")
        configure = self.iq(self.bob, "get", f"<pubsub xmlns='{OWNER}'>"
                            f"<configure node='{TUNE}'/></pubsub>", to="alice@localhost")
        self.assertEqual(error_of(configure)[1], "forbidden")
        self.assertEqual(self.item_ids(self.items(self.alice, TUNE)), ["current"])


class NotificationTests(PepFixture):
    def setUp(self) -> None:
        super().setUp()
        self.carol = self.client("carol", "carol-pw", "tablet")
        self.carol.available()
        self.carol.read()

    def test_contacts_with_notify_get_the_event(self) -> None:
        """alice publishes; bob (+notify) and alice's own resource
        (+notify) get a headline event from alice's bare JID; carol
        (+notify, not subscribed) gets nothing."""
        for client in (self.alice, self.bob, self.carol):
            self.wants(client, AVATAR_META)
        payload = f"<metadata xmlns='{AVATAR_META}'><info id='abc' bytes='3'/></metadata>"
        self.publish(self.alice, AVATAR_META, payload, "abc")
        own = events(self.last_read)
        bob = of(self.bob.read(), "message", type="headline")
        self.assertEqual(len(bob), 1)
        self.assertEqual(bob[0].get("from"), "alice@localhost")
        self.assertEqual(bob[0].get("to"), "bob@localhost/laptop")
        items = bob[0].find(f"{{{EVENT}}}event/{{{EVENT}}}items")
        self.assertEqual(items.get("node"), AVATAR_META)
        self.assertEqual(items.find(f"{{{EVENT}}}item").get("id"), "abc")
        self.assertIsNotNone(items.find(f".//{{{AVATAR_META}}}info"))
        self.assertEqual(len(own), 1)
        self.assertEqual(events(self.carol.read()), [])

    def test_without_notify_or_caps_nothing(self) -> None:
        self.wants(self.bob, TUNE)  # not the avatar
        self.publish(self.alice, AVATAR_META, f"<metadata xmlns='{AVATAR_META}'/>")
        self.assertEqual(events(self.bob.read()), [])
        self.bob.stream.client_features = None
        self.publish(self.alice, TUNE, tune("x"))
        self.assertEqual(events(self.bob.read()), [])

    def test_last_item_when_notify_appears_and_on_presence(self) -> None:
        """The last item goes to a resource once its +notify is known
        (caps/updated), once per session, and again after it comes back."""
        self.publish(self.alice, TUNE, tune("old"))
        self.publish(self.alice, TUNE, tune("last"))
        self.bob.read()
        self.wants(self.bob, TUNE)
        got = events(self.bob.read())
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0].findtext(f".//{{{TUNE}}}artist"), "last")
        self.wants(self.bob, TUNE)
        self.bob.send("<presence><show>away</show></presence>")
        self.assertEqual(events(self.bob.read()), [])
        # a new session of bob: features known at bind, sent on presence
        second = self.client("bob", "hunter2", "phone")
        second.stream.client_features = frozenset([f"{TUNE}+notify"])
        second.send("<presence/>")
        got = events(second.read())
        self.assertEqual([e.findtext(f".//{{{TUNE}}}artist") for e in got], ["last"])
        # carol may not see it, whatever she wants
        self.wants(self.carol, TUNE)
        self.assertEqual(events(self.carol.read()), [])

    def test_last_item_on_a_new_subscription(self) -> None:
        """carol is allowed alice's presence: her +notify resource gets
        the last item at once (on_sub)."""
        self.publish(self.alice, TUNE, tune("hello"))
        self.wants(self.carol, TUNE)
        self.assertEqual(events(self.carol.read()), [])
        self.carol.send("<presence to='alice@localhost' type='subscribe'/>")
        self.alice.send("<presence to='carol@localhost' type='subscribed'/>")
        self.clock.advance(0)
        got = events(self.carol.read())
        self.assertEqual([e.findtext(f".//{{{TUNE}}}artist") for e in got], ["hello"])

    def test_send_last_never(self) -> None:
        options = form(PUBLISH_OPTIONS, pubsub_send_last_published_item="never")
        self.publish(self.alice, TUNE, tune("x"), options=options)
        self.wants(self.bob, TUNE)
        self.assertEqual(events(self.bob.read()), [])

    def test_retract_purge_delete_notify(self) -> None:
        self.wants(self.bob, "urn:x:l")
        options = form(PUBLISH_OPTIONS, pubsub_max_items="10")
        for item_id in ("a", "b"):
            self.publish(self.alice, "urn:x:l", "<n xmlns='x'/>", item_id, options)
        self.bob.read()
        retract = self.iq(self.alice, "set", f"<pubsub xmlns='{PUBSUB}'><retract node='urn:x:l'"
                          " notify='true'><item id='a'/></retract></pubsub>")
        self.assertEqual(retract.get("type"), "result")
        got = events(self.bob.read())
        self.assertEqual(got[0].find(f".//{{{EVENT}}}retract").get("id"), "a")
        quiet = self.iq(self.alice, "set", f"<pubsub xmlns='{PUBSUB}'><retract node='urn:x:l'>"
                        "<item id='b'/></retract></pubsub>")
        self.assertEqual(quiet.get("type"), "result")
        self.assertEqual(events(self.bob.read()), [])
        again = self.iq(self.alice, "set", f"<pubsub xmlns='{PUBSUB}'><retract node='urn:x:l'>"
                        "<item id='b'/></retract></pubsub>")
        self.assertEqual(error_of(again)[1], "item-not-found")
        self.publish(self.alice, "urn:x:l", "<n xmlns='x'/>", "c")
        self.bob.read()
        purge = self.iq(self.alice, "set", f"<pubsub xmlns='{OWNER}'><purge node='urn:x:l'/>"
                        "</pubsub>")
        self.assertEqual(purge.get("type"), "result")
        self.assertIsNotNone(events(self.bob.read())[0].find(f"{{{EVENT}}}purge"))
        self.assertEqual(self.item_ids(self.items(self.alice, "urn:x:l")), [])
        delete = self.iq(self.alice, "set", f"<pubsub xmlns='{OWNER}'><delete node='urn:x:l'/>"
                         "</pubsub>")
        self.assertEqual(delete.get("type"), "result")
        self.assertIsNotNone(events(self.bob.read())[0].find(f"{{{EVENT}}}delete"))
        self.assertEqual(error_of(self.items(self.alice, "urn:x:l"))[1], "item-not-found")
        self.assertEqual(self.server.pep_store.pep_nodes("alice", "localhost"), [])


class ConfigurationTests(PepFixture):
    def config_form(self, node: str) -> dict[str, list[str]]:
        answer = self.iq(self.alice, "get", f"<pubsub xmlns='{OWNER}'>"
                         f"<configure node='{node}'/></pubsub>")
        self.assertEqual(answer.get("type"), "result", etree.tostring(answer))
        return {f.get("var"): [v.text for v in f.findall(f"{{{DATA}}}value")]
                for f in answer.iter(f"{{{DATA}}}field")}

    def test_get_and_set(self) -> None:
        self.publish(self.alice, TUNE, tune("x"))
        fields = self.config_form(TUNE)
        self.assertEqual(fields["FORM_TYPE"], [NODE_CONFIG])
        self.assertEqual(fields["pubsub#access_model"], ["presence"])
        self.assertEqual(fields["pubsub#max_items"], ["1"])
        self.assertEqual(fields["pubsub#persist_items"], ["true"])
        self.assertEqual(fields["pubsub#send_last_published_item"], ["on_sub_and_presence"])
        config = form(NODE_CONFIG, pubsub_access_model="whitelist", pubsub_max_items="5")
        answer = self.iq(self.alice, "set", f"<pubsub xmlns='{OWNER}'><configure node='{TUNE}'>"
                         f"{config}</configure></pubsub>")
        self.assertEqual(answer.get("type"), "result", etree.tostring(answer))
        fields = self.config_form(TUNE)
        self.assertEqual((fields["pubsub#access_model"], fields["pubsub#max_items"]),
                         (["whitelist"], ["5"]))
        self.assertEqual(error_of(self.items(self.bob, TUNE, to="alice@localhost"))[2],
                         "closed-node")
        # survives a reload from the store
        self.server.pep._nodes.clear()
        self.assertEqual(self.config_form(TUNE)["pubsub#access_model"], ["whitelist"])

    def test_invalid_values(self) -> None:
        self.publish(self.alice, TUNE, tune("x"))
        for field, value in (("pubsub_access_model", "authorize"),
                             ("pubsub_max_items", "100000"), ("pubsub_max_items", "x"),
                             ("pubsub_persist_items", "maybe")):
            config = form(NODE_CONFIG, **{field: value})
            answer = self.iq(self.alice, "set", f"<pubsub xmlns='{OWNER}'>"
                             f"<configure node='{TUNE}'>{config}</configure></pubsub>")
            self.assertEqual(error_of(answer)[1], "not-acceptable", (field, value))
        missing = self.iq(self.alice, "get", f"<pubsub xmlns='{OWNER}'>"
                          "<configure node='urn:none'/></pubsub>")
        self.assertEqual(error_of(missing)[1], "item-not-found")

    def test_default_form(self) -> None:
        answer = self.iq(self.alice, "get", f"<pubsub xmlns='{OWNER}'><default/></pubsub>")
        self.assertEqual(answer.get("type"), "result")
        self.assertIsNotNone(answer.find(f".//{{{DATA}}}x"))

    def test_persist_items_false_keeps_the_last_in_memory(self) -> None:
        options = form(PUBLISH_OPTIONS, pubsub_persist_items="false")
        self.publish(self.alice, TUNE, tune("mem"), options=options)
        self.assertEqual(self.server.pep_store.pep_items("alice", "localhost", TUNE), [])
        self.assertEqual(self.item_ids(self.items(self.alice, TUNE)), ["current"])
        self.wants(self.bob, TUNE)
        self.assertEqual(len(events(self.bob.read())), 1)
        config = form(NODE_CONFIG, pubsub_persist_items="true")
        self.iq(self.alice, "set", f"<pubsub xmlns='{OWNER}'><configure node='{TUNE}'>"
                f"{config}</configure></pubsub>")
        self.assertEqual([i for i, _ in self.server.pep_store.pep_items(
            "alice", "localhost", TUNE)], ["current"])

    def test_publish_options_preconditions(self) -> None:
        """XEP-0223: publish-options on a new node configure it; on an
        existing node that differs the publish fails with
        precondition-not-met and the node is unchanged."""
        private = form(PUBLISH_OPTIONS, pubsub_persist_items="true",
                       pubsub_access_model="whitelist")
        self.assertEqual(self.publish(self.alice, "urn:x:p", "<p xmlns='x'/>",
                                      options=private).get("type"), "result")
        self.assertEqual(self.config_form("urn:x:p")["pubsub#access_model"], ["whitelist"])
        self.assertEqual(self.publish(self.alice, "urn:x:p", "<p xmlns='x'>2</p>",
                                      options=private).get("type"), "result")
        self.publish(self.alice, TUNE, tune("public"))
        refused = self.publish(self.alice, TUNE, tune("secret"), options=private)
        self.assertEqual(error_of(refused), ("cancel", "conflict", "precondition-not-met"))
        self.assertEqual(self.config_form(TUNE)["pubsub#access_model"], ["presence"])
        self.assertEqual(self.items(self.alice, TUNE).findtext(f".//{{{TUNE}}}artist"),
                         "public")
        wrong_type = self.publish(self.alice, TUNE, tune("x"),
                                  options=form(NODE_CONFIG, pubsub_max_items="1"))
        self.assertEqual(error_of(wrong_type)[2], "invalid-options")


class DiscoTests(PepFixture):
    def setUp(self) -> None:
        super().setUp()
        self.carol = self.client("carol", "carol-pw", "tablet")

    def test_account_identity_and_features(self) -> None:
        answer = self.iq(self.bob, "get", f"<query xmlns='{DISCO_INFO}'/>",
                         to="alice@localhost")
        identities = {(i.get("category"), i.get("type"))
                      for i in answer.iter(f"{{{DISCO_INFO}}}identity")}
        self.assertEqual(identities, {("account", "registered"), ("pubsub", "pep")})
        features = {f.get("var") for f in answer.iter(f"{{{DISCO_INFO}}}feature")}
        for var in (PUBSUB, f"{PUBSUB}#publish", f"{PUBSUB}#publish-options",
                    f"{PUBSUB}#auto-create", f"{PUBSUB}#access-presence",
                    "urn:xmpp:bookmarks:1#compat"):
            self.assertIn(var, features)

    def test_items_lists_visible_nodes(self) -> None:
        self.publish(self.alice, TUNE, tune("x"))
        self.publish(self.alice, "urn:x:secret", "<s xmlns='x'/>",
                     options=form(PUBLISH_OPTIONS, pubsub_access_model="whitelist"))

        def nodes(client: object, to: str | None) -> list[str]:
            answer = self.iq(client, "get", f"<query xmlns='{DISCO_ITEMS}'/>", to=to)
            self.assertEqual(answer.get("type"), "result", etree.tostring(answer))
            return [i.get("node") for i in answer.iter(f"{{{DISCO_ITEMS}}}item")]

        self.assertEqual(nodes(self.alice, None), [TUNE, "urn:x:secret"])
        self.assertEqual(nodes(self.bob, "alice@localhost"), [TUNE])
        self.assertEqual(nodes(self.carol, "alice@localhost"), [])
        info = self.iq(self.bob, "get", f"<query xmlns='{DISCO_INFO}' node='{TUNE}'/>",
                       to="alice@localhost")
        self.assertEqual(info.find(f".//{{{DISCO_INFO}}}identity").get("type"), "leaf")
        hidden = self.iq(self.bob, "get", f"<query xmlns='{DISCO_INFO}' node='urn:x:secret'/>",
                         to="alice@localhost")
        self.assertEqual(error_of(hidden)[1], "item-not-found")
        ids = self.iq(self.bob, "get", f"<query xmlns='{DISCO_ITEMS}' node='{TUNE}'/>",
                      to="alice@localhost")
        self.assertEqual([i.get("name") for i in ids.iter(f"{{{DISCO_ITEMS}}}item")],
                         ["current"])


class ServerApiTests(PepFixture):
    def test_publish_and_items_as_the_server(self) -> None:
        """server.pep.publish notifies like a client publish, fires
        pep/published; server.pep.items reads (a missing node: [])."""
        seen = []
        self.server.bus.hook("pep/published", seen.append)
        self.wants(self.bob, AVATAR_META)
        owner = JID.parse("alice@localhost")
        item = etree.fromstring(f"<metadata xmlns='{AVATAR_META}'/>")
        ids = []
        self.server.pep.publish(owner, AVATAR_META, item, "hash1").addCallback(ids.append)
        self.assertEqual(ids, ["hash1"])
        self.assertEqual([(e.owner, e.node, e.item_id) for e in seen],
                         [(owner, AVATAR_META, "hash1")])
        self.assertEqual(len(events(self.bob.read())), 1)
        got = []
        self.server.pep.items(owner, AVATAR_META).addCallback(got.append)
        self.assertEqual([(i, e.tag) for i, e in got[0]],
                         [("hash1", f"{{{AVATAR_META}}}metadata")])
        self.server.pep.items(owner, "urn:none").addCallback(got.append)
        self.assertEqual(got[1], [])
        # a client publish fires it too
        self.publish(self.alice, TUNE, tune("x"))
        self.assertEqual(seen[-1].node, TUNE)

    def test_publish_for_an_offline_owner_notifies(self) -> None:
        """The server publishes for alice while she is offline (a vCard
        conversion would): bob is notified, the item is stored."""
        self.wants(self.bob, AVATAR_META)
        self.alice.stream.connectionLost(None)
        self.bob.read()
        owner = JID.parse("alice@localhost")
        item = etree.fromstring(f"<metadata xmlns='{AVATAR_META}'/>")
        self.server.pep.publish(owner, AVATAR_META, item, "h2")
        self.assertEqual(len(events(self.bob.read())), 1)
        self.assertEqual(self.server.pep_store.pep_items("alice", "localhost", AVATAR_META)
                         [0][0], "h2")
        self.assertNotIn(owner, self.server.pep._nodes)  # nothing cached for her


class BadInputTests(PepFixture):
    def test_every_bad_request_is_answered_with_an_error(self) -> None:
        """Malformed requests get XEP-0060's errors, never silence."""
        self.publish(self.alice, TUNE, tune("x"))
        cases = [
            ("get", f"<pubsub xmlns='{PUBSUB}'><items node='{TUNE}' max_items='-1'/></pubsub>",
             "bad-request", None),
            ("get", f"<pubsub xmlns='{PUBSUB}'><items node='{TUNE}' max_items='x'/></pubsub>",
             "bad-request", None),
            ("get", f"<pubsub xmlns='{PUBSUB}'><items/></pubsub>", "bad-request",
             "nodeid-required"),
            ("get", f"<pubsub xmlns='{PUBSUB}'><items node='a'/><items node='b'/></pubsub>",
             "bad-request", None),
            ("get", f"<pubsub xmlns='{PUBSUB}'><options node='{TUNE}'/></pubsub>",
             "feature-not-implemented", "unsupported"),
            ("set", f"<pubsub xmlns='{PUBSUB}'><subscribe jid='alice@localhost'/></pubsub>",
             "bad-request", "nodeid-required"),
            ("set", f"<pubsub xmlns='{PUBSUB}'><subscribe node='{TUNE}' jid='@@'/></pubsub>",
             "bad-request", "invalid-jid"),
            ("set", f"<pubsub xmlns='{OWNER}'><subscriptions node='{TUNE}'>"
                    "<subscription jid='bob@localhost' subscription='pending'/>"
                    "</subscriptions></pubsub>", "not-acceptable", None),
            ("set", f"<pubsub xmlns='{PUBSUB}'><retract node='{TUNE}'/></pubsub>",
             "bad-request", "item-required"),
            ("set", f"<pubsub xmlns='{PUBSUB}'><retract><item id='x'/></retract></pubsub>",
             "bad-request", "nodeid-required"),
            ("set", f"<pubsub xmlns='{PUBSUB}'><create/></pubsub>", "not-acceptable",
             "nodeid-required"),
            ("set", f"<pubsub xmlns='{PUBSUB}'><create node='{TUNE}'/></pubsub>", "conflict",
             None),
            ("set", (f"<pubsub xmlns='{PUBSUB}'><create node='urn:new'/><configure>"
                     f"{form(NODE_CONFIG, pubsub_access_model='nobody')}</configure></pubsub>"),
             "not-acceptable", None),
            ("set", f"<pubsub xmlns='{PUBSUB}'><nonsense/></pubsub>", "bad-request", None),
            ("set", f"<pubsub xmlns='{OWNER}'><delete/></pubsub>", "bad-request",
             "nodeid-required"),
            ("set", f"<pubsub xmlns='{OWNER}'><purge node='urn:none'/></pubsub>",
             "item-not-found", None),
            ("set", f"<pubsub xmlns='{OWNER}'><configure node='{TUNE}'/></pubsub>",
             "bad-request", None),
            ("set", (f"<pubsub xmlns='{OWNER}'><configure node='{TUNE}'>"
                     f"<x xmlns='{DATA}' type='form'/></configure></pubsub>"), "bad-request",
             None),
            ("set", f"<pubsub xmlns='{OWNER}'><affiliations node='{TUNE}'/></pubsub>",
             "feature-not-implemented", "unsupported"),
            ("get", f"<pubsub xmlns='{OWNER}'><configure/></pubsub>", "bad-request",
             "nodeid-required"),
            ("get", f"<pubsub xmlns='{OWNER}'/>", "bad-request", None),
            ("set", (f"<pubsub xmlns='{PUBSUB}'><publish node='{'n' * 2000}'><item>"
                     f"{tune('x')}</item></publish></pubsub>"), "bad-request",
             "nodeid-required"),
        ]
        for type_, body, condition, pubsub_condition in cases:
            answer = self.iq(self.alice, type_, body)
            _, got, got_pubsub = error_of(answer)
            self.assertEqual((got, got_pubsub), (condition, pubsub_condition), body)
        # and the node is still there, unchanged
        self.assertEqual(self.item_ids(self.items(self.alice, TUNE)), ["current"])

    def test_explicit_create_with_configuration(self) -> None:
        config = form(NODE_CONFIG, pubsub_access_model="open", pubsub_max_items="4")
        answer = self.iq(self.alice, "set", f"<pubsub xmlns='{PUBSUB}'><create node='urn:c'/>"
                         f"<configure>{config}</configure></pubsub>")
        self.assertEqual(answer.get("type"), "result")
        self.assertEqual(self.server.pep_store.pep_nodes("alice", "localhost")[0][1]
                         ["access_model"], "open")


class WithCapsModuleTests(PepFixture):
    """The whole way: bob's presence carries XEP-0115 caps, the caps
    module asks his client, PEP notifies on what it learnt."""

    def test_notify_learnt_from_real_caps(self) -> None:
        from convergence.xmpp.features.caps import ver
        from convergence.xmpp.features.disco import DiscoInfo

        self.publish(self.alice, AVATAR_META, f"<metadata xmlns='{AVATAR_META}'/>", "first")
        features = (DISCO_INFO, "http://jabber.org/protocol/caps", f"{AVATAR_META}+notify")
        info = DiscoInfo((("client", "pc", "", "bob's client"),), features)
        ver_ = ver(info)
        self.bob.read()
        self.bob.send("<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1'"
                      f" node='urn:bob' ver='{ver_}'/></presence>")
        query = [e for e in self.bob.read() if e.find(f"{{{DISCO_INFO}}}query") is not None]
        self.assertEqual(len(query), 1)
        asked = query[0]
        body = "".join(f"<feature var='{f}'/>" for f in features)
        self.bob.send(f"<iq type='result' id='{asked.get('id')}' to='{asked.get('from')}'>"
                      f"<query xmlns='{DISCO_INFO}' node='{asked[0].get('node')}'>"
                      f"<identity category='client' type='pc' name=\"bob's client\"/>{body}"
                      "</query></iq>")
        self.assertEqual(self.bob.stream.client_features, frozenset(features))
        got = events(self.bob.read())  # the last item, now that +notify is known
        self.assertEqual([e.find(f".//{{{EVENT}}}item").get("id") for e in got], ["first"])
        self.publish(self.alice, AVATAR_META, f"<metadata xmlns='{AVATAR_META}'/>", "second")
        got = events(self.bob.read())
        self.assertEqual([e.find(f".//{{{EVENT}}}item").get("id") for e in got], ["second"])


class AccountRemovedTests(PepFixture):
    def test_memory_dropped_with_the_account(self) -> None:
        from convergence.xmpp.events import AccountEvent

        self.publish(self.alice, TUNE, tune("x"),
                     options=form(PUBLISH_OPTIONS, pubsub_persist_items="false"))
        owner = JID.parse("alice@localhost")
        self.assertIn(owner, self.server.pep._nodes)
        self.server.bus.fire("account/removed", AccountEvent("alice", "localhost"))
        self.assertNotIn(owner, self.server.pep._nodes)
        self.assertEqual(self.server.pep._volatile, {})
