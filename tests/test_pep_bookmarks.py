"""XEP-0402 bookmarks and their XEP-0048 view through XEP-0049."""

from __future__ import annotations

from lxml import etree

from convergence.xmpp.pep.bookmarks import BOOKMARKS, LEGACY
from tests.pephelpers import DATA, EVENT, OWNER, PUBSUB, PepFixture, events, form

PRIVATE = "jabber:iq:private"
PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"


class BookmarksTests(PepFixture):
    def publish_bookmark(self, room: str, name: str, nick: str | None = None,
                         extra: str = "") -> etree._Element:
        nick_el = f"<nick>{nick}</nick>" if nick else ""
        options = form(PUBLISH_OPTIONS, pubsub_persist_items="true",
                       pubsub_access_model="whitelist", pubsub_max_items="max",
                       pubsub_send_last_published_item="never")
        return self.publish(self.alice, BOOKMARKS,
                            f"<conference xmlns='{BOOKMARKS}' name='{name}' autojoin='true'>"
                            f"{nick_el}{extra}</conference>", room, options)

    def legacy(self, client) -> etree._Element:
        answer = self.iq(client, "get", f"<query xmlns='{PRIVATE}'>"
                         f"<storage xmlns='{LEGACY}'/></query>")
        self.assertEqual(answer.get("type"), "result", etree.tostring(answer))
        return answer.find(f"{{{PRIVATE}}}query/{{{LEGACY}}}storage")

    def set_legacy(self, client, conferences: str) -> etree._Element:
        return self.iq(client, "set", f"<query xmlns='{PRIVATE}'>"
                       f"<storage xmlns='{LEGACY}'>{conferences}</storage></query>")

    def test_pep_bookmarks_seen_through_private_storage(self) -> None:
        self.assertEqual(self.publish_bookmark("room@conference.localhost", "The Room",
                                               "al").get("type"), "result")
        self.publish_bookmark("other@conference.localhost", "Other")
        storage = self.legacy(self.alice)
        conferences = {c.get("jid"): c for c in storage.findall(f"{{{LEGACY}}}conference")}
        self.assertEqual(sorted(conferences), ["other@conference.localhost",
                                               "room@conference.localhost"])
        room = conferences["room@conference.localhost"]
        self.assertEqual((room.get("name"), room.get("autojoin"),
                          room.findtext(f"{{{LEGACY}}}nick")), ("The Room", "true", "al"))

    def test_private_storage_set_becomes_pep_items(self) -> None:
        """A XEP-0048 client's set publishes new rooms and retracts gone
        ones, with notifications to +notify resources; an unchanged
        bookmark keeps its item and its extensions."""
        self.publish_bookmark("keep@c.localhost", "Keep",
                              extra="<extensions><x xmlns='urn:ext'/></extensions>")
        self.publish_bookmark("gone@c.localhost", "Gone")
        self.wants(self.alice, BOOKMARKS)
        self.alice.read()
        answer = self.set_legacy(self.alice, "<conference jid='keep@c.localhost' name='Keep'"
                                 " autojoin='1'/><conference jid='new@c.localhost' name='New'>"
                                 "<nick>al</nick><password>pw</password></conference>"
                                 "<conference jid='not a jid@' name='bad'/>")
        self.assertEqual(answer.get("type"), "result", etree.tostring(answer))
        got = events(self.last_read)
        published = [e.find(f".//{{{EVENT}}}item").get("id") for e in got
                     if e.find(f".//{{{EVENT}}}item") is not None]
        retracted = [e.find(f".//{{{EVENT}}}retract").get("id") for e in got
                     if e.find(f".//{{{EVENT}}}retract") is not None]
        self.assertEqual((published, retracted), (["new@c.localhost"], ["gone@c.localhost"]))
        items = self.items(self.alice, BOOKMARKS)
        by_id = {i.get("id"): i for i in items.iter(f"{{{PUBSUB}}}item")}
        self.assertEqual(sorted(by_id), ["keep@c.localhost", "new@c.localhost"])
        self.assertIsNotNone(by_id["keep@c.localhost"].find(".//{urn:ext}x"))
        new = by_id["new@c.localhost"].find(f"{{{BOOKMARKS}}}conference")
        self.assertEqual((new.get("name"), new.get("autojoin"),
                          new.findtext(f"{{{BOOKMARKS}}}nick"),
                          new.findtext(f"{{{BOOKMARKS}}}password")),
                         ("New", "false", "al", "pw"))
        # the node is private (XEP-0402 5.2)
        config = self.iq(self.alice, "get", f"<pubsub xmlns='{OWNER}'>"
                         f"<configure node='{BOOKMARKS}'/></pubsub>")
        fields = {f.get("var"): f.findtext(f"{{{DATA}}}value")
                  for f in config.iter(f"{{{DATA}}}field")}
        self.assertEqual(fields["pubsub#access_model"], "whitelist")
        self.assertEqual(fields["pubsub#send_last_published_item"], "never")
        # and bob never sees it
        self.assertEqual(self.items(self.bob, BOOKMARKS, to="alice@localhost")
                         .get("type"), "error")

    def test_first_legacy_set_creates_the_node(self) -> None:
        self.assertEqual(len(self.legacy(self.alice)), 0)
        self.set_legacy(self.alice, "<conference jid='r@c.localhost' name='R'/>")
        self.assertEqual([c.get("jid") for c in self.legacy(self.alice)], ["r@c.localhost"])
        self.set_legacy(self.alice, "")
        self.assertEqual(len(self.legacy(self.alice)), 0)
        self.assertEqual(self.item_ids(self.items(self.alice, BOOKMARKS)), [])

    def test_url_bookmarks_kept(self) -> None:
        """XEP-0048's <url/> bookmarks have no XEP-0402 item: they are kept
        beside the node, come back after the conferences (also through the
        storage:bookmarks PEP node), and go when a set leaves them out."""
        url = "<url name='Docs' url='https://example.org/'/>"
        answer = self.set_legacy(self.alice, f"<conference jid='r@c.localhost' name='R'/>{url}")
        self.assertEqual(answer.get("type"), "result", etree.tostring(answer))
        storage = self.legacy(self.alice)
        self.assertEqual([etree.QName(c).localname for c in storage], ["conference", "url"])
        self.assertEqual(storage.find(f"{{{LEGACY}}}url").get("url"), "https://example.org/")
        self.assertEqual(self.item_ids(self.items(self.alice, BOOKMARKS)), ["r@c.localhost"])
        pep_view = self.items(self.alice, LEGACY)
        self.assertEqual([u.get("name") for u in pep_view.iter(f"{{{LEGACY}}}url")], ["Docs"])
        self.assertEqual(self.items(self.bob, LEGACY, to="alice@localhost").get("type"),
                         "error")
        self.set_legacy(self.alice, "<conference jid='r@c.localhost' name='R'/>")
        self.assertEqual([etree.QName(c).localname for c in self.legacy(self.alice)],
                         ["conference"])

    def test_bookmarks_node_private_without_publish_options(self) -> None:
        """A client that forgets publish-options still gets a private node."""
        self.publish(self.alice, BOOKMARKS,
                     f"<conference xmlns='{BOOKMARKS}' name='R'/>", "r@c.localhost")
        answer = self.items(self.bob, BOOKMARKS, to="alice@localhost")
        self.assertEqual(answer.get("type"), "error")
        self.assertEqual(self.item_ids(self.items(self.alice, BOOKMARKS)), ["r@c.localhost"])

    def test_legacy_pep_node(self) -> None:
        """XEP-0048 1.1 over PEP: the storage:bookmarks node is a view of
        the XEP-0402 node, both ways."""
        self.publish_bookmark("a@c.localhost", "A")
        got = self.items(self.alice, LEGACY)
        self.assertEqual(self.item_ids(got), ["current"])
        self.assertEqual([c.get("jid") for c in got.iter(f"{{{LEGACY}}}conference")],
                         ["a@c.localhost"])
        answer = self.publish(self.alice, LEGACY, f"<storage xmlns='{LEGACY}'>"
                              "<conference jid='b@c.localhost' name='B'/></storage>", "current")
        self.assertEqual(self.item_ids(answer), ["current"])
        self.assertEqual(self.item_ids(self.items(self.alice, BOOKMARKS)), ["b@c.localhost"])
        refused = self.items(self.bob, LEGACY, to="alice@localhost")
        self.assertEqual(refused.get("type"), "error")

    def test_legacy_notifications(self) -> None:
        """A resource wanting storage:bookmarks+notify gets the whole list
        after a XEP-0402 change, and once after a XEP-0048 write."""
        self.alice.stream.client_features = frozenset([f"{LEGACY}+notify"])
        self.publish_bookmark("a@c.localhost", "A")
        got = events(self.last_read)
        self.assertEqual(len(got), 1)
        items = got[0].find(f"{{{EVENT}}}items")
        self.assertEqual(items.get("node"), LEGACY)
        self.assertEqual([c.get("jid") for c in items.iter(f"{{{LEGACY}}}conference")],
                         ["a@c.localhost"])
        self.set_legacy(self.alice, "<conference jid='b@c.localhost'/>"
                        "<conference jid='c@c.localhost'/>")
        got = events(self.last_read)
        self.assertEqual(len(got), 1)
        self.assertEqual(sorted(c.get("jid") for c in got[0].iter(f"{{{LEGACY}}}conference")),
                         ["b@c.localhost", "c@c.localhost"])
