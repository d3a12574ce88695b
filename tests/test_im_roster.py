"""Rosters (RFC 6121 section 2) on StringTransport."""

from __future__ import annotations

from lxml import etree

from tests.imhelpers import ROSTER, ImFixture, items, of
from tests.xmpphelpers import Client


def stanza_error(element) -> str | None:
    error = element.find("{jabber:client}error")
    return None if error is None else error[0].tag.split("}")[1]


class RosterTests(ImFixture):
    def set_item(self, client: Client, body: str, id_: str = "s1"):
        client.send(f"<iq type='set' id='{id_}'><query xmlns='{ROSTER}'>{body}</query></iq>")
        return client.read()

    def test_empty_roster(self) -> None:
        """A new user's roster is empty, with a version."""
        result = self.roster(self.alice)
        self.assertEqual(result.get("type"), "result")
        query = result.find(f"{{{ROSTER}}}query")
        self.assertEqual((len(query), query.get("ver")), (0, "0"))

    def test_set_pushes_and_answers(self) -> None:
        """A set is pushed to interested resources (not the others), then answered."""
        self.roster(self.alice)
        other = self.client("alice", "secret", "tablet")
        self.roster(other)
        third = self.client("alice", "secret", "watch")  # never asked: no push
        got = self.set_item(self.alice, "<item jid='carol@localhost' name='Carol'>"
                                        "<group>Friends</group></item>")
        [push] = of(got, "iq", type="set")
        self.assertEqual(items(push), {"carol@localhost": {
            "jid": "carol@localhost", "name": "Carol", "subscription": "none",
            "groups": ["Friends"]}})
        self.assertEqual(push.find(f"{{{ROSTER}}}query").get("ver"), "1")
        self.assertEqual(len(of(got, "iq", id="s1", type="result")), 1)
        self.assertEqual(len(of(other.read(), "iq", type="set")), 1)
        self.assertEqual(third.read(), [])
        self.assertEqual(list(items(self.roster(self.alice))), ["carol@localhost"])

    def test_versioning(self) -> None:
        """2.6: the current ver gets an empty result; an old one the roster."""
        self.set_item(self.alice, "<item jid='carol@localhost'/>")
        ver = self.roster(self.alice).find(f"{{{ROSTER}}}query").get("ver")
        self.assertEqual(len(self.roster(self.alice, ver)), 0)
        full = self.roster(self.alice, "0")
        self.assertEqual(list(items(full)), ["carol@localhost"])

    def test_update_keeps_subscription(self) -> None:
        """Renaming a contact keeps its subscription state."""
        self.subscribe_both()
        self.set_item(self.alice, "<item jid='bob@localhost' name='Bobby'/>")
        self.assertEqual(items(self.roster(self.alice))["bob@localhost"]["subscription"],
                         "both")

    def test_remove_cancels_subscriptions(self) -> None:
        """2.5: remove pushes subscription=remove and cancels both ways."""
        self.subscribe_both()
        self.roster(self.alice)
        got = self.set_item(self.alice, "<item jid='bob@localhost' subscription='remove'/>")
        [push] = of(got, "iq", type="set")
        self.assertEqual(items(push)["bob@localhost"]["subscription"], "remove")
        self.assertEqual(items(self.roster(self.bob))["alice@localhost"]["subscription"],
                         "none")
        self.assertNotIn("bob@localhost", items(self.roster(self.alice)))

    def test_remove_unknown(self) -> None:
        got = self.set_item(self.alice, "<item jid='nobody@localhost' subscription='remove'/>")
        self.assertEqual(stanza_error(of(got, "iq", id="s1")[0]), "item-not-found")

    def test_errors(self) -> None:
        """2.3.3: the RFC's errors, and nothing stored."""
        long = "x" * 2000
        cases = {
            "<item jid='a@localhost'/><item jid='b@localhost'/>": "bad-request",
            "": "bad-request",
            "<item jid='@bad'/>": "jid-malformed",
            f"<item jid='a@localhost' name='{long}'/>": "not-acceptable",
            "<item jid='a@localhost'><group></group></item>": "not-acceptable",
            "<item jid='a@localhost'><group>g</group><group>g</group></item>":
                "bad-request",
        }
        for n, (body, condition) in enumerate(cases.items()):
            got = self.set_item(self.alice, body, f"e{n}")
            self.assertEqual(stanza_error(of(got, "iq", id=f"e{n}")[0]), condition, body)
        self.assertEqual(items(self.roster(self.alice)), {})

    def test_roster_limit(self) -> None:
        """Over xmpp.max_roster_items: resource-constraint."""
        from dataclasses import replace
        self.server.config = replace(self.server.config, max_roster_items=2)
        for n in range(2):
            self.set_item(self.alice, f"<item jid='c{n}@localhost'/>")
        got = self.set_item(self.alice, "<item jid='c9@localhost'/>", "full")
        self.assertEqual(stanza_error(of(got, "iq", id="full")[0]), "resource-constraint")

    def test_other_users_roster_forbidden(self) -> None:
        """2.1.5: nobody reads or changes another user's roster."""
        self.set_item(self.bob, "<item jid='carol@localhost'/>")
        self.alice.send(f"<iq type='get' id='x' to='bob@localhost'><query xmlns='{ROSTER}'/></iq>")
        reply = of(self.alice.read(), "iq", id="x")[0]
        self.assertEqual(stanza_error(reply), "forbidden")
        self.assertNotIn(b"carol", etree.tostring(reply))

    def test_stream_features(self) -> None:
        """Roster versioning and pre-approval are announced after SASL."""
        client = Client(self.server)
        client.login()
        features = [e for e in client.elements if e.tag.endswith("features")][-1]
        names = {child.tag for child in features}
        self.assertIn("{urn:xmpp:features:rosterver}ver", names)
        self.assertIn("{urn:xmpp:features:pre-approval}sub", names)

    def test_persisted(self) -> None:
        """Items survive the cache: once the user is gone the roster is
        forgotten, and a new login reads it from the store."""
        self.set_item(self.alice, "<item jid='carol@localhost' name='C'/>")
        owner = self.alice.stream.jid.bare
        self.alice.stream.connectionLost(None)
        self.assertIsNone(self.server.rosters.cached(owner))
        again = self.client("alice", "secret", "other")
        self.assertEqual(items(self.roster(again))["carol@localhost"]["name"], "C")
