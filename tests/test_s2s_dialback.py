"""XEP-0185 dialback keys and XEP-0220 elements."""

from __future__ import annotations

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from convergence.xmpp.s2s import dialback
from convergence.xmpp.s2s.dialback import DialbackKeys


class KeyTests(SynchronousTestCase):
    def test_xep_0185_example(self) -> None:
        """The key of XEP-0185's worked example (section 3)."""
        keys = DialbackKeys("s3cr3tf0rd14lb4ck")
        self.assertEqual(
            keys.generate("example.net", "example.com", "D60000229F"),
            "008c689ff366b50c63d69a3e2d2c0e0e1f8404b0118eb688a0102c87cb691bdc")

    def test_verify(self) -> None:
        """Only the same secret, domains (in order) and stream id verify."""
        keys = DialbackKeys("one")
        key = keys.generate("r.test", "o.test", "id1")
        self.assertTrue(keys.verify("r.test", "o.test", "id1", key))
        self.assertTrue(keys.verify("r.test", "o.test", "id1", f"  {key}\n"))
        self.assertFalse(keys.verify("o.test", "r.test", "id1", key))
        self.assertFalse(keys.verify("r.test", "o.test", "id2", key))
        self.assertFalse(keys.verify("r.test", "o.test", "id1", ""))
        self.assertFalse(DialbackKeys("two").verify("r.test", "o.test", "id1", key))

    def test_generated_secret(self) -> None:
        """Without a configured secret each server makes its own."""
        a, b = DialbackKeys(), DialbackKeys()
        self.assertNotEqual(a.generate("r", "o", "s"), b.generate("r", "o", "s"))
        self.assertEqual(a.generate("r", "o", "s"), a.generate("r", "o", "s"))

    def test_element(self) -> None:
        el = dialback.element(dialback.VERIFY, "r.test", "o.test", text="k", id_="s1",
                              type_="valid")
        self.assertEqual(etree.tostring(el),
                         b'<db:verify xmlns:db="jabber:server:dialback" from="r.test"'
                         b' to="o.test" id="s1" type="valid">k</db:verify>')
