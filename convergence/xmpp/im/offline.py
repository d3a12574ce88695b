# -*- test-case-name: tests.test_im_offline -*-
"""
Offline messages (XEP-0160, RFC 6121 8.5.2.2.1) with XEP-0203 delay.

A C{chat} or C{normal} message to an account with no available resource
arrives on C{message/offline}: it is stamped with a C{<delay/>} and
written to the L{IOfflineStore}; it is handled only once committed (a
failure is answered, never dropped in silence).  A user over
C{xmpp.offline_quota} messages gets the sender a C{service-unavailable}
error of type C{wait}.

When a resource sends available presence with a non-negative priority
(C{presence/available}), the stored messages go to it in order, in
batches; each batch is deleted only after it was written to the stream.
Messages to the bare JID that arrive during that flush are stored behind
the others, so nothing overtakes an older message.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Callable

from lxml import etree
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.store.interfaces import OfflineMessage
from convergence.xmpp import ns
from convergence.xmpp.errors import StanzaError
from convergence.xmpp.features import Feature
from convergence.xmpp.jid import JID
from convergence.xmpp.router import StanzaEvent

__all__ = ["DELAY", "FEATURE", "OfflineMessages"]

DELAY = "urn:xmpp:delay"
MSGOFFLINE = "msgoffline"
#: messages read from the store per batch of a flush
BATCH = 100
#: message types kept for later (8.5.2.2.1); the others are never stored
_STORED_TYPES = (None, "normal", "chat")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)

log = Logger()


def stamp(seconds: float) -> str:
    """An XEP-0082 DateTime in UTC."""
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class OfflineMessages:
    """Offline storage and delivery for one server."""

    def __init__(self, server: Any, now: Callable[[], float] = time.time) -> None:
        self.server = server
        self.store = server.im_store
        self.run_in_db = server.run_in_db
        self.now = now
        #: users whose stored messages are being delivered
        self.flushing: set[JID] = set()
        #: users of those for whom a message was stored during the flush
        self.stored_during_flush: set[JID] = set()
        #: messages handed to the store and not yet committed
        self.pending = 0

    def install(self) -> None:
        hook = self.server.bus.hook
        hook("message/offline", self.on_offline)
        hook("message/bare", self.on_message_during_flush, 10)
        hook("presence/available", self.flush)

    # Storing
    def on_offline(self, event: StanzaEvent) -> bool:
        if event.type not in _STORED_TYPES:
            return False
        self.keep(event)
        return True

    def on_message_during_flush(self, event: StanzaEvent) -> bool:
        if event.to.bare in self.flushing and event.type in _STORED_TYPES:
            self.stored_during_flush.add(event.to.bare)
            self.keep(event)
            return True
        return False

    def keep(self, event: StanzaEvent) -> None:
        """Stamp and store one message; answer the sender if it cannot be."""
        self.keep_for(event.to.bare, event.stanza)

    @staticmethod
    def storable(stanza: etree._Element) -> bool:
        """Whether a message is of a type kept for later (8.5.2.2.1)."""
        return (etree.QName(stanza).localname == "message"
                and stanza.get("type") in _STORED_TYPES)

    def stamped(self, owner: JID, stanza: etree._Element) -> bytes:
        """C{stanza} as stored: with a XEP-0203 delay from C{owner}'s
        domain, unless it has one from there already (stored before)."""
        if any(d.get("from") == owner.host for d in stanza.iterchildren(f"{{{DELAY}}}delay")):
            return etree.tostring(stanza)
        delay = etree.SubElement(stanza, f"{{{DELAY}}}delay", nsmap={None: DELAY})
        delay.set("from", owner.host)
        delay.set("stamp", stamp(self.now()))
        delay.text = "Offline Storage"
        data = etree.tostring(stanza)
        stanza.remove(delay)
        return data

    def keep_for(self, owner: JID, stanza: etree._Element) -> Deferred:
        """
        Stamp and store one message for the account C{owner} (a bare JID),
        whatever its C{to}, as stream management does with the stanzas a
        session never acknowledged.  The sender is answered if it cannot
        be stored.  The store is asked at once, so messages kept one after
        another stay in that order.

        @return: a Deferred firing with whether it was stored.
        """
        data = self.stamped(owner, stanza)

        def stored(ok: bool) -> bool:
            if not ok:
                self.server.router.bounce(stanza, StanzaError(
                    "service-unavailable", "The recipient's offline storage is full",
                    type="wait"))
            return ok

        def failed(failure: Failure) -> bool:
            log.failure("could not store a message for {owner}", failure, owner=str(owner))
            self.server.router.bounce(stanza, StanzaError(
                "internal-server-error", "The message could not be stored"))
            return False

        def committed(result: Any) -> Any:
            self.pending -= 1
            return result

        self.pending += 1
        d = self.run_in_db(self.store.store_message, owner.user, owner.host, self.now(),
                           data, self.server.config.offline_quota)
        self.written(owner)
        return d.addBoth(committed).addCallbacks(stored, failed)

    def written(self, owner: JID) -> None:
        """A write of C{owner}'s messages was just queued (here or by stream
        management): a flush under way reads once more before it ends."""
        if owner in self.flushing:
            self.stored_during_flush.add(owner)

    # Delivering
    def flush(self, stream: Any) -> None:
        """Deliver the stored messages to C{stream} (available, priority >= 0)."""
        owner = stream.jid.bare
        if owner in self.flushing:
            return
        self.flushing.add(owner)
        self._next_batch(stream, owner)

    def _next_batch(self, stream: Any, owner: JID) -> None:
        d = self.run_in_db(self.store.messages, owner.user, owner.host, BATCH)
        d.addCallbacks(self._deliver, self._failed, (stream, owner), None, (owner,))

    def _deliver(self, messages: list[OfflineMessage], stream: Any, owner: JID) -> None:
        if stream.jid is None or stream.presence is None:
            self._done(owner)
            return
        if not messages:
            if owner in self.stored_during_flush:
                # written after this read was queued: read once more (the
                # database thread runs in order, so the next read sees it)
                self.stored_during_flush.discard(owner)
                self._next_batch(stream, owner)
            else:
                self._done(owner)
            return
        for message in messages:
            try:
                stream.deliver(etree.fromstring(message.stanza, _PARSER))
            except etree.XMLSyntaxError:
                log.error("dropping an unreadable stored message {id} of {owner}",
                          id=message.id, owner=str(owner))
        d = self.run_in_db(self.store.remove_messages, owner.user, owner.host,
                           [m.id for m in messages])
        d.addCallbacks(lambda _: self._next_batch(stream, owner), self._failed,
                       errbackArgs=(owner,))

    def _done(self, owner: JID) -> None:
        self.flushing.discard(owner)
        self.stored_during_flush.discard(owner)

    def _failed(self, failure: Failure, owner: JID) -> None:
        self._done(owner)
        log.failure("offline delivery to {owner} failed", failure, owner=str(owner))


def install(server: Any) -> None:
    server.offline = OfflineMessages(server)
    server.offline.install()


FEATURE = Feature(
    name="offline", spec="XEP-0160", version="1.0.1",
    disco_features=(MSGOFFLINE,), install=install,
)
