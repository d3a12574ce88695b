# -*- test-case-name: tests.test_sm -*-
"""
XEP-0198: Stream Management (C{urn:xmpp:sm:3}): acknowledgements and
resumption, with nothing lost and nothing delivered twice.

Offered as the stream feature C{<sm/>} after authentication.  C{<enable/>}
on a bound stream starts counting: every stanza the client sends is
counted once handled (c2s's inbound observers), every stanza written to it
is kept, serialised, until the client acknowledges it (outbound
observers).  Counters run modulo 2**32.  The server asks for an
acknowledgement after C{xmpp.sm_ack_every} unacked stanzas or
C{xmpp.sm_ack_interval} seconds; a client acknowledging more than it was
sent ends the stream with C{undefined-condition} /
C{handled-count-too-high}; more than C{xmpp.sm_max_queue} unacknowledged
stanzas end it with C{resource-constraint}.

A resumable session whose connection drops without a closing tag from
either side hibernates (C{stream.hibernating}): it stays bound, its
presence stays, stanzas to it are written nowhere and queued behind the
unacknowledged ones, in order.  C{<resume previd h/>} on a new stream of
the same account answers C{<resumed/>}, moves the session onto the new
connection (an old connection still open is closed with C{conflict}) and
resends what the client has not acknowledged.  A previd that is unknown,
expired or another account's gets C{<failed/>} with C{item-not-found}
(with C{h} for the same account's expired session) and the client binds
as usual.

When a session ends (hibernation timeout, clean close, stream error,
shutdown) its unacknowledged messages go to offline storage through
L{OfflineMessages.keep_for} before C{c2s/closed} broadcasts unavailable
presence; messages that must not be stored, and iq requests, bounce with
C{recipient-unavailable}; carbon copies are dropped (their original
reached its own recipient).

Others may ask L{StreamManagement.room} how many more stanzas a stream's
queue takes and L{StreamManagement.request_ack} for an acknowledgement;
C{sm/acked} (the stream) fires when one acknowledged something (offline
delivery paces a large backlog with them).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict, deque
from typing import Any

from lxml import etree
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from convergence.store.interfaces import IHeldStanzaStore
from convergence.xmpp import ns
from convergence.xmpp.c2s import BIND, READY, NonzaEvent
from convergence.xmpp.errors import StanzaError
from convergence.xmpp.features import Feature
from convergence.xmpp.jid import JID

__all__ = ["FEATURE", "NS", "SmSession", "StreamManagement"]

NS = "urn:xmpp:sm:3"
#: counters are unsigned 32-bit integers that wrap around
MODULUS = 2 ** 32
#: ended sessions whose last inbound count is still reported to a resume
REMEMBERED_ENDED = 1000
CARBONS = "urn:xmpp:carbons:2"
_CARBON_COPIES = (f"{{{CARBONS}}}sent", f"{{{CARBONS}}}received")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)

log = Logger()


def _element(name: str, **attrs: str) -> etree._Element:
    element = etree.Element(f"{{{NS}}}{name}", nsmap={None: NS})
    for key, value in attrs.items():
        element.set(key, value)
    return element


def failed(condition: str, h: int | None = None) -> etree._Element:
    """C{<failed/>} with a stanza error condition (and the inbound count)."""
    element = _element("failed")
    if h is not None:
        element.set("h", str(h))
    etree.SubElement(element, f"{{{ns.STANZA_ERRORS}}}{condition}", nsmap={None: ns.STANZA_ERRORS})
    return element


def parse_h(value: str | None) -> int | None:
    """An C{h} attribute: an unsigned 32-bit integer, else None."""
    if value is None or not value.isascii() or not value.isdigit():
        return None
    h = int(value)
    return h if h < MODULUS else None


class SmSession:
    """The stream management state of one client session."""

    def __init__(self, stream: Any, previd: str | None, max_: int) -> None:
        self.stream = stream
        #: the resumption id (None: not resumable)
        self.id = previd
        self.max = max_
        #: the bound JID, kept: a replaced stream loses its own
        self.jid: JID = stream.jid
        #: stanzas from the client handled so far, modulo 2**32
        self.handled = 0
        #: the last count of ours the client acknowledged
        self.acked = 0
        #: serialised stanzas sent (or queued while hibernating), not yet
        #: acknowledged, oldest first
        self.queue: deque[bytes] = deque()
        #: an <r/> is outstanding
        self.awaiting = False
        self.ack_timer: IDelayedCall | None = None
        #: when the outstanding <r/> must have been answered
        self.ack_deadline: IDelayedCall | None = None
        self.expiry: IDelayedCall | None = None
        self.ended = False
        #: <a/> answers waiting for the store to commit, in order
        self.answers: list[etree._Element] = []
        #: its storable messages are also in the held-stanza store
        #: (while hibernating: a crash loses none)
        self.held = False

    @property
    def sent(self) -> int:
        """Stanzas sent to the client so far, modulo 2**32."""
        return (self.acked + len(self.queue)) % MODULUS

    def unacked_after(self, h: int) -> int | None:
        """How many stanzas the count C{h} acknowledges now, or None if
        that is more than were sent."""
        delta = (h - self.acked) % MODULUS
        return delta if delta <= len(self.queue) else None

    def acknowledge(self, delta: int) -> None:
        for _ in range(delta):
            self.queue.popleft()
        self.acked = (self.acked + delta) % MODULUS

    def cancel_timers(self) -> None:
        for timer in (self.ack_timer, self.ack_deadline, self.expiry):
            if timer is not None and timer.active():
                timer.cancel()
        self.ack_timer = self.ack_deadline = self.expiry = None


class StreamManagement:
    """XEP-0198 for one server: sessions, resumption ids, hibernation."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.config = server.config
        self.clock = server.clock
        #: every stream with stream management enabled
        self.sessions: dict[Any, SmSession] = {}
        #: resumable sessions by id
        self.resumable: dict[str, SmSession] = {}
        #: ended sessions: id -> (account, inbound count), newest last
        self.ended: OrderedDict[str, tuple[JID, int]] = OrderedDict()
        self.shutting_down = False
        #: held-store writes not yet committed
        self.pending = 0
        store = server.im_store
        #: where hibernating sessions' messages survive a crash (or None)
        self.held_store = store if IHeldStanzaStore.providedBy(store) else None

    def install(self) -> None:
        hook = self.server.bus.hook
        hook(f"nonza/{NS}", self.on_nonza)
        hook("c2s/lost", self.on_lost)
        # Ahead of presence: the queue is stored before unavailable goes out.
        hook("c2s/closed", self.on_closed, 100)
        hook("c2s/end-hibernation", self.on_end_hibernation)
        hook("xmpp/shutdown", self.on_shutdown)
        self.server.stream_features.append((NS, "sm"))
        if self.held_store is not None:
            hook("xmpp/started", self.on_started)

    def on_started(self, server: Any) -> bool:
        """What sessions that hibernated when the server died held becomes
        offline messages (before any client can log in)."""
        self._recover()
        return False

    def _recover(self) -> None:
        def moved(n: int) -> None:
            if n:
                log.info("{n} messages held by hibernating sessions of a previous"
                         " run moved to offline storage", n=n)

        d = self.server.run_in_db(self.held_store.recover)
        d.addCallbacks(moved, lambda f: log.failure("recovering held messages failed", f))

    def hibernating(self) -> list[Any]:
        """The streams now hibernating."""
        return [s for s in self.sessions if s.hibernating]

    # Nonzas
    def on_nonza(self, event: NonzaEvent) -> bool:
        stream, element = event.stream, event.element
        name = etree.QName(element).localname
        session = self.sessions.get(stream)
        if name == "enable":
            self._enable(stream, element, session)
        elif name == "resume":
            self._resume(stream, element)
        elif name == "r" and session is not None:
            self._answer(session)
        elif name == "a" and session is not None:
            self._ack(session, element.get("h"))
        else:
            return False  # <r/>, <a/> without enabling: a stream error
        return True

    def _enable(self, stream: Any, element: etree._Element,
                session: SmSession | None) -> None:
        if stream.state != READY or session is not None:
            stream.send(failed("unexpected-request"))  # before binding, or twice
            return
        resume = element.get("resume") in ("true", "1") and self.config.sm_resume_max > 0
        limit = int(self.config.sm_resume_max)
        requested = parse_h(element.get("max"))
        max_ = min(requested, limit) if requested else limit
        previd = secrets.token_urlsafe(24) if resume else None  # 192 random bits
        session = SmSession(stream, previd, max_)
        self.sessions[stream] = session
        enabled = _element("enabled")
        if previd is not None:
            self.resumable[previd] = session
            enabled.set("id", previd)
            enabled.set("resume", "true")
            enabled.set("max", str(max_))
            if self.config.sm_location:
                enabled.set("location", self.config.sm_location)
        stream.send(enabled)
        stream.inbound_observers.append(lambda _: self._received(session))
        stream.outbound_observers.append(
            lambda element, data: self._sent(session, element, data))

    # Counting
    def _answer(self, session: SmSession) -> None:
        """
        Answer <r/>.  While messages are on their way into the database
        (held for a hibernating session, offline storage) the answer waits
        until they are committed, so that a stanza acknowledged to its
        sender survives a crash.  Answers keep their order.
        """
        answer = _element("a", h=str(session.handled))
        if not (session.answers or self._writing()):
            session.stream.send(answer)
            return

        def send(_: Any) -> None:
            if not session.answers:
                return  # sent by an earlier barrier
            if self._writing():  # more writes issued meanwhile (a held
                # message released by the archive): wait for them as well
                self.server.run_in_db(_barrier).addBoth(send)
                return
            answers, session.answers = session.answers, []
            for waiting in answers:
                session.stream.send(waiting)

        session.answers.append(answer)
        self.server.run_in_db(_barrier).addBoth(send)

    def _writing(self) -> int:
        """Messages on their way into the database: held for hibernating
        sessions, into offline storage, or waiting on the archive."""
        return (self.pending + getattr(getattr(self.server, "offline", None), "pending", 0)
                + getattr(getattr(self.server, "archiver", None), "pending", 0))

    def _received(self, session: SmSession) -> None:
        session.handled = (session.handled + 1) % MODULUS

    def _sent(self, session: SmSession, element: etree._Element, data: bytes) -> None:
        if session.ended:
            return
        session.queue.append(data)
        if session.held and self._fate(element) == "store":
            self._hold(session, [element])
        if len(session.queue) > self.config.sm_max_queue:
            log.info("{jid}: {n} stanzas unacknowledged, ending the stream",
                     jid=str(session.jid), n=len(session.queue))
            session.stream.stream_error(
                "resource-constraint", "too many unacknowledged stanzas")
            return
        self._maybe_request(session)

    def _maybe_request(self, session: SmSession) -> None:
        """Ask for an acknowledgement now, or arm the timer that will."""
        stream = session.stream
        if session.awaiting or not session.queue or stream.hibernating or stream.closed:
            return
        if len(session.queue) >= self.config.sm_ack_every:
            self._request(session)
        elif session.ack_timer is None and self.config.sm_ack_interval:
            session.ack_timer = self.clock.callLater(
                self.config.sm_ack_interval, self._ack_timer_fired, session)

    def _ack_timer_fired(self, session: SmSession) -> None:
        session.ack_timer = None
        stream = session.stream
        if (session.queue and not session.awaiting and not session.ended
                and not stream.hibernating and not stream.closed):
            self._request(session)

    def _request(self, session: SmSession) -> None:
        if session.ack_timer is not None and session.ack_timer.active():
            session.ack_timer.cancel()
        session.ack_timer = None
        session.awaiting = True
        session.stream.send(_element("r"))
        if self.config.sm_ack_timeout:
            session.ack_deadline = self.clock.callLater(
                self.config.sm_ack_timeout, self._ack_overdue, session)

    def _ack_overdue(self, session: SmSession) -> None:
        """No answer to <r/>: the connection is dead though TCP has not
        said so (a phone that lost its network).  Drop it; the session
        hibernates as after any connection loss."""
        session.ack_deadline = None
        stream = session.stream
        if not session.awaiting or session.ended or stream.closed or stream.hibernating:
            return
        log.info("{jid}: no acknowledgement in {t} s, dropping the connection",
                 jid=str(session.jid), t=self.config.sm_ack_timeout)
        stream.transport.abortConnection()

    def _ack(self, session: SmSession, value: str | None) -> None:
        stream = session.stream
        h = parse_h(value)
        if h is None:
            stream.stream_error("bad-format", "h must be an unsigned 32-bit integer")
            return
        delta = session.unacked_after(h)
        if delta is None:
            self._too_high(stream, session, h)
            return
        session.acknowledge(delta)
        session.awaiting = False
        if session.ack_deadline is not None and session.ack_deadline.active():
            session.ack_deadline.cancel()
        session.ack_deadline = None
        self._maybe_request(session)
        if delta:
            # room in the queue again (offline delivery waits for it)
            self.server.bus.fire("sm/acked", stream)

    def room(self, stream: Any) -> int | None:
        """How many more stanzas C{stream} may be sent before its
        unacknowledged queue is full (C{None}: no stream management)."""
        session = self.sessions.get(stream)
        if session is None or session.ended:
            return None
        return max(0, self.config.sm_max_queue - len(session.queue))

    def request_ack(self, stream: Any) -> None:
        """Ask the client for an acknowledgement now, unless one is asked."""
        session = self.sessions.get(stream)
        if (session is not None and session.queue and not session.awaiting
                and not session.ended and not stream.hibernating and not stream.closed):
            self._request(session)

    @staticmethod
    def _too_high(stream: Any, session: SmSession, h: int) -> None:
        app = _element("handled-count-too-high", h=str(h), **{"send-count": str(session.sent)})
        stream.stream_error("undefined-condition",
                            f"you acknowledged {h} stanzas but were sent {session.sent}",
                            app=app)

    # Resumption
    def _resume(self, stream: Any, element: etree._Element) -> None:
        if stream.state != BIND:
            stream.send(failed("unexpected-request"))  # after binding
            return
        previd = element.get("previd") or ""
        account = stream.authenticated.bare
        h = parse_h(element.get("h"))
        if h is None:
            stream.send(failed("bad-request"))
            return
        session = self.resumable.get(previd)
        if (session is None or session.ended or session.jid.bare != account
                or session.stream.closing):
            # Another account's id is as unknown as a made-up one.
            known = self.ended.get(previd)
            stream.send(failed("item-not-found",
                               known[1] if known and known[0] == account else None))
            return
        delta = session.unacked_after(h)
        if delta is None:
            self._too_high(stream, session, h)
            return
        session.acknowledge(delta)
        old = session.stream
        if session.expiry is not None and session.expiry.active():
            session.expiry.cancel()
        session.expiry = None
        stream.send(_element("resumed", previd=previd, h=str(session.handled)))
        if session.held:
            session.held = False  # in memory only again, as on any live stream
            d = self.server.run_in_db(self.held_store.release, previd)
            d.addErrback(lambda f: log.failure("releasing held messages failed", f))
        old.take_over(stream)
        self.server.bus.fire("c2s/resumed", old)
        log.info("{jid} resumed, resending {n} stanzas", jid=str(session.jid),
                 n=len(session.queue))
        session.awaiting = False
        for data in session.queue:
            old.resend(data)
        self._maybe_request(session)

    # Hibernation
    def on_lost(self, stream: Any) -> bool:
        """The connection dropped: hibernate if the session may resume."""
        session = self.sessions.get(stream)
        if (session is None or session.id is None or session.ended or self.shutting_down
                or stream.closing or stream.peer_closed or stream.jid is None):
            return False
        session.cancel_timers()
        session.awaiting = False
        stream.hibernating = True
        session.expiry = self.clock.callLater(session.max, self._expire, session)
        if self.held_store is not None and getattr(self.server, "offline", None):
            session.held = True
            stored = []
            for data in session.queue:
                stanza = self._parse(data, session.jid.bare)
                if stanza is not None and self._fate(stanza) == "store":
                    stored.append(stanza)
            self._hold(session, stored)
        log.info("{jid} hibernates for up to {max} s with {n} unacknowledged",
                 jid=str(session.jid), max=session.max, n=len(session.queue))
        self.server.bus.fire("c2s/hibernating", stream)
        return True

    def _expire(self, session: SmSession) -> None:
        session.expiry = None
        log.info("{jid}: hibernation timed out", jid=str(session.jid))
        self._end_hibernation(session.stream)

    def on_end_hibernation(self, stream: Any) -> bool:
        """A hibernating session must end (replaced, queue full)."""
        self._end_hibernation(stream)
        return True

    def _end_hibernation(self, stream: Any) -> None:
        if not stream.hibernating:
            return
        stream.hibernating = False
        self.server.session_ended(stream)

    def on_shutdown(self, server: Any) -> bool:
        """Every session ends now, while the store still takes messages."""
        self.shutting_down = True
        for stream, session in list(self.sessions.items()):
            if stream.hibernating:
                self._end_hibernation(stream)
            else:
                self._finish(session)
        return False

    # The end
    def on_closed(self, stream: Any) -> bool:
        """The session is over: what it did not acknowledge is kept."""
        session = self.sessions.get(stream)
        if session is not None:
            self._finish(session)
        return False

    def _finish(self, session: SmSession) -> None:
        if session.ended:
            return
        session.ended = True
        session.cancel_timers()
        self.sessions.pop(session.stream, None)
        if session.id is not None:
            self.resumable.pop(session.id, None)
            self.ended[session.id] = (session.jid.bare, session.handled)
            while len(self.ended) > REMEMBERED_ENDED:
                self.ended.popitem(last=False)
        queue, session.queue = session.queue, deque()
        owner = session.jid.bare
        held, session.held = session.held, False
        if held:
            self._release_to_offline(session)
        for data in queue:
            stanza = self._parse(data, owner)
            if stanza is None:
                continue
            fate = self._fate(stanza)
            if fate == "store" and not held:
                self.server.offline.keep_for(owner, stanza)
            elif fate == "bounce":
                self._bounce(stanza)

    @staticmethod
    def _parse(data: bytes, owner: JID) -> etree._Element | None:
        try:
            return etree.fromstring(data, _PARSER)
        except etree.XMLSyntaxError:
            log.error("unreadable unacknowledged stanza for {owner}", owner=str(owner))
            return None

    def _fate(self, stanza: etree._Element) -> str:
        """
        What becomes of a stanza a session never acknowledged once the
        session is over: C{store} (offline storage), C{bounce}
        (C{recipient-unavailable}) or C{drop}: carbon copies (the original
        reached its own recipient), presence (state, not redelivered) and
        iq responses.
        """
        kind = etree.QName(stanza).localname
        if kind == "message":
            if any(child.tag in _CARBON_COPIES for child in stanza):
                return "drop"
            offline = getattr(self.server, "offline", None)
            if offline is not None and offline.storable(stanza):
                return "store"
            return "bounce" if stanza.get("type") != "error" else "drop"
        if kind == "iq" and stanza.get("type") in ("get", "set"):
            return "bounce"
        return "drop"

    def _hold(self, session: SmSession, stanzas: list[etree._Element]) -> None:
        """Commit messages of a hibernating session to the held store."""
        if not stanzas:
            return
        owner = session.jid.bare
        offline = self.server.offline
        now = offline.now()
        items = [(now, offline.stamped(owner, stanza)) for stanza in stanzas]
        d = self._write(self.held_store.hold, session.id, owner.user, owner.host, items)
        d.addErrback(lambda f: log.failure("holding messages for {owner} failed", f,
                                           owner=str(owner)))

    def _write(self, f: Any, *args: Any) -> Deferred:
        """A held-store write, counted until it is committed."""
        def committed(result: Any) -> Any:
            self.pending -= 1
            return result

        self.pending += 1
        return self.server.run_in_db(f, *args).addBoth(committed)

    def _release_to_offline(self, session: SmSession) -> None:
        def overflow(stanzas: list[bytes]) -> None:
            for data in stanzas:
                stanza = self._parse(data, session.jid.bare)
                if stanza is not None:
                    self.server.router.bounce(stanza, StanzaError(
                        "service-unavailable", "The recipient's offline storage is full",
                        type="wait"))

        d = self._write(self.held_store.release_to_offline, session.id,
                        self.config.offline_quota)
        self.server.offline.written(session.jid.bare)
        d.addCallbacks(overflow, lambda f: log.failure(
            "moving held messages of {owner} to offline storage failed", f,
            owner=str(session.jid.bare)))

    def _bounce(self, stanza: etree._Element) -> None:
        self.server.router.bounce(stanza, StanzaError(
            "recipient-unavailable", "The recipient's session has ended"))


def _barrier() -> None:
    """Run on the database thread after everything queued before it."""


def install(server: Any) -> None:
    server.sm = StreamManagement(server)
    server.sm.install()


FEATURE = Feature(
    name="sm", spec="XEP-0198", version="1.6.1", install=install,
)
