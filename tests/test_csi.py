"""XEP-0352 Client State Indication: the stream feature, the nonzas, what
an inactive client gets at once and what waits, the flushes."""

from __future__ import annotations

from collections import deque

from lxml import etree

from convergence.xmpp.features.csi import important
from tests.imhelpers import ImFixture, of
from tests.xmpphelpers import HEADER, Client, make_server

CSI = "urn:xmpp:csi:0"
INACTIVE = f"<inactive xmlns='{CSI}'/>"
ACTIVE = f"<active xmlns='{CSI}'/>"
CHATSTATES = "http://jabber.org/protocol/chatstates"


def _el(xml: str) -> etree._Element:
    return etree.fromstring(xml.replace("<message", "<message xmlns='jabber:client'", 1)
                            .replace("<presence", "<presence xmlns='jabber:client'", 1)
                            .replace("<iq", "<iq xmlns='jabber:client'", 1))


class FeatureTests(ImFixture):
    def test_offered_after_auth_only(self) -> None:
        client = Client(self.server)
        client.send(HEADER)
        [features] = client.read()
        self.assertIsNone(features.find(f"{{{CSI}}}csi"))
        features_after_auth = [e for e in self.alice.elements
                               if etree.QName(e).localname == "features"][-1]
        self.assertIsNotNone(features_after_auth.find(f"{{{CSI}}}csi"))

    def test_state_set_by_nonzas(self) -> None:
        self.alice.send(INACTIVE)
        self.assertEqual(self.alice.stream.client_state, "inactive")
        self.alice.send(ACTIVE)
        self.assertEqual(self.alice.stream.client_state, "active")
        self.assertEqual(self.alice.read(), [])  # nonzas are not answered

    def test_unknown_csi_element_is_stream_error(self) -> None:
        self.alice.send(f"<sleepy xmlns='{CSI}'/>")
        [error] = self.alice.read()
        self.assertIsNotNone(error.find(
            "{urn:ietf:params:xml:ns:xmpp-streams}unsupported-stanza-type"))


class FilterTests(ImFixture):
    def setUp(self) -> None:
        super().setUp()
        self.subscribe_both()
        self.alice.available()
        self.bob.available()
        self.alice.read()
        self.bob.read()
        self.alice.send(INACTIVE)

    def test_presence_held_latest_per_full_jid_then_flushed_on_active(self) -> None:
        self.bob.send("<presence><show>away</show></presence>")
        self.bob.send("<presence><show>xa</show></presence>")
        laptop = self.client("bob", "hunter2", "laptop2")
        laptop.available()
        self.bob.send("<presence><show>dnd</show></presence>")
        self.assertEqual(self.alice.read(), [])
        self.assertEqual(len(self.server.csi.held(self.alice.stream)), 2)
        self.alice.send(ACTIVE)
        got = self.alice.read()
        self.assertEqual([(p.get("from"), p.findtext("{jabber:client}show")) for p in got],
                         [("bob@localhost/laptop2", None), ("bob@localhost/laptop", "dnd")])
        self.assertIsNotNone(got[0].find("{urn:xmpp:delay}delay"))
        self.assertEqual(self.server.csi.held(self.alice.stream), [])

    def test_chat_state_held_body_flushes_in_order(self) -> None:
        self.bob.send("<presence><show>away</show></presence>")
        self.bob.send(f"<message to='alice@localhost' type='chat'><composing xmlns='{CHATSTATES}'/>"
                      "</message>")
        self.assertEqual(self.alice.read(), [])
        self.bob.send("<message to='alice@localhost' type='chat' id='m'><body>hi</body></message>")
        got = self.alice.read()
        self.assertEqual([etree.QName(e).localname for e in got],
                         ["presence", "message", "message"])
        self.assertIsNotNone(got[1].find(f"{{{CHATSTATES}}}composing"))
        self.assertEqual(got[2].get("id"), "m")
        self.assertIsNone(got[2].find("{urn:xmpp:delay}delay"))  # sent at once

    def test_iq_and_subscription_request_pass(self) -> None:
        self.bob.send("<iq type='get' id='v' to='alice@localhost/phone'>"
                      "<query xmlns='jabber:iq:version'/></iq>")
        self.assertEqual(len(of(self.alice.read(), "iq", id="v")), 1)
        carol = self.client("carol", "carol-pw", "pc")
        carol.send("<presence to='alice@localhost' type='subscribe'/>")
        self.assertEqual(len(of(self.alice.read(), "presence", type="subscribe")), 1)

    def test_limit_flushes(self) -> None:
        server, _ = make_server(self.mktemp(), csi_max_held=3)
        alice, bob = Client(server), Client(server)
        alice.login("alice", "secret", "phone")
        bob.login("bob", "hunter2", "laptop")
        alice.send(INACTIVE)
        for n in range(5):
            bob.send(f"<message to='alice@localhost/phone' id='{n}'>"
                     f"<paused xmlns='{CHATSTATES}'/></message>")
            if n == 1:
                self.assertEqual(alice.read(), [])
        self.assertEqual([m.get("id") for m in alice.read()], ["0", "1", "2"])
        self.assertEqual(len(server.csi.held(alice.stream)), 2)

    def test_later_filters_still_apply_on_flush(self) -> None:
        seen: list[str] = []

        def later(stanza: etree._Element) -> etree._Element:
            seen.append(stanza.get("id") or "")
            return stanza

        self.alice.stream.filters.append(later)
        self.bob.send(f"<message to='alice@localhost' id='c'><gone xmlns='{CHATSTATES}'/></message>")
        self.assertEqual(seen, [])
        self.alice.send(ACTIVE)
        self.assertEqual(seen, ["c"])

    def test_closed_stream_forgotten(self) -> None:
        self.bob.send("<presence><show>away</show></presence>")
        self.alice.stream.connectionLost(None)
        self.assertEqual(self.server.csi.held(self.alice.stream), [])


class ImportanceTests(ImFixture):
    def test_rules(self) -> None:
        cases = [
            ("<iq type='result' id='x'/>", True),
            ("<presence/>", False),
            ("<presence type='unavailable'/>", False),
            ("<presence type='subscribe'/>", True),
            ("<presence type='unsubscribed'/>", True),
            ("<message type='chat'><body>x</body></message>", True),
            (f"<message type='chat'><active xmlns='{CHATSTATES}'/></message>", False),
            ("<message type='error'/>", True),
            ("<message type='headline'><body>news</body></message>", False),
            ("<message><received xmlns='urn:xmpp:receipts' id='1'/></message>", False),
            ("<message type='groupchat'><subject>topic</subject></message>", True),
            ("<message><sent xmlns='urn:xmpp:carbons:2'/></message>", True),
            (("<message><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
              "<message xmlns='jabber:client'><body>b</body></message></forwarded></received>"
              "</message>"), True),
            (("<message><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
              f"<message xmlns='jabber:client'><paused xmlns='{CHATSTATES}'/></message>"
              "</forwarded></received></message>"), False),
            ("<message><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>", True),
            (("<message><x xmlns='http://jabber.org/protocol/muc#user'><invite from='a@b'/></x>"
              "</message>"), True),
        ]
        for xml, expected in cases:
            self.assertEqual(important(_el(xml)), expected, xml)


class ConfigTests(ImFixture):
    def test_limits_from_toml(self) -> None:
        """Both limits of this issue are read and checked at load."""
        from pathlib import Path

        from convergence.config import ConfigError, load_config

        path = Path(self.mktemp())
        path.write_text("[xmpp]\ncsi_max_held = 10\nmax_blocklist_items = 5\n")
        config = load_config(str(path))
        self.assertEqual((config.xmpp.csi_max_held, config.xmpp.max_blocklist_items), (10, 5))
        for bad in ("csi_max_held = 0", "max_blocklist_items = 0", "csi_max_held = 'x'"):
            path.write_text(f"[xmpp]\n{bad}\n")
            self.assertRaises(ConfigError, load_config, str(path))


class StreamManagementTests(ImFixture):
    """What CSI holds joins XEP-0198's unacknowledged queue when the
    connection goes or the session ends, so nothing held is lost."""

    def setUp(self) -> None:
        from tests.test_sm import SM, sm

        super().setUp()
        self.subscribe_both()
        self.alice.available()
        self.bob.available()
        self.alice.read()
        self.bob.read()
        self.alice.send(f"<enable xmlns='{SM}' resume='true'/>")
        self.previd = sm(self.alice.read(), "enabled")[0].get("id")
        self.alice.send(INACTIVE)

    def receipt(self, n: int) -> None:
        self.bob.send(f"<message to='alice@localhost' type='chat' id='r{n}'>"
                      f"<received xmlns='urn:xmpp:receipts' id='x{n}'/></message>")

    def test_held_stanzas_are_resent_on_resumption(self) -> None:
        from twisted.internet.error import ConnectionLost
        from twisted.python.failure import Failure

        from tests.test_sm import SM, authenticate, sm

        self.receipt(1)
        self.assertEqual(of(self.alice.read(), "message"), [])  # held
        session = self.alice.stream
        self.assertEqual(self.server.sm.sessions[session].queue, deque())
        session.connectionLost(Failure(ConnectionLost()))  # hibernates
        self.assertEqual(len(self.server.sm.sessions[session].queue), 1)
        again = Client(self.server)
        authenticate(again, "alice", "secret")
        again.send(f"<resume xmlns='{SM}' previd='{self.previd}' h='0'/>")
        got = again.read()
        self.assertEqual(len(sm(got, "resumed")), 1)
        self.assertEqual([m.get("id") for m in of(got, "message")], ["r1"])

    def test_held_message_stored_offline_when_the_session_ends(self) -> None:
        self.receipt(2)
        self.alice.send("</stream:stream>")  # a clean close: the session ends
        self.alice.stream.connectionLost(None)
        stored = [etree.fromstring(m.stanza).get("id")
                  for m in self.server.im_store.messages("alice", "localhost", 10)]
        self.assertEqual(stored, ["r2"])
