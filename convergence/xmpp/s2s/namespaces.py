# -*- test-case-name: tests.test_s2s_namespaces -*-
"""
Stanzas change their content namespace at the server boundary: clients
speak C{jabber:client}, servers C{jabber:server} (RFC 6120 4.8.3).  Only
the stanza and the elements of its own namespace under it change; payloads
in other namespaces are copied as they are, so a forwarded
C{jabber:client} message (carbons, MAM) stays one.
"""

from __future__ import annotations

import copy

from lxml import etree

from convergence.xmpp import ns


def convert(stanza: etree._Element, old: str, new: str) -> etree._Element:
    """A copy of C{stanza} whose C{old}-namespace elements are in C{new}."""
    prefix = f"{{{old}}}"
    nsmap = {None: new}

    def rename(tag: str) -> str:
        return f"{{{new}}}{tag[len(prefix):]}"

    root = etree.Element(rename(stanza.tag) if stanza.tag.startswith(prefix) else stanza.tag,
                         nsmap=nsmap)

    def fill(target: etree._Element, source: etree._Element) -> None:
        for name, value in source.attrib.items():
            target.set(name, value)
        target.text = source.text
        for child in source:
            tag = child.tag
            if isinstance(tag, str) and tag.startswith(prefix):
                sub = etree.SubElement(target, rename(tag))
                fill(sub, child)
                sub.tail = child.tail
            elif isinstance(tag, str):
                clone = copy.deepcopy(child)
                clone.tail = child.tail
                target.append(clone)

    fill(root, stanza)
    return root


def to_server(stanza: etree._Element) -> etree._Element:
    """A routed stanza as sent on a server-to-server stream."""
    if stanza.tag.startswith(f"{{{ns.SERVER}}}"):
        return stanza
    return convert(stanza, ns.CLIENT, ns.SERVER)


def to_client(stanza: etree._Element) -> etree._Element:
    """A stanza received from a server, as the router and clients want it."""
    if stanza.tag.startswith(f"{{{ns.CLIENT}}}"):
        return stanza
    return convert(stanza, ns.SERVER, ns.CLIENT)
