# -*- test-case-name: tests.test_sip_transaction -*-
"""
Server transactions (RFC 3261 section 17.2, with RFC 6026's Accepted state).

Each class is one finite-state machine; states and timers carry the RFC's
names.  A transaction sends through C{send(message)} (bound by the
transaction layer to the request's source) and reports to its owner through
C{on_terminated(tx)} and C{on_timeout(tx)}.

Once a final response is sent a transaction only waits (Timer J, L, I or
the ACK): it then lets go of the request and of the application's objects
(L{ServerTransaction._linger}) and keeps the response as it went on the wire
(the C{send} callable may return such a form), so that tens of thousands of
waiting transactions stay cheap to hold and to garbage-collect.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from convergence.sip.stats import UNCOUNTED, TransactionStats
from convergence.sip.timers import RunningTimers, Timers, Waits

PROCEEDING = "Proceeding"
TRYING = "Trying"
COMPLETED = "Completed"
CONFIRMED = "Confirmed"
ACCEPTED = "Accepted"
TERMINATED = "Terminated"

Send = Callable[[Any], None]
#: What takes over a transaction's final wait: (transaction, delay, record).
Park = Callable[[Any, float, tuple], None]


class ServerTransaction:
    """What both server transaction machines share."""

    log = Logger()
    kind = "server"
    #: The machine's first state (RFC 3261 17.2.1 and 17.2.2).
    initial_state = ""
    __slots__ = ("key", "request", "method", "_send", "reliable", "clock", "timers",
                 "_on_terminated", "_on_timeout", "last_response", "final_status",
                 "to_tag", "application_request", "state", "_timers", "_waits", "_stats",
                 "_park")

    def __init__(self, key: Any, request: Any, send: Send, reliable: bool,
                 clock: IReactorTime, timers: Timers,
                 on_terminated: Callable[["ServerTransaction"], None],
                 on_timeout: Callable[["ServerTransaction"], None] | None = None,
                 waits: Waits | None = None,
                 stats: TransactionStats = UNCOUNTED,
                 park: Park | None = None) -> None:
        """@param park: takes over a transaction that only waits from now
            on (L{TransactionLayer._park}); without one, the transaction
            waits in C{waits} itself."""
        self.key = key
        self.request = request
        self.method = request.method
        self._send = send
        self.reliable = reliable
        self.clock = clock
        self.timers = timers
        self._on_terminated = on_terminated
        self._on_timeout = on_timeout
        self.last_response: Any = None
        self.final_status = 0
        self.to_tag: str | None = None
        self.application_request: Any = None
        self.state = self.initial_state
        self._timers: RunningTimers | None = None  # made when first needed
        self._waits = waits if waits is not None else Waits(clock)
        self._stats = stats
        self._park = park

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.state}>"

    @property
    def _running(self) -> RunningTimers:
        """The transaction's own timers (G and H; the final waits are in L{Waits})."""
        if self._timers is None:
            self._timers = RunningTimers(self.clock)
        return self._timers

    @property
    def final_sent(self) -> bool:
        """Whether a final response has been sent."""
        return self.final_status >= 200

    def _transmit(self, response: Any) -> Any:
        """Send C{response}; the form to retransmit it in (or C{None})."""
        try:
            wire = self._send(response)
        except Exception:
            self.log.failure("sending a response failed; ending {tx!r}", tx=self)
            self.terminate()
            return None
        return response if wire is None else wire

    def _respond(self, response: Any) -> None:
        """Send the TU's C{response} and remember it."""
        if response.status >= 200:
            self.final_status = response.status
        self.last_response = self._transmit(response)

    def _linger(self, keep_response: bool) -> None:
        """Only waiting from now on: drop what the wait does not need."""
        self.request = None
        self.application_request = None
        if not keep_response:
            self.last_response = None

    def _final_wait(self, delay: float) -> None:
        """Only wait C{delay} seconds (Timer I, J or L), then terminate.

        With a C{park}, the layer keeps a plain record of this wait (its
        state, method, final status, To tag and the response as sent) in
        place of the transaction, so tens of thousands of waits leave
        nothing for the garbage collector to walk."""
        if self._park is None:
            self._waits.start(delay, self)
            return
        wire = self.last_response
        if isinstance(wire, tuple):
            wire = tuple(wire)  # the plain tuple the collector skips
        self._park(self, delay, (self.state, self.method, self.final_status,
                                 self.to_tag, wire))

    def terminate(self) -> None:
        """Enter Terminated: cancel every timer and leave the layer."""
        if self.state == TERMINATED:
            return
        self.state = TERMINATED
        if self._timers is not None:
            self._timers.cancel_all()
        self._on_terminated(self)

    def transport_error(self) -> None:
        """RFC 3261 17.2.4: the transport failed; inform the TU and end."""
        if self._on_timeout is not None and self.state != TERMINATED:
            self._on_timeout(self)
        self.terminate()


class InviteServerTransaction(ServerTransaction):
    """RFC 3261 17.2.1, figure 7, as amended by RFC 6026 (figure 5)."""

    __slots__ = ("_g_interval",)
    initial_state = PROCEEDING

    def receive_request(self, request: Any) -> Any:
        """
        A retransmission of the INVITE, or an ACK, matched this transaction.

        @return: the ACK when the TU must see it (an ACK to a 2xx, received
            in Accepted), else C{None}.
        """
        if request.method == "ACK":
            if self.state == COMPLETED:
                self.state = CONFIRMED
                self._linger(keep_response=False)
                self._running.cancel("G")
                self._running.cancel("H")
                delay = self.timers.I(self.reliable)
                if delay:
                    self._final_wait(delay)  # Timer I
                else:
                    self.terminate()
            elif self.state == ACCEPTED:
                return request
            return None
        if self.state in (PROCEEDING, COMPLETED) and self.last_response is not None:
            self._transmit(self.last_response)
        return None

    def send_response(self, response: Any) -> None:
        """The TU sends a response to the INVITE."""
        status = response.status
        if self.state == PROCEEDING:
            self._respond(response)
            if self.state == TERMINATED:  # the transport failed
                return
            if 200 <= status < 300:
                self.state = ACCEPTED
                # RFC 6026 8.7: INVITE retransmissions are absorbed here; the
                # TU's own 2xx retransmissions pass through (below).
                self._linger(keep_response=False)
                self._final_wait(self.timers.L)  # Timer L
            elif status >= 300:
                self.state = COMPLETED
                self._linger(keep_response=True)
                if not self.reliable:
                    self._g_interval = self.timers.G
                    self._running.start("G", self._g_interval, self._timer_g)
                self._running.start("H", self.timers.H, self._timer_h)
        elif self.state == ACCEPTED and 200 <= status < 300:
            # RFC 6026 8.5: 2xx retransmissions from the TU pass through.
            self._transmit(response)
        else:
            self.log.warn("{tx!r}: dropping a {status} response in state {state}",
                          tx=self, status=status, state=self.state)

    def _timer_g(self) -> None:
        if self.state != COMPLETED:
            return
        self._stats.timers["G"] += 1
        self._transmit(self.last_response)
        self._g_interval = min(2 * self._g_interval, self.timers.T2)
        self._running.start("G", self._g_interval, self._timer_g)

    def _timer_h(self) -> None:
        self._stats.timers["H"] += 1
        # the UA core logs the timeout (at info); counted in the metrics
        self.log.debug("{tx!r}: no ACK for the final response (Timer H)", tx=self)
        if self._on_timeout is not None:
            self._on_timeout(self)
        self.terminate()


class NonInviteServerTransaction(ServerTransaction):
    """RFC 3261 17.2.2, figure 8."""

    __slots__ = ()
    initial_state = TRYING

    def receive_request(self, request: Any) -> Any:
        """A retransmission of the request: resend the last response."""
        if self.state in (PROCEEDING, COMPLETED) and self.last_response is not None:
            self._transmit(self.last_response)
        return None

    def send_response(self, response: Any) -> None:
        """The TU sends a response."""
        status = response.status
        if self.state not in (TRYING, PROCEEDING):
            self.log.warn("{tx!r}: dropping a {status} response in state {state}",
                          tx=self, status=status, state=self.state)
            return
        self._respond(response)
        if self.state == TERMINATED:  # the transport failed
            return
        if status < 200:
            self.state = PROCEEDING
            return
        self.state = COMPLETED
        self._linger(keep_response=True)
        delay = self.timers.J(self.reliable)
        if delay:
            self._final_wait(delay)  # Timer J
        else:
            self.terminate()
