# -*- test-case-name: tests.test_carbons -*-
"""
XEP-0280: Message Carbons (C{urn:xmpp:carbons:2}, version 1.0.1).

A resource turns carbons on or off with an iq set of C{<enable/>} or
C{<disable/>} to its own account.  Then:

  - I{received} carbons: an eligible message to the user (bare or full
    JID) is delivered by the RFC 6121 rules, and a copy wrapped in
    C{<received><forwarded/></received>}, from the user's bare JID, goes
    to every other carbons-enabled available resource that did not get
    the message itself (resources of equal top priority that got a
    message to the bare JID get no duplicate);
  - I{sent} carbons: an eligible message a resource sends (to anyone,
    local or remote) goes wrapped in C{<sent/>} to the user's other
    carbons-enabled available resources.

Eligibility follows section 6 of the XEP: type C{chat}; type C{normal}
with a C{<body/>}; any message carrying an IM payload (XEP-0085 chat
states, XEP-0184 receipts, XEP-0333 markers); an error bounced from a bare
JID (the answer to a message the user sent there).  Never eligible: a
message with C{<private xmlns='urn:xmpp:carbons:2'/>} or XEP-0334
C{<no-copy/>}, C{groupchat} and C{headline} messages, MUC private
messages received (C{<x xmlns='http://jabber.org/protocol/muc#user'/>}
to a full JID), and messages that already are carbons.  The
C{<private/>} element is removed from a message before it is delivered
to the recipient.
"""

from __future__ import annotations

import copy
from typing import Any, Iterable

from lxml import etree
from twisted.logger import Logger

from convergence.xmpp import ns
from convergence.xmpp.features import Feature
from convergence.xmpp.jid import JID
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.stanza import iq_result

__all__ = ["CARBONS", "FEATURE", "FORWARD", "Carbons", "eligible"]

CARBONS = "urn:xmpp:carbons:2"
#: the copying rules of XEP-0280 section 6 (advertised as implemented)
CARBONS_RULES = "urn:xmpp:carbons:rules:0"
FORWARD = "urn:xmpp:forward:0"
SID = "urn:xmpp:sid:0"
HINTS = "urn:xmpp:hints"
MUC_USER = "http://jabber.org/protocol/muc#user"
CHATSTATES = "http://jabber.org/protocol/chatstates"
RECEIPTS = "urn:xmpp:receipts"
MARKERS = "urn:xmpp:chat-markers:0"
#: payload namespaces that make any message an IM message (section 6)
_IM_PAYLOADS = frozenset((CHATSTATES, RECEIPTS, MARKERS))
_PRIVATE = f"{{{CARBONS}}}private"
_NO_COPY = f"{{{HINTS}}}no-copy"
_BODY = f"{{{ns.CLIENT}}}body"
_MESSAGE = f"{{{ns.CLIENT}}}message"
#: priority on pre-stanza: after blocking (which may refuse the message),
#: before applications (which take their messages)
SENT_PRIORITY = 150
#: priority on message/bare and message/full: before plain delivery
RECEIVED_PRIORITY = 5

log = Logger()


def eligible(stanza: etree._Element, outgoing: bool) -> bool:
    """
    Whether a message is copied (XEP-0280 section 6).

    @param outgoing: the message was sent by one of the user's resources
        (a sent carbon); otherwise it is being delivered to the user.
    """
    type_ = stanza.get("type") or "normal"
    if type_ in ("groupchat", "headline"):
        return False
    children = [child for child in stanza if isinstance(child.tag, str)]
    tags = {child.tag for child in children}
    if _PRIVATE in tags or _NO_COPY in tags:
        return False
    namespaces = {etree.QName(child).namespace for child in children}
    if CARBONS in namespaces:
        return False  # a carbon itself (or enable/disable misplaced)
    if not outgoing and f"{{{MUC_USER}}}x" in tags and "/" in stanza.get("to", ""):
        return False  # a MUC private message: the room delivers those
    if type_ == "chat":
        return True
    if type_ == "normal" and _BODY in tags:
        return True
    if namespaces & _IM_PAYLOADS:
        return True
    if type_ == "error" and not outgoing and "/" not in stanza.get("from", "/"):
        return True  # a bounce of a message the user sent to a bare JID
    return False


def wrap(stanza: etree._Element, direction: str, owner: JID) -> etree._Element:
    """The carbon: C{<message from=owner><direction><forwarded>stanza…}."""
    carbon = etree.Element(_MESSAGE, nsmap={None: ns.CLIENT})
    carbon.set("from", str(owner))
    type_ = stanza.get("type")
    if type_ is not None:
        carbon.set("type", type_)
    wrapper = etree.SubElement(carbon, f"{{{CARBONS}}}{direction}", nsmap={None: CARBONS})
    forwarded = etree.SubElement(wrapper, f"{{{FORWARD}}}forwarded", nsmap={None: FORWARD})
    forwarded.append(copy.deepcopy(stanza))
    return carbon


class Carbons:
    """Which resources enabled carbons, and the copying."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.registry = server.registry
        #: the streams that enabled carbons
        self.enabled: set[Any] = set()

    def install(self) -> None:
        hook = self.server.bus.hook
        for to_type in ("bare", "host"):
            self.server.router.hook_iq("set", to_type, CARBONS, "enable", self.on_toggle)
            self.server.router.hook_iq("set", to_type, CARBONS, "disable", self.on_toggle)
        hook("pre-stanza", self.on_sent, SENT_PRIORITY)
        hook("message/bare", self.on_received_bare, RECEIVED_PRIORITY)
        hook("message/full", self.on_received_full, RECEIVED_PRIORITY)
        hook("c2s/unbound", self.enabled.discard)

    # Enabling (sections 4 and 5)
    def on_toggle(self, event: StanzaEvent) -> bool:
        stream = event.origin
        own = event.to.user is None or event.to == event.sender.bare
        if stream is None or getattr(stream, "jid", None) != event.sender or not own:
            event.reply_error("not-allowed", "carbons are toggled by a resource for itself")
            return True
        if etree.QName(event.stanza[0]).localname == "enable":
            self.enabled.add(stream)
        else:
            self.enabled.discard(stream)
        log.debug("{jid} carbons {state}", jid=str(stream.jid),
                  state=etree.QName(event.stanza[0]).localname)
        event.reply(iq_result(event.stanza))
        return True

    def _copies_to(self, owner: JID, skip: Iterable[Any]) -> list[Any]:
        """Carbons-enabled available resources of C{owner} not in C{skip}."""
        skipped = set(skip)
        return [s for s in self.registry.present(owner)
                if s in self.enabled and s not in skipped]

    def _send(self, carbon: etree._Element, streams: list[Any]) -> None:
        for stream in streams:
            out = copy.deepcopy(carbon) if len(streams) > 1 else carbon
            out.set("to", str(stream.jid))
            stream.deliver(out)

    # Sent carbons (section 8)
    def on_sent(self, event: StanzaEvent) -> bool:
        stream = event.origin
        if event.kind != "message" or stream is None or stream.jid is None:
            return False
        owner = stream.jid.bare
        if event.to.bare == owner:
            return False  # to the user's own account: received carbons cover it
        if not self.enabled or not eligible(event.stanza, outgoing=True):
            return False
        targets = self._copies_to(owner, (stream,))
        if targets:
            carbon = wrap(event.stanza, "sent", owner)
            archiver = getattr(self.server, "archiver", None)
            archived = archiver.sent_id(event.stanza) if archiver is not None else None
            if archived is not None and archived[0] == owner:
                # XEP-0313: the copy says where the sender's archive keeps it
                forwarded = carbon[0][0][0]
                etree.SubElement(forwarded, f"{{{SID}}}stanza-id", nsmap={None: SID},
                                 by=str(owner), id=archived[1])
            self._send(carbon, targets)
        return False

    # Received carbons (sections 6 and 7)
    def on_received_bare(self, event: StanzaEvent) -> bool:
        if event.type == "headline":
            return False  # goes to every resource anyway
        self._received(event, self.registry.most_available(event.to.bare))
        return False

    def on_received_full(self, event: StanzaEvent) -> bool:
        stream = self.registry.get(event.to)
        if stream is not None:
            self._received(event, [stream])
        elif event.type not in ("groupchat", "headline", "error"):
            # delivery treats it as addressed to the bare JID (RFC 6121 8.5.3.2.1)
            self._received(event, self.registry.most_available(event.to.bare))
        return False

    def _received(self, event: StanzaEvent, delivered: list[Any]) -> None:
        stanza = event.stanza
        private = stanza.find(_PRIVATE)
        if private is not None:
            stanza.remove(private)  # section 9: not for the recipient
            return
        if not self.enabled or not eligible(stanza, outgoing=False):
            return
        owner = event.to.bare
        skip = list(delivered)
        if event.sender.bare == owner and event.origin is not None:
            skip.append(event.origin)  # the user wrote to another own resource
        targets = self._copies_to(owner, skip)
        if targets:
            self._send(wrap(stanza, "received", owner), targets)


def install(server: Any) -> None:
    server.carbons = Carbons(server)
    server.carbons.install()


FEATURE = Feature(
    name="carbons", spec="XEP-0280", version="1.0.1",
    disco_features=(CARBONS, CARBONS_RULES), install=install,
)
