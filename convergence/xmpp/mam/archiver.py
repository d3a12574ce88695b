# -*- test-case-name: tests.test_mam -*-
"""
Archiving one-to-one messages of local users (XEP-0313 section 6.1.1).

Every message passes C{pre-stanza} here (L{PRIORITY} for the sender's copy,
L{INCOMING_PRIORITY} for the recipient's: see there).  Stanza-ids claiming to be by the sender's or the
recipient's account are removed (XEP-0359: only the server assigns them).
A message that L{archivable} keeps goes into

  - the sender's archive when a local client sent it (outgoing), and
  - the recipient's archive when it is to a local account that has a
    resource bound (incoming), or, when none is, on C{message/offline}
    (the account exists and offline storage is next).  The recipient's
    copy carries C{<stanza-id by='user@domain'/>} from then on, so the
    live message, its Carbons and its offline copy all name the id.

A message to oneself is archived once.  Deciding needs the owner's
preferences (XEP-0441) and, for C{default='roster'}, the roster: both
are kept in memory while the owner has a resource bound (loaded at
C{c2s/bound}).  Work for an owner whose preferences are not in memory yet
waits for them, in arrival order, per owner: an outgoing copy is written
later while the message goes on at once; a message whose incoming copy
waits is held (its stanza-id depends on the decision) and routed on once
the preferences are loaded, in order with that owner's other messages.
That is the only wait, and it is for a preference, never for the
archive: archive writes are queued on the database thread and delivery
goes on at once.

A stanza that comes back through the router (origin C{None}) with an id
this server issued is not archived again.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lxml import etree
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.store.interfaces import ArchivedMessage, ArchivePrefs
from convergence.xmpp.jid import JID
from convergence.xmpp.mam.prefs import decide
from convergence.xmpp.mam.rules import (
    add_stanza_id,
    archivable,
    stanza_ids,
    stored_copy,
    strip_stanza_ids,
)
from convergence.xmpp.router import StanzaEvent

__all__ = ["PRIORITY", "Archiver"]

#: priorities on C{pre-stanza}.  The sender's copy is archived after
#: blocking's outbound check (200: a message refused as blocked is not
#: kept) and before applications (100) and chat rooms (60) take theirs;
#: the recipient's copy after blocking's inbound check (50: a blocked
#: sender's message never reaches the archive) and before carbons (5)
#: and delivery (0), which see its stanza-id.
PRIORITY = 190
INCOMING_PRIORITY = 45
#: archive ids remembered, to recognise a message routed a second time
RECENT_IDS = 4096

log = Logger()


@dataclass
class _Context:
    """What deciding for one owner needs; C{prefs} is C{None} when they
    could not be loaded (then nothing is archived for the owner)."""

    prefs: ArchivePrefs | None
    roster: Any = None


@dataclass(frozen=True)
class _Copy:
    """One archive a message goes into."""

    owner: JID
    peer: JID
    incoming: bool


_ID_BYTES = 12
#: random bytes read from the OS at once (one system call per 341 ids)
_POOL_SIZE = 4096 - 4096 % _ID_BYTES
_pool = bytearray()


def new_id() -> str:
    """An archive id: 96 random bits, URL-safe (XEP-0359 section 7: it
    tells nothing, not even the archive's size)."""
    global _pool
    if len(_pool) < _ID_BYTES:
        _pool = bytearray(secrets.token_bytes(_POOL_SIZE))
    chunk = bytes(_pool[:_ID_BYTES])
    del _pool[:_ID_BYTES]
    return base64.urlsafe_b64encode(chunk).decode()


class Archiver:
    """Puts messages into their owners' archives."""

    def __init__(self, server: Any, store: Any, default_prefs: ArchivePrefs) -> None:
        self.server = server
        self.store = store
        self.default_prefs = default_prefs
        self._contexts: dict[JID, _Context] = {}
        self._loading: set[JID] = set()
        #: work waiting for an owner's preferences, in arrival order
        self._waiting: dict[JID, list[Callable[[], None]]] = {}
        #: id() of stanzas being routed on after a hold
        self._resuming: set[int] = set()
        self._offline_resuming: set[int] = set()
        self._issued: OrderedDict[str, JID] = OrderedDict()
        self._writes = WriteBatch(server, store)
        #: the message the sender's copy was made of, and its bytes
        self._last_copy: tuple[etree._Element, bytes] | None = None
        #: messages whose sender's copy is archived, by id(): a message a
        #: module holds and routes again (blocking) is kept once
        self._sent: OrderedDict[int, etree._Element] = OrderedDict()
        #: preferences being applied (waiting for a roster), by owner
        self._latest: dict[JID, ArchivePrefs] = {}
        #: the archive id of the sender's copy of recent messages, by
        #: id() of the message (its sent Carbons copy names it)
        self._sent_ids: OrderedDict[int, tuple[etree._Element, JID, str]] = OrderedDict()

    def install(self) -> None:
        hook = self.server.bus.hook
        hook("pre-stanza", self.on_outgoing, PRIORITY)
        hook("pre-stanza", self.on_incoming, INCOMING_PRIORITY)
        # before push (10) and storage (0): they see the stanza-id, and a
        # held message reaches them once
        hook("message/offline", self.on_offline, 100)
        hook("c2s/bound", self.on_bound)
        hook("c2s/unbound", self.on_unbound)

    # Preferences in memory
    def on_bound(self, stream: Any) -> None:
        self.load(stream.jid.bare)

    def on_unbound(self, stream: Any) -> None:
        if stream.jid is not None:
            self.release(stream.jid.bare)

    def load(self, owner: JID) -> None:
        """Bring C{owner}'s preferences (and roster if they need it) into
        memory, unless they are there or on their way."""
        if owner in self._contexts or owner in self._loading:
            return
        self._loading.add(owner)
        d = self.server.run_in_db(self.store.prefs, owner.user, owner.host)
        d.addCallbacks(self._prefs_loaded, self._load_failed, (owner,), None, (owner,))

    def _prefs_loaded(self, prefs: ArchivePrefs | None, owner: JID) -> None:
        self.use(owner, prefs or self.default_prefs)

    def use(self, owner: JID, prefs: ArchivePrefs) -> None:
        """Decide with C{prefs} for C{owner} from now on (the latest call
        wins, even if an earlier one still waits for the roster)."""
        self._latest[owner] = prefs
        rosters = getattr(self.server, "rosters", None)
        if prefs.default == "roster" and rosters is not None:
            rosters.use(owner, lambda roster: self._apply(owner, prefs, roster))
        else:
            self._apply(owner, prefs, None)

    def _apply(self, owner: JID, prefs: ArchivePrefs, roster: Any) -> None:
        if self._latest.get(owner) is not prefs:
            return  # newer preferences came meanwhile
        del self._latest[owner]
        self._ready(owner, _Context(prefs, roster))

    def _ready(self, owner: JID, context: _Context) -> None:
        self._loading.discard(owner)
        self._contexts[owner] = context
        waiting = self._waiting.get(owner, [])
        while waiting:  # work done here may queue more for this owner
            work = waiting.pop(0)
            try:
                work()
            except Exception:
                log.failure("archiving work for {owner} failed", owner=str(owner))
        self._waiting.pop(owner, None)
        self.release(owner)

    def _load_failed(self, failure: Failure, owner: JID) -> None:
        log.failure("could not load the archiving preferences of {owner}", failure,
                    owner=str(owner))
        failed = _Context(None)
        self._ready(owner, failed)
        if self._contexts.get(owner) is failed:
            del self._contexts[owner]  # the next message tries again

    def release(self, owner: JID) -> None:
        """Forget C{owner}'s preferences when nothing needs them."""
        if owner in self._contexts and not self.server.registry.resources(owner) \
                and not self._waiting.get(owner):
            del self._contexts[owner]

    def prefs(self, owner: JID) -> ArchivePrefs | None:
        """C{owner}'s preferences if they are in memory."""
        context = self._contexts.get(owner)
        return None if context is None else context.prefs

    # Waiting
    @property
    def pending(self) -> int:
        """Messages held until an owner's preferences are read (stream
        management waits for them before it acknowledges)."""
        return sum(len(works) for works in self._waiting.values())

    def _ready_for(self, owner: JID) -> bool:
        """Whether work for C{owner} can be done now."""
        return owner in self._contexts and not self._waiting.get(owner)

    def _wait(self, owner: JID, work: Callable[[], None]) -> None:
        """Do C{work} once C{owner}'s preferences are in memory, after the
        work that waits before it."""
        self._waiting.setdefault(owner, []).append(work)
        self.load(owner)

    # Messages
    def on_outgoing(self, event: StanzaEvent) -> bool:
        return self.on_stanza(event, incoming=False)

    def on_incoming(self, event: StanzaEvent) -> bool:
        return self.on_stanza(event, incoming=True)

    def on_stanza(self, event: StanzaEvent, incoming: bool) -> bool:
        if event.kind != "message" or id(event.stanza) in self._resuming:
            return False
        copies = [c for c in self._copies(event) if c.incoming == incoming]
        if not incoming and copies:
            key = id(event.stanza)
            if self._sent.get(key) is event.stanza:
                return False
            self._sent[key] = event.stanza
            if len(self._sent) > RECENT_IDS:
                self._sent.popitem(last=False)
        if not copies:
            return False
        stanza = event.stanza
        last = self._last_copy
        if last is not None and last[0] is stanza:
            data = last[1]  # serialised by the outgoing pass a moment ago
        else:
            data = stored_copy(stanza)
        self._last_copy = (stanza, data) if not incoming else None
        now = self.server.clock.seconds()
        held = None
        for copy in copies:
            if copy.incoming and not self._ready_for(copy.owner):
                held = copy
            elif self._ready_for(copy.owner):
                self._write(stanza, copy, data, now)
            else:  # outgoing: nothing in the message depends on it
                self._wait(copy.owner, lambda c=copy: self._write(None, c, data, now))
        if held is None:
            return False
        self._wait(held.owner, lambda: self._resume(event, held, data, now))
        return True

    def _resume(self, event: StanzaEvent, copy: _Copy, data: bytes, now: float) -> None:
        """Archive a held message's incoming copy, then route it on."""
        self._write(event.stanza, copy, data, now)
        key = id(event.stanza)
        self._resuming.add(key)
        try:
            self.server.router.route(event.stanza, event.origin)
        finally:
            self._resuming.discard(key)

    def _copies(self, event: StanzaEvent) -> list[_Copy]:
        """Guard the stanza-ids; the archives C{event}'s message goes into
        now (the recipient's waits for C{message/offline} if it has no
        resource bound)."""
        stanza = event.stanza
        sender = event.sender.bare
        recipient = None
        seen = False
        if event.to_type in ("bare", "full") and event.to.user is not None:
            recipient = event.to.bare
            seen = event.origin is None and any(
                self._issued.get(s.get("id")) == recipient
                for s in stanza_ids(stanza, recipient))
            if not seen:
                strip_stanza_ids(stanza, recipient)
        # a local client's message (not a remote server's, nor the server's)
        local_sender = event.origin is not None and event.sender.user is not None \
            and self.server.router.is_local(event.sender.host)
        if local_sender and sender != recipient:
            strip_stanza_ids(stanza, sender)
        if not archivable(stanza):
            return []
        copies = []
        guests = self.server.guests  # no archive: nobody can read it later
        if local_sender and sender != recipient and event.to_type != "host" \
                and not guests.is_guest(sender):
            copies.append(_Copy(sender, event.to, incoming=False))
        if recipient is not None and not seen \
                and self.server.registry.resources(recipient) \
                and not guests.is_guest(recipient):
            copies.append(_Copy(recipient, event.sender, incoming=True))
        return copies

    def on_offline(self, event: StanzaEvent) -> bool:
        """A message for an account with no resource bound, on its way to
        offline storage: archive it first (once)."""
        stanza = event.stanza
        owner = event.to.bare
        if id(event) in self._offline_resuming or not archivable(stanza) \
                or stanza_ids(stanza, owner):
            return False
        copy = _Copy(owner, event.sender, incoming=True)
        data = stored_copy(stanza)
        now = self.server.clock.seconds()
        if self._ready_for(owner):
            self._write(stanza, copy, data, now)
            return False
        self._wait(owner, lambda: self._offline_resume(event, copy, data, now))
        return True

    def _offline_resume(self, event: StanzaEvent, copy: _Copy, data: bytes,
                        now: float) -> None:
        """Archive a held offline message, then store it, or deliver it if
        the recipient came online meanwhile (its flush may be over)."""
        self._write(event.stanza, copy, data, now)
        online = bool(self.server.registry.most_available(event.to.bare))
        key = id(event)
        self._offline_resuming.add(key)
        try:
            handled = self.server.bus.fire(
                "message/bare" if online else "message/offline", event)
        finally:
            self._offline_resuming.discard(key)
        if not handled:
            event.reply_error("service-unavailable", "The recipient is not online")

    def _write(self, stanza: etree._Element | None, copy: _Copy, data: bytes,
               now: float) -> None:
        """Archive one copy if its owner's preferences allow; an incoming
        one's id goes into C{stanza}."""
        context = self._contexts.get(copy.owner)
        if context is None or context.prefs is None \
                or not decide(context.prefs, copy.peer, self._in_roster(copy, context)):
            return
        id_ = new_id()
        self._remember(id_, copy.owner)
        peer = copy.peer
        message = ArchivedMessage(id_, now, str(peer.bare), peer.resource or "", data)
        self._writes.add(copy.owner.user, copy.owner.host, message)
        if copy.incoming and stanza is not None:
            add_stanza_id(stanza, copy.owner, id_)
        elif stanza is not None:
            self._sent_ids[id(stanza)] = (stanza, copy.owner, id_)
            if len(self._sent_ids) > RECENT_IDS:
                self._sent_ids.popitem(last=False)

    def sent_id(self, stanza: etree._Element) -> tuple[JID, str] | None:
        """(owner, archive id) of the sender's archived copy of C{stanza},
        if it was just archived (for its sent Carbons copy)."""
        found = self._sent_ids.get(id(stanza))
        if found is None or found[0] is not stanza:
            return None
        return found[1], found[2]

    def _in_roster(self, copy: _Copy, context: _Context) -> bool:
        rosters = getattr(self.server, "rosters", None)
        roster = rosters.cached(copy.owner) if rosters is not None else None
        roster = roster or context.roster
        if roster is None:
            return False
        item = roster.items.get(str(copy.peer.bare))
        return item is not None and item.listed

    def _remember(self, id_: str, owner: JID) -> None:
        self._issued[id_] = owner
        while len(self._issued) > RECENT_IDS:
            self._issued.popitem(last=False)



class WriteBatch:
    """
    Archive writes, committed in batches: each write is queued, and one
    job on the database thread takes every write queued by the time it
    runs and appends them in one transaction.  Under load many messages
    share a commit and a thread hand-off; a query or any other database
    work submitted after a write still runs after it (a job is queued
    ahead of it, or the running one has taken the write).
    """

    def __init__(self, server: Any, store: Any) -> None:
        self.server = server
        self.store = store
        self._lock = threading.Lock()
        self._queue: list[tuple[str, str, ArchivedMessage]] = []
        self._scheduled = False

    def add(self, localpart: str, domain: str, message: ArchivedMessage) -> None:
        with self._lock:
            self._queue.append((localpart, domain, message))
            if self._scheduled:
                return
            self._scheduled = True
        self.server.run_in_db(self._drain).addErrback(self._failed)

    def _drain(self) -> int:
        """On the database thread: write what is queued now."""
        with self._lock:
            self._scheduled = False
            batch, self._queue = self._queue, []
        if batch:
            self.store.append_many(batch)
        return len(batch)

    @staticmethod
    def _failed(failure: Failure) -> None:
        log.failure("could not archive messages", failure)
