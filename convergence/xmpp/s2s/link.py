# -*- test-case-name: tests.test_s2s_link -*-
"""
Our way to one remote domain from one local domain: the outgoing stream
(at most one), the stanzas queued while it is found, connected and
authenticated, and the dialback questions (C{<db:verify/>}) for that
domain's authoritative server.

A link connects on demand, tries each target the resolver gives in turn,
and gives up after C{s2s.queue_timeout} seconds (C{remote-server-timeout})
or when no target is left (C{remote-server-not-found}).  A ready stream
that closes leaves the link idle; the next stanza connects again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lxml import etree
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.xmpp.s2s import dialback
from convergence.xmpp.s2s.outbound import S2SOutbound
from convergence.xmpp.s2s.queue import StanzaQueue
from convergence.xmpp.s2s.resolver import Target

if TYPE_CHECKING:
    from convergence.xmpp.s2s.manager import S2SManager

IDLE = "idle"
CONNECTING = "connecting"
NEGOTIATING = "negotiating"
READY = "ready"

log = Logger()


class OutgoingLink:
    """Stanzas and dialback questions from C{local} to C{remote}."""

    def __init__(self, manager: "S2SManager", local: str, remote: str) -> None:
        self.manager = manager
        self.local = local
        self.remote = remote
        self.state = IDLE
        self.stream: S2SOutbound | None = None
        self.queue = StanzaQueue(manager.config.max_queue, manager.bounce)
        #: stream id -> (question, Deferred of validity), in asking order
        self.verifies: dict[tuple[str, str], tuple[etree._Element, Deferred]] = {}
        self._unsent: list[etree._Element] = []
        self._deadline: IDelayedCall | None = None
        self._attempt = 0

    def __repr__(self) -> str:
        return f"<OutgoingLink {self.local}->{self.remote} {self.state}>"

    # What the manager asks
    def send(self, stanza: etree._Element) -> None:
        """Send now if ready, else queue and make sure we connect."""
        if self.state == READY and self.stream is not None:
            self.stream.send_stanza(stanza)
            return
        self.queue.put(stanza)
        self._start()

    def ask_verify(self, receiving: str, stream_id: str, key: str) -> Deferred:
        """Ask the remote domain's server whether C{key} is its key for
        C{stream_id} (we are the receiving server C{receiving})."""
        if len(self.verifies) >= self.manager.config.max_queue:
            return succeed(False)  # a flood of keys: no more questions
        question = dialback.element(dialback.VERIFY, receiving, self.remote,
                                    text=key, id_=stream_id)
        d: Deferred = Deferred()
        previous = self.verifies.pop((stream_id, key), None)
        if previous is not None and not previous[1].called:
            previous[1].callback(False)
        self.verifies[(stream_id, key)] = (question, d)
        if self.stream is not None and self.stream.negotiated:
            self.stream.send(question)
        else:
            self._unsent.append(question)
            self._start()
        return d

    def close(self) -> None:
        if self.stream is not None and not self.stream.closed:
            self.stream.close(wait=False)

    # Connecting
    def _start(self) -> None:
        if self.state != IDLE:
            return
        self.state = CONNECTING
        self._deadline = self.manager.clock.callLater(
            self.manager.config.queue_timeout, self._timed_out)
        d = self.manager.resolver.resolve(self.remote)
        d.addCallbacks(self._resolved, self._not_resolved)
        d.addErrback(lambda f: log.failure("s2s connect", f))

    def _not_resolved(self, failure: Failure) -> None:
        self._give_up("remote-server-not-found", f"cannot resolve {self.remote}")

    def _resolved(self, targets: list[Target]) -> None:
        if self.state != CONNECTING:
            return
        self._try(list(targets))

    def _try(self, targets: list[Target]) -> None:
        if self.state != CONNECTING:
            return
        if not targets:
            self._give_up("remote-server-not-found", f"cannot connect to {self.remote}")
            return
        target = targets.pop(0)
        stream = S2SOutbound(self, target.direct_tls)
        self._attempt += 1
        attempt = self._attempt
        d = self.manager.connect(target, stream)

        def connected(_: Any) -> None:
            if self.state != CONNECTING or attempt != self._attempt:
                stream.close(wait=False)
                return
            self.stream = stream
            self.state = NEGOTIATING

        def not_connected(failure: Failure) -> None:
            if attempt != self._attempt:
                return  # given up (timed out) meanwhile
            log.info("s2s: {host}:{port} for {remote}: {reason}", host=target.host,
                     port=target.port, remote=self.remote,
                     reason=failure.getErrorMessage())
            self._try(targets)

        d.addCallbacks(connected, not_connected)

    def _timed_out(self) -> None:
        self._deadline = None
        self._give_up("remote-server-timeout", f"{self.remote} did not answer in time")

    def _give_up(self, condition: str, text: str) -> None:
        if self.state == READY:
            return
        log.info("s2s: {local} -> {remote}: {text}", local=self.local,
                 remote=self.remote, text=text)
        self._reset()
        self.queue.bounce_all(condition, text)
        self._fail_verifies()
        self.manager.link_done(self)

    def _fail_verifies(self) -> None:
        verifies, self.verifies = self.verifies, {}
        for _, d in verifies.values():
            if not d.called:
                d.callback(False)

    def _reset(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        self._attempt += 1
        self._unsent = []
        stream, self.stream = self.stream, None
        self.state = IDLE
        if stream is not None and not stream.closed:
            stream.close()

    # What the stream reports
    def negotiated(self, stream: S2SOutbound) -> None:
        if stream is not self.stream:
            return
        unsent, self._unsent = self._unsent, []
        for question in unsent:
            stream.send(question)

    def ready(self, stream: S2SOutbound) -> None:
        if stream is not self.stream:
            return
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        self.state = READY
        for stanza in self.queue.drain():
            stream.send_stanza(stanza)

    def verify_answered(self, answer: etree._Element) -> None:
        key = None
        stream_id = answer.get("id", "")
        for sid, k in self.verifies:
            if sid == stream_id:
                key = (sid, k)
                break
        if key is None or answer.get("from") != self.remote:
            return
        _, d = self.verifies.pop(key)
        d.callback(answer.get("type") == "valid")

    def failed(self, stream: S2SOutbound, condition: str, text: str) -> None:
        if stream is not self.stream:
            return
        self._give_up(condition, text)

    def lost(self, stream: S2SOutbound) -> None:
        if stream is not self.stream:
            return
        if self.state == READY:
            self.stream = None
            self.state = IDLE
            self._fail_verifies()
            if self.queue:
                self._start()
            else:
                self.manager.link_done(self)
            return
        self._give_up("remote-server-not-found", f"{self.remote} closed the stream")
