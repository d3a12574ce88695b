"""Stanzas between the client and the server namespace."""

from __future__ import annotations

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from convergence.xmpp.s2s.namespaces import to_client, to_server

CARBON = (b'<message xmlns="jabber:client" to="a@b.test" from="c@d.test/r" xml:lang="en">'
          b'<body>hi &amp; x</body><sent xmlns="urn:xmpp:carbons:2">'
          b'<forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client">'
          b'<body>in</body></message></forwarded></sent></message>')


class NamespaceTests(SynchronousTestCase):
    def test_to_server_keeps_forwarded_client_stanzas(self) -> None:
        out = etree.tostring(to_server(etree.fromstring(CARBON)))
        self.assertTrue(out.startswith(b'<message xmlns="jabber:server"'), out)
        self.assertIn(b'<forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client">',
                      out)
        self.assertIn(b"<body>hi &amp; x</body>", out)
        self.assertIn(b'xml:lang="en"', out)

    def test_round_trip(self) -> None:
        stanza = etree.fromstring(CARBON)
        back = to_client(to_server(stanza))
        self.assertEqual(etree.tostring(back), etree.tostring(stanza))
        self.assertEqual(back.find("{jabber:client}body").text, "hi & x")

    def test_already_in_namespace(self) -> None:
        stanza = etree.fromstring(CARBON)
        self.assertIs(to_client(stanza), stanza)
