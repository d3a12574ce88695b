# -*- test-case-name: tests.test_im_offline -*-
"""
Offline messages (XEP-0160, RFC 6121 8.5.2.2.1) with XEP-0203 delay.

A C{chat} or C{normal} message to an account with no available resource
arrives on C{message/offline}: it is stamped with a C{<delay/>} and
written to the L{IOfflineStore}; it is handled only once committed (a
failure is answered, never dropped in silence).  Writes are queued, and
one job on the database thread takes every write queued by the time it
runs and commits them in one transaction (L{_WriteQueue}), so a burst
shares a commit and the quota is counted once per user and job.  A user
over C{xmpp.offline_quota} messages gets the sender a
C{service-unavailable} error of type C{wait}.

When a resource sends available presence with a non-negative priority
(C{presence/available}), the stored messages go to it in order: one read
of up to the quota's worth (L{READ_LIMIT} without a quota), one write to
the stream, then one statement deleting everything up to the last id
read; only then is the store read again, if it may hold more.  Messages
to the bare JID that arrive while a flush is under way, or between the
client's available presence and the start of its flush (the presence
module may be waiting for the roster), are stored behind the others, so
nothing overtakes an older message.  To a stream with XEP-0198 stream
management the flush sends at most what its unacknowledged queue still
takes (C{xmpp.sm_max_queue}), asks for an acknowledgement and goes on
once the client gave one (C{sm/acked}); what it has not sent stays
stored, so a session that ends meanwhile loses nothing.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable

from lxml import etree
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.store.interfaces import OfflineMessage
from convergence.xmpp.errors import StanzaError
from convergence.xmpp.features import Feature
from convergence.xmpp.jid import JID
from convergence.xmpp.router import StanzaEvent

__all__ = ["DELAY", "FEATURE", "OfflineMessages"]

DELAY = "urn:xmpp:delay"
MSGOFFLINE = "msgoffline"
#: messages read from the store at once when there is no quota
READ_LIMIT = 10_000
#: presence/outbound priority: before every module that may take the presence
OUTBOUND_PRIORITY = 1000
#: message types kept for later (8.5.2.2.1); the others are never stored
_STORED_TYPES = (None, "normal", "chat")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)

log = Logger()

Stored = Callable[[bool], None]


def stamp(seconds: float) -> str:
    """An XEP-0082 DateTime in UTC."""
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _WriteQueue:
    """
    Offline writes, committed in batches: each write is queued, and one
    job on the database thread takes every write queued by the time it
    runs and stores them in one transaction.  Database work submitted
    after a write still runs after it (a job is queued ahead of it, or
    the running one has taken the write).
    """

    def __init__(self, offline: "OfflineMessages") -> None:
        self.offline = offline
        self._lock = threading.Lock()
        self._queue: list[tuple[str, str, float, bytes]] = []
        self._done: list[Stored] = []
        self._scheduled = False

    def add(self, owner: JID, stamp_: float, data: bytes, done: Stored) -> None:
        with self._lock:
            self._queue.append((owner.user, owner.host, stamp_, data))
            self._done.append(done)
            if self._scheduled:
                return
            self._scheduled = True
        offline = self.offline
        offline.run_in_db(self._drain, offline.store, offline.server.config.offline_quota) \
            .addCallbacks(self._stored, self._failed)

    def _drain(self, store: Any, quota: int) -> tuple[list[Stored], list[bool] | Failure]:
        """On the database thread: store what is queued now."""
        with self._lock:
            self._scheduled = False
            batch, self._queue = self._queue, []
            done, self._done = self._done, []
        if not batch:
            return done, []
        try:
            return done, store.store_messages(batch, quota)
        except Exception:
            return done, Failure()

    def _stored(self, result: tuple[list[Stored], list[bool] | Failure]) -> None:
        done, outcome = result
        if isinstance(outcome, Failure):
            log.failure("could not store {n} offline messages", outcome, n=len(done))
            outcome = [None] * len(done)  # type: ignore[list-item]
        for callback, ok in zip(done, outcome):
            try:
                callback(ok)
            except Exception:
                log.failure("after storing an offline message")

    @staticmethod
    def _failed(failure: Failure) -> None:
        log.failure("offline message writes failed", failure)


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
        #: streams that sent available presence (priority >= 0) whose
        #: flush has not started yet, by user
        self.awaiting: dict[JID, set[Any]] = {}
        #: messages handed to the store and not yet committed
        self.pending = 0
        self._writes = _WriteQueue(self)
        #: flushes waiting for room in a stream management queue: owner by
        #: stream; of those, streams whose delivered part is still being
        #: removed, and those acknowledged meanwhile
        self._waiting_room: dict[Any, JID] = {}
        self._removing: set[Any] = set()
        self._acked_early: set[Any] = set()

    def install(self) -> None:
        hook = self.server.bus.hook
        hook("message/offline", self.on_offline)
        hook("message/bare", self.on_message_during_flush, 10)
        hook("presence/outbound", self.on_own_presence, OUTBOUND_PRIORITY)
        hook("presence/available", self.flush)
        hook("c2s/unbound", self.on_unbound)
        hook("sm/acked", self.on_acked)

    # Storing
    def on_offline(self, event: StanzaEvent) -> bool:
        if event.type not in _STORED_TYPES:
            return False
        self.keep(event)
        return True

    def holding(self, owner: JID) -> bool:
        """Whether messages to C{owner}'s bare JID are stored now rather
        than delivered: a flush is under way or about to start."""
        return owner in self.flushing or owner in self.awaiting

    def on_message_during_flush(self, event: StanzaEvent) -> bool:
        if event.type in _STORED_TYPES and self.holding(event.to.bare):
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

    def keep_for(self, owner: JID, stanza: etree._Element,
                 then: Stored | None = None) -> None:
        """
        Stamp and store one message for the account C{owner} (a bare JID),
        whatever its C{to}, as stream management does with the stanzas a
        session never acknowledged.  The sender is answered if it cannot
        be stored.  The write is queued at once, so messages kept one
        after another stay in that order.  C{then}, if given, is called
        with whether it was stored, once committed.
        """
        data = self.stamped(owner, stanza)

        def done(ok: bool | None) -> None:
            self.pending -= 1
            if ok:
                self.server.stats.offline_stored += 1
            if ok is None:
                self.server.router.bounce(stanza, StanzaError(
                    "internal-server-error", "The message could not be stored"))
            elif not ok:
                self.server.router.bounce(stanza, StanzaError(
                    "service-unavailable", "The recipient's offline storage is full",
                    type="wait"))
            if then is not None:
                then(bool(ok))

        self.pending += 1
        self._writes.add(owner, self.now(), data, done)
        self.written(owner)

    def written(self, owner: JID) -> None:
        """A write of C{owner}'s messages was just queued (here or by stream
        management): a flush under way reads once more before it ends."""
        if owner in self.flushing:
            self.stored_during_flush.add(owner)

    # Delivering
    def on_own_presence(self, event: StanzaEvent) -> bool:
        """A client's own presence (no C{to}): from an available one with a
        non-negative priority until its flush starts, messages to the bare
        JID are stored behind what is stored already."""
        stream = event.origin
        if event.stanza.get("to") is not None or getattr(stream, "jid", None) is None:
            return False
        owner = stream.jid.bare
        if event.type is None and stream.priority >= 0:
            self.awaiting.setdefault(owner, set()).add(stream)
        elif event.type is None or event.type == "unavailable":
            self._not_awaiting(owner, stream)
        return False

    def _not_awaiting(self, owner: JID, stream: Any) -> None:
        streams = self.awaiting.get(owner)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self.awaiting[owner]

    def on_unbound(self, stream: Any) -> None:
        owner = self._waiting_room.pop(stream, None)
        self._removing.discard(stream)
        self._acked_early.discard(stream)
        if owner is not None:
            self._done(owner)  # the rest stays stored for the next time
        if getattr(stream, "jid", None) is not None:
            self._not_awaiting(stream.jid.bare, stream)

    def on_acked(self, stream: Any) -> None:
        """The client acknowledged stanzas: a flush waiting for room goes on
        (once what it delivered is removed)."""
        if stream not in self._waiting_room:
            return
        if stream in self._removing:
            self._acked_early.add(stream)
            return
        self._read(stream, self._waiting_room.pop(stream))

    def flush(self, stream: Any) -> None:
        """Deliver the stored messages to C{stream} (available, priority >= 0)."""
        owner = stream.jid.bare
        if owner in self.flushing:
            self._not_awaiting(owner, stream)
            return
        self.flushing.add(owner)
        # messages stored from here on are read by this flush
        self._not_awaiting(owner, stream)
        self._read(stream, owner)

    def _limit(self) -> int:
        return self.server.config.offline_quota or READ_LIMIT

    def _read(self, stream: Any, owner: JID) -> None:
        d = self.run_in_db(self.store.messages, owner.user, owner.host, self._limit())
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
                self._read(stream, owner)
            else:
                self._done(owner)
            return
        # XEP-0198: never more than the unacknowledged queue takes; the
        # rest once the client acknowledged what it got
        sm = getattr(self.server, "sm", None)
        room = sm.room(stream) if sm is not None else None
        stanzas = []
        last = None
        for message in messages:
            if room is not None and len(stanzas) >= room:
                break
            last = message.id
            try:
                stanzas.append(etree.fromstring(message.stanza, _PARSER))
            except etree.XMLSyntaxError:
                log.error("dropping an unreadable stored message {id} of {owner}",
                          id=message.id, owner=str(owner))
        full = last != messages[-1].id
        if full:
            self._waiting_room[stream] = owner
        if last is None:
            sm.request_ack(stream)
            return
        deliver_many = getattr(stream, "deliver_many", None)
        if deliver_many is not None:
            deliver_many(stanzas)
        else:
            for stanza in stanzas:
                stream.deliver(stanza)
        self.server.stats.offline_delivered += len(stanzas)
        if full:
            self._removing.add(stream)
            sm.request_ack(stream)
        elif len(messages) >= self._limit():
            self.stored_during_flush.add(owner)
        d = self.run_in_db(self.store.remove_messages_through, owner.user, owner.host, last)
        d.addCallbacks(self._removed, self._failed, (stream, owner), None, (owner,))

    def _removed(self, _: Any, stream: Any, owner: JID) -> None:
        self._removing.discard(stream)
        if stream in self._waiting_room:
            if stream in self._acked_early:
                self._acked_early.discard(stream)
                self._read(stream, self._waiting_room.pop(stream))
            return  # else it goes on at the client's acknowledgement
        if owner in self.stored_during_flush:
            self.stored_during_flush.discard(owner)
            self._read(stream, owner)
        else:
            self._done(owner)

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
