# -*- test-case-name: tests.test_stanza_router -*-
"""
Delivery to local accounts and resources (RFC 6120 10.5, RFC 6121 8.5).

Subscribes the default handlers for C{message}, C{presence} and C{iq}
addressed to a local bare or full JID, and to the server itself.  A
message that no resource takes, to an account that exists, is offered to
C{message/offline} (offline storage) before it is bounced.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.xmpp.router import StanzaEvent, StanzaRouter
from convergence.xmpp.sessions import SessionRegistry

_log = Logger()

#: C{(localpart, domain) -> Deferred[bool]} (asked of the database thread)
AccountExists = Callable[[str, str], Deferred]


def lookup_failed(failure: Failure, event: StanzaEvent) -> None:
    """An account query failed: the sender still gets an answer."""
    _log.failure("account lookup for {to} failed", failure, to=str(event.to))
    event.reply_error("internal-server-error")


class LocalDelivery:
    """The server's rules for stanzas to its own users and domains."""

    def __init__(
        self, registry: SessionRegistry, account_exists: AccountExists
    ) -> None:
        self.registry = registry
        self.account_exists = account_exists

    def install(self, router: StanzaRouter) -> None:
        """Subscribe the default handlers (priority 0)."""
        self.bus = router.bus
        hook = router.bus.hook
        hook("message/full", self.message_full)
        hook("message/bare", self.message_bare)
        hook("presence/full", self.presence_full)
        hook("presence/bare", self.presence_bare)
        hook("iq/full", self.iq_full)
        hook("iq/bare", self.iq_bare)
        hook("message/host", self.ignore)
        hook("presence/host", self.ignore)

    def message_full(self, event: StanzaEvent) -> bool:
        stream = self.registry.get(event.to)
        if stream is not None:
            stream.deliver(event.stanza)
            return True
        if event.type == "groupchat":
            event.reply_error("service-unavailable")
        elif event.type == "headline" or event.type == "error":
            pass
        else:
            # RFC 6121 8.5.3.2.1: treat as if addressed to the bare JID.
            return self.message_bare(event)
        return True

    def message_bare(self, event: StanzaEvent) -> bool:
        if event.type == "groupchat":
            event.reply_error("service-unavailable")
            return True
        targets = self.registry.most_available(event.to.bare)
        if event.type == "headline":
            targets = self.registry.available(event.to.bare)
        if targets:  # bound resources: the account exists, no query needed
            for stream in targets:
                stream.deliver(event.stanza)
            return True
        if event.type in ("headline", "error"):
            return True

        def undelivered(known: bool) -> None:
            if not known:
                event.reply_error("service-unavailable")
            elif not self.bus.fire("message/offline", event):
                # no offline storage installed
                event.reply_error("service-unavailable", "The recipient is not online")

        d = self.account_exists(event.to.user, event.to.host).addCallback(undelivered)
        d.addErrback(lookup_failed, event)
        return True

    def presence_full(self, event: StanzaEvent) -> bool:
        stream = self.registry.get(event.to)
        if stream is not None:
            stream.deliver(event.stanza)
        return True

    def presence_bare(self, event: StanzaEvent) -> bool:
        if event.origin is not None and event.stanza.get("to") is None:
            return True
        # RFC 6121 8.5.2.1.2: every available resource, whatever its priority
        for stream in self.registry.present(event.to.bare):
            stream.deliver(event.stanza)
        return True

    def iq_full(self, event: StanzaEvent) -> bool:
        stream = self.registry.get(event.to)
        if stream is not None:
            stream.deliver(event.stanza)
        elif event.type in ("get", "set"):
            event.reply_error("service-unavailable")
        return True

    def iq_bare(self, event: StanzaEvent) -> bool:
        # RFC 6120 10.5.3.1 / 10.5.4: the server answers on the account's
        # behalf; a payload nobody subscribed to is service-unavailable.
        if event.type in ("get", "set"):
            event.reply_error("service-unavailable")
        return True

    def ignore(self, event: StanzaEvent) -> bool:
        return True
