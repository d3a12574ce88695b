# -*- test-case-name: tests.test_csi -*-
"""
XEP-0352: Client State Indication (C{urn:xmpp:csi:0}, version 1.0.0).

After authentication the stream features carry C{<csi/>}.  A client's
C{<active/>} and C{<inactive/>} nonzas set C{stream.client_state}.  While
a client is inactive, a filter on C{stream.filters} holds back what it
does not need at once and lets important stanzas through:

  - held: presence updates (available, unavailable, presence errors),
    of which only the latest per sender full JID is kept; messages
    without anything a user reads (chat states, receipts, markers …);
    headlines;
  - important (sent at once, after flushing what was held, in order):
    every iq, presence subscription requests and answers, message
    errors, messages with a C{<body/>}, a C{<subject/>} or an encrypted
    payload, MUC invitations, sent carbons and received carbons of
    important messages.

C{<active/>} flushes what was held, in order, and so does reaching
C{xmpp.csi_max_held} held stanzas, and so does the connection's loss, the
session's end and the server's shutdown, ahead of stream management: held
stanzas are not sent, so they are not in XEP-0198's count until then;
flushed into a connection that is gone, they join its unacknowledged
queue (resent on resumption, stored offline or bounced at the end, as
its other stanzas).  Held messages and presence get an
XEP-0203 C{<delay/>} with the time they arrived.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from lxml import etree
from twisted.logger import Logger

from convergence.xmpp import ns
from convergence.xmpp.c2s import NonzaEvent
from convergence.xmpp.features import Feature
from convergence.xmpp.im.offline import stamp
from convergence.xmpp.stanza import split_tag

__all__ = ["CSI", "FEATURE", "ClientState", "important"]

CSI = "urn:xmpp:csi:0"
DELAY = "urn:xmpp:delay"
CARBONS = "urn:xmpp:carbons:2"
FORWARD = "urn:xmpp:forward:0"
_C = f"{{{ns.CLIENT}}}"
#: payloads that make a message without a body important
_IMPORTANT_PAYLOADS = (
    f"{_C}subject",
    "{urn:xmpp:eme:0}encryption",
    "{eu.siacs.conversations.axolotl}encrypted",
    "{urn:xmpp:omemo:2}encrypted",
    "{jabber:x:conference}x",
    "{http://jabber.org/protocol/muc#user}x/{http://jabber.org/protocol/muc#user}invite",
    "{urn:xmpp:jingle-message:0}propose",
    "{urn:xmpp:jingle-message:0}proceed",
    "{urn:xmpp:jingle-message:0}retract",
    "{urn:xmpp:jingle-message:0}reject",
    "{urn:xmpp:jingle-message:0}accept",
)
_RECEIVED_MESSAGE = f"{{{CARBONS}}}received/{{{FORWARD}}}forwarded/{_C}message"

log = Logger()


def important(stanza: etree._Element) -> bool:
    """Whether an inactive client should get C{stanza} now."""
    kind = split_tag(stanza.tag)[1]
    type_ = stanza.get("type")
    if kind == "iq":
        return True
    if kind == "presence":
        return type_ not in (None, "unavailable", "error")  # subscriptions
    if kind != "message":
        return True  # nothing else passes deliver; never hold the unknown
    if type_ == "error":
        return True
    if type_ == "headline":
        return False
    if stanza.find(f"{{{CARBONS}}}sent") is not None:
        return True  # the user wrote it on another device
    inner = stanza.find(_RECEIVED_MESSAGE)
    if inner is not None:
        stanza = inner
    if stanza.find(f"{_C}body") is not None:
        return True
    return any(stanza.find(path) is not None for path in _IMPORTANT_PAYLOADS)


class _Held:
    """What one inactive stream holds back, oldest first."""

    __slots__ = ("presence", "stanzas")

    def __init__(self) -> None:
        self.stanzas: list[etree._Element] = []
        #: sender full JID -> the held presence from it
        self.presence: dict[str, etree._Element] = {}


class ClientState:
    """The CSI state of every stream, and its filter."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.clock = server.clock
        self.limit = server.config.csi_max_held
        self._held: dict[Any, _Held] = {}
        self._filters: dict[Any, Callable[[etree._Element], etree._Element | None]] = {}

    def install(self) -> None:
        self.server.stream_features.append((CSI, "csi"))
        hook = self.server.bus.hook
        hook(f"nonza/{CSI}", self.on_nonza)
        hook("c2s/unbound", self.forget)
        # What is held goes out before stream management decides about
        # the session (hibernation at c2s/lost, its queue kept at
        # c2s/closed priority 100, everything at shutdown): held stanzas
        # then are in its unacknowledged queue, resent on resumption or
        # stored offline at the end, never lost with the filter.
        hook("c2s/lost", self.on_leaving, 10)
        hook("c2s/closed", self.on_leaving, 110)
        hook("xmpp/shutdown", self.on_shutdown, 10)

    def on_leaving(self, stream: Any) -> bool:
        self.flush(stream)
        return False

    def on_shutdown(self, server: Any) -> bool:
        for stream in list(self._held):
            self.flush(stream)
        return False

    def on_nonza(self, event: NonzaEvent) -> bool:
        name = split_tag(event.element.tag)[1]
        stream = event.stream
        if name == "inactive":
            stream.client_state = "inactive"
            if stream not in self._filters:
                stanza_filter = self._filter_for(stream)
                self._filters[stream] = stanza_filter
                stream.filters.append(stanza_filter)
            return True
        if name == "active":
            stream.client_state = "active"
            self.flush(stream)
            return True
        return False  # unknown CSI element: a stream error, as for any nonza

    def _filter_for(self, stream: Any) -> Callable[[etree._Element], etree._Element | None]:
        def csi_filter(stanza: etree._Element) -> etree._Element | None:
            if stream.client_state != "inactive":
                return stanza
            if important(stanza):
                self.flush(stream)
                return stanza
            self.hold(stream, stanza)
            if len(self._held[stream].stanzas) >= self.limit:
                self.flush(stream)
            return None
        return csi_filter

    def hold(self, stream: Any, stanza: etree._Element) -> None:
        """Keep C{stanza} back, stamped; a newer presence replaces the
        older one from the same full JID."""
        held = self._held.setdefault(stream, _Held())
        stanza = copy.deepcopy(stanza)  # others may still change theirs
        delay = etree.SubElement(stanza, f"{{{DELAY}}}delay", nsmap={None: DELAY})
        if stream.jid is not None:
            delay.set("from", str(stream.jid.bare))
        delay.set("stamp", stamp(self.clock.seconds()))
        if split_tag(stanza.tag)[1] == "presence":
            sender = stanza.get("from", "")
            older = held.presence.pop(sender, None)
            if older is not None:
                held.stanzas.remove(older)
            held.presence[sender] = stanza
        held.stanzas.append(stanza)

    def held(self, stream: Any) -> list[etree._Element]:
        """The stanzas held for C{stream}, oldest first."""
        held = self._held.get(stream)
        return list(held.stanzas) if held is not None else []

    def flush(self, stream: Any) -> None:
        """Send what was held, in order, through the filters after CSI's."""
        held = self._held.pop(stream, None)
        if held is None or not held.stanzas:
            return
        log.debug("flushing {n} stanzas to {jid}", n=len(held.stanzas), jid=str(stream.jid))
        mine = self._filters.get(stream)
        later = stream.filters[stream.filters.index(mine) + 1:] \
            if mine in stream.filters else []
        for stanza in held.stanzas:
            for stanza_filter in later:
                stanza = stanza_filter(stanza)
                if stanza is None:
                    break
            else:
                stream.send(stanza)

    def forget(self, stream: Any) -> None:
        self._held.pop(stream, None)
        self._filters.pop(stream, None)


def install(server: Any) -> None:
    server.csi = ClientState(server)
    server.csi.install()


FEATURE = Feature(
    name="csi", spec="XEP-0352", version="1.0.0",
    disco_features=(), install=install,
)
