# -*- test-case-name: tests.test_c2s -*-
"""Small builders for stanzas."""

from __future__ import annotations

from lxml import etree


def split_tag(tag: str) -> tuple[str | None, str]:
    """
    The namespace and local name of an lxml tag.  Unlike C{etree.QName},
    this takes any namespace name, C{}} } included (XML allows it).
    """
    if tag[:1] == "{":
        namespace, _, local = tag[1:].rpartition("}")
        return namespace, local
    return None, tag


def reply_shell(stanza: etree._Element, type_: str) -> etree._Element:
    """
    An empty stanza of the same kind answering C{stanza}: C{id} kept,
    C{to} and C{from} swapped, in the same namespace.
    """
    qname = etree.QName(stanza)
    reply = etree.Element(qname.text, nsmap={None: qname.namespace})
    if stanza.get("id") is not None:
        reply.set("id", stanza.get("id"))
    if stanza.get("from") is not None:
        reply.set("to", stanza.get("from"))
    if stanza.get("to") is not None:
        reply.set("from", stanza.get("to"))
    reply.set("type", type_)
    return reply


def iq_result(iq: etree._Element) -> etree._Element:
    """An empty iq result answering C{iq}."""
    return reply_shell(iq, "result")
