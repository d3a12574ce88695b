# -*- test-case-name: tests.test_mam -*-
"""
Which messages a user archive keeps (XEP-0313 section 6.1.1), and the
XEP-0359 stanza-ids the server writes and guards.

Kept: messages of type C{chat}, and C{normal} messages with a body (or a
XEP-0334 C{<store/>} hint).  Never kept: errors, headlines, groupchat,
messages with C{<no-store/>} or C{<no-permanent-store/>}, a C{chat}
message that carries nothing but chat states (and thread, hints, ids), and
Carbons copies (their originals are archived where they were routed).
"""

from __future__ import annotations

from copy import deepcopy

from lxml import etree

from convergence.xmpp import ns
from convergence.xmpp.jid import JID, InvalidJID

SID = "urn:xmpp:sid:0"
HINTS = "urn:xmpp:hints"
CHATSTATES = "http://jabber.org/protocol/chatstates"
CARBONS = "urn:xmpp:carbons:2"

_STANZA_ID = f"{{{SID}}}stanza-id"
_BODY = f"{{{ns.CLIENT}}}body"
_CARBON_COPIES = frozenset((f"{{{CARBONS}}}received", f"{{{CARBONS}}}sent"))
_NO_STORE = frozenset((f"{{{HINTS}}}no-store", f"{{{HINTS}}}no-permanent-store"))
_STORE = f"{{{HINTS}}}store"
#: children that alone do not make a chat message worth keeping
_EPHEMERAL_NAMESPACES = frozenset((CHATSTATES, HINTS, SID))
_EPHEMERAL_TAGS = frozenset((f"{{{ns.CLIENT}}}thread",))


def archivable(stanza: etree._Element) -> bool:
    """Whether a message belongs in its sender's and recipient's archives."""
    type_ = stanza.get("type", "normal")
    if type_ not in ("chat", "normal"):
        return False
    tags = [child.tag for child in stanza if isinstance(child.tag, str)]
    if any(tag in _CARBON_COPIES or tag in _NO_STORE for tag in tags):
        return False
    if _BODY in tags or _STORE in tags:
        return True
    if type_ != "chat":
        return False
    return any(tag not in _EPHEMERAL_TAGS
               and _namespace(tag) not in _EPHEMERAL_NAMESPACES for tag in tags)


def _namespace(tag: str) -> str | None:
    return tag[1:].partition("}")[0] if tag[:1] == "{" else None


def _by(element: etree._Element) -> JID | None:
    try:
        return JID.parse(element.get("by", ""))
    except InvalidJID:
        return None


def stanza_ids(stanza: etree._Element, owner: JID) -> list[etree._Element]:
    """The C{<stanza-id/>} children that claim to be by C{owner}."""
    return [child for child in stanza.iterchildren(_STANZA_ID) if _by(child) == owner]


def strip_stanza_ids(stanza: etree._Element, owner: JID) -> None:
    """Remove every C{<stanza-id/>} by C{owner}: only the server assigns
    those (XEP-0359 section 4), so anyone else's is a spoof."""
    for child in stanza_ids(stanza, owner):
        stanza.remove(child)


def add_stanza_id(stanza: etree._Element, owner: JID, id_: str) -> None:
    """Tell the recipient where its archive keeps this message."""
    etree.SubElement(stanza, _STANZA_ID, nsmap={None: SID}, by=str(owner), id=id_)


def stored_copy(stanza: etree._Element) -> bytes:
    """The message as archived: chat states left out (they describe a
    moment, not the conversation)."""
    states = [c for c in stanza if isinstance(c.tag, str) and _namespace(c.tag) == CHATSTATES]
    if not states:
        return etree.tostring(stanza)
    copy = deepcopy(stanza)
    for child in copy:
        if isinstance(child.tag, str) and _namespace(child.tag) == CHATSTATES:
            copy.remove(child)
    return etree.tostring(copy)
