"""XEP-0004 data form helpers."""

from __future__ import annotations

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from convergence.xmpp.dataforms import DATA, find_form, form, values


class DataFormTests(SynchronousTestCase):
    def test_form_round_trip(self) -> None:
        """A built form reads back with its FORM_TYPE and values, in order."""
        x = form("urn:example", [("a", ["1", "2"], "list-multi"), ("b", [], None)])
        self.assertEqual(x.get("type"), "result")
        self.assertEqual(values(x), {"FORM_TYPE": ["urn:example"], "a": ["1", "2"], "b": []})
        fields = x.findall(f"{{{DATA}}}field")
        self.assertEqual([f.get("type") for f in fields], ["hidden", "list-multi", None])

    def test_find_form_by_type(self) -> None:
        """find_form picks the form of the wanted FORM_TYPE, or none."""
        parent = etree.Element("query")
        parent.append(form("urn:one", []))
        parent.append(form("urn:two", [("v", ["x"], None)]))
        found = find_form(parent, "urn:two")
        assert found is not None
        self.assertEqual(values(found)["v"], ["x"])
        self.assertIsNone(find_form(parent, "urn:three"))
        self.assertIs(find_form(parent), parent[0])
