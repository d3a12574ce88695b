# -*- test-case-name: tests.test_stanza_router -*-
"""
Stanza routing (RFC 6120 section 10) as named events.

Every stanza becomes a L{StanzaEvent} fired on the L{EventBus} under names in
the manner of Prosody's stanza router:

  - C{presence/outbound}: presence from a local client, before it is
    routed anywhere (broadcast, subscriptions, directed presence);
  - C{pre-stanza}: applications (the application router) look first;
  - C{iq-get/host/urn:xmpp:ping:ping}: an iq get or set by the namespace
    and name of its payload, to the server (C{host}), an account (C{bare})
    or a resource (C{full});
  - C{message/full}, C{presence/bare}, C{iq/host} …: by kind and target;
  - C{route/remote}: a domain this server does not host.

A handler returns a true value when it handled the stanza.  An iq get/set
that nobody handles is answered with C{service-unavailable}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Collection

from lxml import etree
from twisted.logger import Logger

from convergence.xmpp.errors import StanzaError, error_reply, may_reply_with_error
from convergence.xmpp.events import EventBus
from convergence.xmpp.jid import JID, InvalidJID
from convergence.xmpp.stanza import split_tag


@dataclass
class StanzaEvent:
    """One stanza on its way through the router."""

    stanza: etree._Element
    kind: str
    type: str | None
    sender: JID
    to: JID
    to_type: str
    origin: Any
    router: "StanzaRouter"

    def reply(self, element: etree._Element) -> None:
        """Route C{element} back to the sender.  A stanza that had no
        C{to} was to the sender's own account: the reply comes from its
        bare JID (RFC 6120 8.1.2.1)."""
        if element.get("from") is None:
            element.set("from", str(self.to))
        self.router.route(element)

    def reply_error(self, condition: str, text: str | None = None) -> None:
        """Answer the stanza with an error, unless it may not be answered."""
        self.router.bounce(self.stanza, StanzaError(condition, text))


class StanzaRouter:
    """Turns stanzas into events and applies the default rules."""

    log = Logger()

    def __init__(self, bus: EventBus, hosts: Collection[str]) -> None:
        self.bus = bus
        self.hosts = hosts
        #: stanzas that entered the router, by kind (read by the metrics)
        self.routed: dict[str, int] = {"message": 0, "presence": 0, "iq": 0}

    def is_local(self, domain: str) -> bool:
        """Whether this server hosts C{domain}."""
        return domain in self.hosts

    def route(self, stanza: etree._Element, origin: Any = None) -> None:
        """
        Route one stanza whose C{from} is already trustworthy.

        @param origin: the client stream it came from, or C{None} for stanzas
            the server or an application generated.
        """
        kind = etree.QName(stanza).localname
        routed = self.routed
        routed[kind] = routed.get(kind, 0) + 1
        type_ = stanza.get("type")
        try:
            sender = JID.parse(stanza.get("from", ""))
        except InvalidJID:
            self.log.warn("dropping stanza with bad sender: {from_}",
                          from_=stanza.get("from"))
            return
        to_attr = stanza.get("to")
        if to_attr is None:
            # RFC 6120 10.3: no 'to' means the sender's own account.
            to = sender.bare
        else:
            try:
                to = JID.parse(to_attr)
            except InvalidJID:
                self.bounce(stanza, StanzaError("jid-malformed"), sender.host)
                return
        if to.host in self.hosts:
            to_type = "host" if to.user is None else (
                "bare" if to.resource is None else "full")
        else:
            to_type = "remote"
        event = StanzaEvent(stanza, kind, type_, sender, to, to_type, origin, self)
        fire = self.bus.fire
        if origin is not None and kind == "presence" and fire("presence/outbound", event):
            return
        if fire("pre-stanza", event):
            return
        if to_type == "remote":
            if not fire("route/remote", event):
                event.reply_error("remote-server-not-found")
            return
        if kind == "iq" and type_ in ("get", "set") and len(stanza) == 1:
            namespace, local = split_tag(stanza[0].tag)
            name = f"iq-{type_}/{to_type}/{namespace}:{local}"
            if fire(name, event):
                return
        if fire(f"{kind}/{to_type}", event):
            return
        if kind == "iq" and type_ in ("get", "set"):
            event.reply_error("service-unavailable")

    def bounce(self, stanza: etree._Element, error: StanzaError,
               from_: str | None = None) -> None:
        """
        Send C{error} back to the sender of C{stanza}, if allowed.

        The reply comes from C{from_}, else from the stanza's C{to}, else
        (a stanza to the sender's own account) from the sender's bare JID.
        """
        sender = stanza.get("from")
        if sender is None or not may_reply_with_error(stanza):
            return
        reply = error_reply(stanza, error)
        if from_ is not None:
            reply.set("from", from_)
        elif reply.get("from") is None:
            reply.set("from", sender.split("/", 1)[0])
        self.route(reply)

    def hook_iq(
        self,
        type_: str,
        to_type: str,
        namespace: str,
        name: str,
        handler: Callable[[StanzaEvent], Any],
        priority: float = 0,
    ) -> None:
        """Subscribe to one iq payload, e.g. C{get}, C{host}, ping."""
        self.bus.hook(f"iq-{type_}/{to_type}/{namespace}:{name}", handler, priority)
