# -*- test-case-name: tests.test_im_presence -*-
"""
Presence (RFC 6121 sections 3 and 4): subscription stanzas through the
state machine of L{convergence.xmpp.im.subscription}, initial presence
with probes and broadcast, updates, unavailable on logout or connection
loss, directed presence and probes answered from the server's knowledge.

Outbound presence (from the user's own client) arrives on the router's
C{presence/outbound} event before it is routed; inbound presence to a
local account on C{presence/bare} and C{presence/full}, ahead of plain
delivery.  Stanzas to contacts of other domains take the router's remote
route like any other, so federation plugs in without changes here.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from lxml import etree
from twisted.logger import Logger

from convergence.store.interfaces import RosterItem
from convergence.xmpp import ns
from convergence.xmpp.features import Feature
from convergence.xmpp.im.roster import Roster
from convergence.xmpp.im.subscription import inbound, outbound
from convergence.xmpp.jid import JID, InvalidJID
from convergence.xmpp.router import StanzaEvent

__all__ = ["FEATURE", "Presence", "SUBSCRIPTION_TYPES"]

SUBSCRIPTION_TYPES = frozenset(("subscribe", "subscribed", "unsubscribe", "unsubscribed"))
_PRESENCE = f"{{{ns.CLIENT}}}presence"
#: roster subscriptions under which a contact receives the user's presence
_SEES_USER = ("from", "both")
#: roster subscriptions under which the user receives the contact's
_USER_SEES = ("to", "both")

log = Logger()


def presence(from_: JID | str, to: JID | str, type_: str | None = None) -> etree._Element:
    element = etree.Element(_PRESENCE, nsmap={None: ns.CLIENT})
    element.set("from", str(from_))
    element.set("to", str(to))
    if type_ is not None:
        element.set("type", type_)
    return element


def _addressed(stanza: etree._Element, from_: JID | str, to: JID | str) -> etree._Element:
    out = copy.deepcopy(stanza)
    out.set("from", str(from_))
    out.set("to", str(to))
    return out


class Presence:
    """The presence service of one XMPP server."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.router = server.router
        self.registry = server.registry
        self.rosters = server.rosters
        #: the last unavailable presence of users now offline (probe answers)
        self.last_unavailable: dict[JID, etree._Element] = {}

    def install(self) -> None:
        hook = self.server.bus.hook
        hook("presence/outbound", self.on_outbound)
        hook("presence/bare", self.on_inbound, 10)
        hook("presence/full", self.on_inbound_full, 10)
        hook("c2s/closed", self.on_closed)
        # ahead of the roster cache being dropped (priority 0)
        hook("account/removed", self.on_account_removed, 10)

    # Helpers
    def _send(self, stanza: etree._Element) -> None:
        """Route a stanza the server generated (no outbound processing)."""
        self.router.route(stanza)

    def _available(self, owner: JID) -> list[Any]:
        """The user's resources that sent available presence."""
        return [s for s in self.registry.resources(owner) if s.presence is not None]

    def send_subscription(self, owner: JID, contact: str, type_: str) -> None:
        """Send a subscription stanza from the user's bare JID."""
        self._send(presence(owner, contact, type_))

    def send_current_to(self, owner: JID, contact: str) -> None:
        """The presence of each available resource of C{owner} to C{contact}."""
        for stream in self._available(owner):
            self._send(_addressed(stream.presence, stream.jid, contact))

    def send_unavailable_to(self, owner: JID, contact: str) -> None:
        """Unavailable from each available resource of C{owner} (3.2.2, 3.3.3)."""
        for stream in self._available(owner):
            self._send(presence(stream.jid, contact, "unavailable"))

    # Outbound: from the user's own client
    def on_outbound(self, event: StanzaEvent) -> bool:
        stream = event.origin
        if stream.jid is None:
            return True
        type_ = event.type
        if event.stanza.get("to") is None:
            if type_ is None or type_ == "unavailable":
                self._broadcast(stream, event.stanza)
            return True  # anything else without a 'to' means nothing
        if type_ in SUBSCRIPTION_TYPES:
            self._outbound_subscription(stream.jid.bare, event.to.bare, type_, event.stanza)
            return True
        if type_ is None:
            stream.directed.add(str(event.to))
        elif type_ == "unavailable":
            stream.directed.discard(str(event.to))
        return False  # directed presence, probe, error: routed as it is

    def _outbound_subscription(self, owner: JID, contact_jid: JID, type_: str,
                               stanza: etree._Element) -> None:
        contact = str(contact_jid)
        if contact_jid == owner:
            return

        def work(roster: Roster | None) -> None:
            if roster is None:
                return
            old = roster.get(contact)
            outcome = outbound(old, type_)

            def then() -> None:
                if not outcome.forward:
                    return
                self._send(_addressed(stanza, owner, contact))  # 3.1.2: from the bare JID
                if type_ == "subscribed":
                    self.send_current_to(owner, contact)  # 3.1.5
                elif type_ == "unsubscribed":
                    self.send_unavailable_to(owner, contact)  # 3.2.2

            self.rosters.change(roster, old, outcome.item, then)

        self.rosters.use(owner, work)

    def _broadcast(self, stream: Any, stanza: etree._Element) -> None:
        """Presence without 'to': to contacts, own resources, directed targets."""
        jid = stream.jid
        owner = jid.bare
        available = stanza.get("type") is None
        initial = available and stream.presence is None
        if available:
            own = copy.deepcopy(stanza)
            own.attrib.pop("to", None)
            own.set("from", str(jid))
            stream.presence = own
            self.last_unavailable.pop(owner, None)
        else:
            if stream.presence is None:
                return  # never available: nothing to take back
            stream.presence = None
            targets = set(stream.directed)
            stream.directed.clear()
            if not self._available(owner):
                self.last_unavailable[owner] = _addressed(stanza, jid, owner)

        def work(roster: Roster | None) -> None:
            contacts = roster.contacts(*_SEES_USER) if roster is not None else []
            for contact in contacts:
                self._send(_addressed(stanza, jid, contact))
            for other in self._available(owner):
                other.deliver(_addressed(stanza, jid, other.jid))
            if not available:
                for target in targets.difference(contacts):
                    self._send(_addressed(stanza, jid, target))
                return
            if initial and roster is not None:
                self._initial(stream, roster)
            if stream.priority >= 0:
                self.server.bus.fire("presence/available", stream)

        self.rosters.use(owner, work)

    def _initial(self, stream: Any, roster: Roster) -> None:
        """4.2: probes, the other resources' presence, pending requests."""
        jid = stream.jid
        owner = jid.bare
        for contact in roster.contacts(*_USER_SEES):
            self._send(presence(owner, contact, "probe"))
        for other in self._available(owner):
            if other is not stream:
                stream.deliver(_addressed(other.presence, other.jid, jid))
        for item in roster.items.values():
            if item.pending_in:
                stream.deliver(self._request(item, owner))

    @staticmethod
    def _request(item: RosterItem, owner: JID) -> etree._Element:
        """A stored subscription request, or a plain one if none was kept."""
        if item.request:
            try:
                element = etree.fromstring(item.request.encode(),
                                           etree.XMLParser(resolve_entities=False))
                return _addressed(element, item.contact, owner)
            except etree.XMLSyntaxError:
                pass
        return presence(item.contact, owner, "subscribe")

    def on_closed(self, stream: Any) -> None:
        """Connection lost, stream error or logout: unavailable for it (4.5)."""
        if getattr(stream, "presence", None) is None:
            return
        jid = stream.jid
        if jid is None:  # replaced by a new stream of the same resource
            try:
                jid = JID.parse(stream.presence.get("from", ""))
            except InvalidJID:
                return
            stream.jid = jid
            try:
                self._broadcast(stream, presence(jid, jid.bare, "unavailable"))
            finally:
                stream.jid = None
            return
        self._broadcast(stream, presence(jid, jid.bare, "unavailable"))

    def on_account_removed(self, event: Any) -> None:
        """
        An account was removed (XEP-0077 3.2): its resources go unavailable
        and every subscription is cancelled both ways, from the roster
        still cached; its streams then close without further presence.
        """
        owner = event.jid
        self.last_unavailable.pop(owner, None)
        roster = self.rosters.cached(owner)
        streams = self._available(owner)
        if roster is not None:
            for contact, item in roster.items.items():
                if item.subscription in _SEES_USER or item.pending_in:
                    self.send_unavailable_to(owner, contact)
                    self.send_subscription(owner, contact, "unsubscribed")
                if item.subscription in _USER_SEES or item.ask:
                    self.send_subscription(owner, contact, "unsubscribe")
        for stream in streams:
            for target in stream.directed:
                self._send(presence(stream.jid, target, "unavailable"))
            stream.directed.clear()
            stream.presence = None
            stream.available = False

    # Inbound: to a local account
    def on_inbound_full(self, event: StanzaEvent) -> bool:
        if event.type == "probe" or event.type in SUBSCRIPTION_TYPES:
            return self.on_inbound(event)  # 3.1.3, 4.3: as if to the bare JID
        return False

    def on_inbound(self, event: StanzaEvent) -> bool:
        type_ = event.type
        if event.origin is not None and event.stanza.get("to") is None:
            return True  # the user's own broadcast, already handled
        if type_ != "probe" and type_ not in SUBSCRIPTION_TYPES:
            return False  # available/unavailable/error: plain delivery
        owner = event.to.bare
        if self.registry.resources(owner) or self.rosters.cached(owner):
            self._inbound(event, owner, type_)
            return True

        def known(exists: bool) -> None:
            if exists:
                self._inbound(event, owner, type_)
            elif type_ in ("subscribe", "probe"):
                self._send(presence(owner, event.sender.bare, "unsubscribed"))

        d = self.server.account_exists(owner.user, owner.host)
        d.addCallback(known)
        d.addErrback(lambda f: log.failure("account lookup for {jid} failed", f,
                                           jid=str(owner)))
        return True

    def _inbound(self, event: StanzaEvent, owner: JID, type_: str) -> None:
        contact = str(event.sender.bare)
        if type_ == "probe":
            self.rosters.use(owner, lambda r: self._probe(r, owner, event.sender))
            return
        if event.sender.bare == owner:
            return
        stanza = event.stanza

        def work(roster: Roster | None) -> None:
            if roster is None:
                return
            old = roster.get(contact)
            outcome = inbound(old, type_)
            new = outcome.item
            if type_ == "subscribe" and outcome.forward:
                kept = _addressed(stanza, contact, owner)
                new = replace(new, request=etree.tostring(kept).decode())

            def then() -> None:
                if outcome.auto_approve:
                    self._send(presence(owner, contact, "subscribed"))
                    self.send_current_to(owner, contact)
                if not outcome.forward:
                    return
                for stream in self.registry.resources(owner):
                    if stream.presence is not None:
                        stream.deliver(_addressed(stanza, contact, stream.jid))
                if type_ == "unsubscribe":
                    self.send_unavailable_to(owner, contact)  # 3.3.3

            self.rosters.change(roster, old, new, then)

        self.rosters.use(owner, work)

    def _probe(self, roster: Roster | None, owner: JID, prober: JID) -> None:
        """4.3.2: answer from what the server knows, if the prober may know."""
        if roster is None:
            return
        if prober.bare != owner and roster.get(str(prober.bare)).subscription \
                not in _SEES_USER:
            self._send(presence(owner, prober, "unsubscribed"))
            return
        streams = self._available(owner)
        if streams:
            for stream in streams:
                self._send(_addressed(stream.presence, stream.jid, prober))
            return
        last = self.last_unavailable.get(owner)
        if last is not None:
            self._send(_addressed(last, last.get("from", str(owner)), prober))
        else:
            self._send(presence(owner, prober, "unavailable"))


def install(server: Any) -> None:
    server.presence = Presence(server)
    server.presence.install()


FEATURE = Feature(
    name="presence", spec="RFC 6121", version="",
    disco_features=(), install=install,
)
