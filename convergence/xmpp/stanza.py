# -*- test-case-name: tests.test_stanza -*-
"""Small builders for stanzas."""

from __future__ import annotations

from lxml import etree


def iq_result(iq: etree._Element) -> etree._Element:
    """An empty iq result answering C{iq}: ids kept, addresses swapped."""
    namespace = etree.QName(iq).namespace
    result = etree.Element(f"{{{namespace}}}iq", nsmap={None: namespace})
    result.set("type", "result")
    if iq.get("id") is not None:
        result.set("id", iq.get("id"))
    if iq.get("from") is not None:
        result.set("to", iq.get("from"))
    if iq.get("to") is not None:
        result.set("from", iq.get("to"))
    return result
