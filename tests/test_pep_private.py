"""XEP-0049 Private XML Storage on StringTransport."""

from __future__ import annotations

from dataclasses import replace

from lxml import etree

from tests.pephelpers import PepFixture, error_of

PRIVATE = "jabber:iq:private"


class PrivateStorageTests(PepFixture):
    def get(self, client, inner: str, to: str | None = None) -> etree._Element:
        return self.iq(client, "get", f"<query xmlns='{PRIVATE}'>{inner}</query>", to)

    def set(self, client, inner: str, to: str | None = None) -> etree._Element:
        return self.iq(client, "set", f"<query xmlns='{PRIVATE}'>{inner}</query>", to)

    def test_store_and_read_back(self) -> None:
        """A set stores the element; a get of its name and namespace
        returns it; an unknown one is echoed empty."""
        stored = "<prefs xmlns='urn:x:prefs'><colour>blue</colour></prefs>"
        self.assertEqual(self.set(self.alice, stored).get("type"), "result")
        answer = self.get(self.alice, "<prefs xmlns='urn:x:prefs'/>")
        self.assertEqual(answer.get("type"), "result")
        self.assertEqual(answer.findtext(".//{urn:x:prefs}colour"), "blue")
        other = self.get(self.alice, "<other xmlns='urn:x:prefs'/>")
        query = other.find(f"{{{PRIVATE}}}query")
        self.assertEqual([c.tag for c in query], ["{urn:x:prefs}other"])
        self.assertEqual(len(query[0]), 0)
        # the same name in another namespace is another element
        self.assertEqual(len(self.get(self.alice, "<prefs xmlns='urn:y'/>")
                             .find(f"{{{PRIVATE}}}query")[0]), 0)
        # bob's are his own
        self.assertIsNone(self.get(self.bob, "<prefs xmlns='urn:x:prefs'/>")
                          .find(".//{urn:x:prefs}colour"))
        # with an explicit to of the own bare JID
        self.assertEqual(self.get(self.alice, "<prefs xmlns='urn:x:prefs'/>",
                                  to="alice@localhost").findtext(".//{urn:x:prefs}colour"),
                         "blue")

    def test_empty_set_removes(self) -> None:
        self.set(self.alice, "<prefs xmlns='urn:x'><a/></prefs>")
        self.set(self.alice, "<prefs xmlns='urn:x'/>")
        self.assertIsNone(self.server.pep_store.private_data("alice", "localhost",
                                                             "urn:x", "prefs"))

    def test_refusals(self) -> None:
        """Another account's data: forbidden; jabber:* namespaces:
        not-acceptable; not exactly one element: bad-request."""
        self.assertEqual(error_of(self.get(self.bob, "<prefs xmlns='urn:x'/>",
                                           to="alice@localhost"))[1], "forbidden")
        self.assertEqual(error_of(self.set(self.bob, "<prefs xmlns='urn:x'>1</prefs>",
                                           to="alice@localhost"))[1], "forbidden")
        self.assertEqual(error_of(self.get(self.alice, "<query xmlns='jabber:iq:roster'/>"))
                         [:2], ("modify", "not-acceptable"))
        self.assertEqual(error_of(self.set(self.alice, "<x xmlns='jabber:x:data'/>"))[1],
                         "not-acceptable")
        self.assertEqual(error_of(self.get(self.alice, ""))[1], "bad-request")
        self.assertEqual(error_of(self.set(self.alice, ""))[1], "not-acceptable")
        self.assertEqual(error_of(self.get(self.alice, "<a xmlns='u'/><b xmlns='u'/>"))[1],
                         "bad-request")

    def test_set_of_several_elements(self) -> None:
        """XEP-0049 2.1: a set may carry several elements; all are stored."""
        answer = self.set(self.alice, "<a xmlns='urn:u'>1</a><b xmlns='urn:u'>2</b>")
        self.assertEqual(answer.get("type"), "result")
        self.assertEqual(self.get(self.alice, "<b xmlns='urn:u'/>").findtext(".//{urn:u}b"),
                         "2")

    def test_limits(self) -> None:
        """Bigger than xmpp.private_max_size: not-acceptable; a new
        element beyond xmpp.private_max_elements: resource-constraint."""
        self.server.config = replace(self.server.config, private_max_size=1024,
                                     private_max_elements=2)
        big = "<big xmlns='urn:x'>" + "a" * 2000 + "</big>"
        self.assertEqual(error_of(self.set(self.alice, big))[1], "not-acceptable")
        self.assertEqual(self.set(self.alice, "<a xmlns='urn:x'>1</a>").get("type"), "result")
        self.assertEqual(self.set(self.alice, "<b xmlns='urn:x'>1</b>").get("type"), "result")
        self.assertEqual(error_of(self.set(self.alice, "<c xmlns='urn:x'>1</c>"))[1],
                         "resource-constraint")
        # replacing an existing one is fine
        self.assertEqual(self.set(self.alice, "<a xmlns='urn:x'>2</a>").get("type"), "result")
