"""The c2s extension points feature modules build on: outgoing filters,
nonzas, the bound event, computed stream features, account features."""

from __future__ import annotations

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from convergence.xmpp.c2s import NonzaEvent
from convergence.xmpp.features import Feature, builtin_features
from tests.xmpphelpers import Client, make_server

DISCO = "{http://jabber.org/protocol/disco#info}"


class ExtensionPointTests(SynchronousTestCase):
    def setUp(self) -> None:
        extra = Feature(name="test", spec="XEP-9999", version="0.1",
                        account_features=("urn:example:account",))
        self.server, self.clock = make_server(
            self.mktemp(), features=[*builtin_features(), extra])
        self.alice = Client(self.server)
        self.alice.login("alice", "secret", "phone")
        self.bob = Client(self.server)
        self.bob.login("bob", "hunter2", "laptop")

    def test_filter_changes_or_holds(self) -> None:
        """A filter may rewrite an outgoing stanza or hold it back."""
        held: list[etree._Element] = []

        def hold_chat(stanza: etree._Element) -> etree._Element | None:
            if stanza.get("type") == "chat":
                held.append(stanza)
                return None
            stanza.set("id", "rewritten")
            return stanza

        self.bob.stream.filters.append(hold_chat)
        self.alice.send("<message to='bob@localhost/laptop' type='chat'><body>1</body></message>")
        self.alice.send("<message to='bob@localhost/laptop' type='normal' id='x'><body>2</body></message>")
        got = self.bob.read()
        self.assertEqual([m.get("id") for m in got], ["rewritten"])
        self.assertEqual([m.findtext("{jabber:client}body") for m in held], ["1"])

    def test_nonza_is_offered_to_its_namespace(self) -> None:
        """A top-level element that is not a stanza goes to
        nonza/<namespace>; unclaimed, it is still a stream error."""
        seen: list[NonzaEvent] = []
        self.server.bus.hook("nonza/urn:example:n",
                             lambda e: seen.append(e) or True)
        self.alice.send("<ping xmlns='urn:example:n'/>")
        self.assertEqual([e.stream for e in seen], [self.alice.stream])
        self.assertEqual(etree.QName(seen[0].element).localname, "ping")
        self.assertFalse(self.alice.read())
        self.alice.send("<other xmlns='urn:example:unclaimed'/>")
        error = self.alice.read()[0]
        self.assertIsNotNone(error.find(
            "{urn:ietf:params:xml:ns:xmpp-streams}unsupported-stanza-type"))

    def test_bound_event_and_computed_stream_feature(self) -> None:
        """c2s/bound fires after binding; a callable stream feature is
        asked per stream and may offer nothing."""
        bound: list[str] = []
        self.server.bus.hook("c2s/bound", lambda s: bound.append(str(s.jid)))

        def feature(stream):
            element = etree.Element("{urn:example:f}f", nsmap={None: "urn:example:f"})
            element.set("host", stream.host)
            return element

        self.server.stream_features.append(feature)
        self.server.stream_features.append(lambda stream: None)
        carol = Client(self.server)
        self.server.accounts.add("carol@localhost", "pw")
        carol.login("carol", "pw", "desk")
        features = [e for e in carol.elements
                    if etree.QName(e).localname == "features"][-1]
        self.assertEqual(features.find("{urn:example:f}f").get("host"), "localhost")
        self.assertEqual(bound, ["carol@localhost/desk"])

    def test_account_features_in_bare_disco(self) -> None:
        self.alice.send("<iq type='get' id='d' to='bob@localhost'>"
                        "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
        reply = self.alice.read()[0]
        self.assertEqual(reply.get("type"), "result")
        vars_ = {f.get("var") for f in reply.iter(f"{DISCO}feature")}
        self.assertIn("urn:example:account", vars_)
