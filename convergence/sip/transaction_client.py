# -*- test-case-name: tests.test_sip_transaction -*-
"""
Client transactions (RFC 3261 section 17.1, with RFC 6026's Accepted state).

A transaction sends its request through C{send(message)}, retransmits it on
unreliable transports, and reports responses, timeouts and transport errors
to its owner (the TU) through an L{IClientTransactionUser}-shaped object.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from convergence.sip.stats import UNCOUNTED, TransactionStats
from convergence.sip.timers import RunningTimers, Timers

CALLING = "Calling"
TRYING = "Trying"
PROCEEDING = "Proceeding"
COMPLETED = "Completed"
ACCEPTED = "Accepted"
TERMINATED = "Terminated"

Send = Callable[[Any], None]


class ClientTransactionUser(Protocol):
    """What a client transaction tells its transaction user."""

    def response_received(self, tx: "ClientTransaction", response: Any) -> None:
        ...

    def timed_out(self, tx: "ClientTransaction") -> None:
        ...

    def transport_failed(self, tx: "ClientTransaction") -> None:
        ...


class ClientTransaction:
    """What both client transaction machines share."""

    log = Logger()
    kind = "client"

    def __init__(self, key: Any, request: Any, send: Send, reliable: bool,
                 clock: IReactorTime, timers: Timers, user: ClientTransactionUser,
                 on_terminated: Callable[["ClientTransaction"], None],
                 stats: TransactionStats = UNCOUNTED) -> None:
        self.key = key
        self.request = request
        self.method = request.method
        self._send = send
        self.reliable = reliable
        self.clock = clock
        self.timers = timers
        self.user = user
        self._on_terminated = on_terminated
        self.state = ""
        self._timers = RunningTimers(clock)
        #: the status of the final response received (0: none yet)
        self.final_status = 0
        self._stats = stats

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.state}>"

    def _transmit(self, message: Any) -> bool:
        try:
            self._send(message)
            return True
        except Exception:
            self.log.failure("sending {method} failed", method=self.method)
            self.transport_error()
            return False

    def terminate(self) -> None:
        """Enter Terminated: cancel every timer and leave the layer."""
        if self.state == TERMINATED:
            return
        self.state = TERMINATED
        self._timers.cancel_all()
        self._on_terminated(self)

    def transport_error(self) -> None:
        """RFC 3261 17.1.4: report a transport failure to the TU and end."""
        if self.state == TERMINATED:
            return
        self.terminate()
        self.user.transport_failed(self)

    def _timeout(self) -> None:
        if self.state == TERMINATED:
            return
        self._stats.timers["B" if self.method == "INVITE" else "F"] += 1
        self.terminate()
        self.user.timed_out(self)


class InviteClientTransaction(ClientTransaction):
    """RFC 3261 17.1.1, figure 5, as amended by RFC 6026 (figure 4)."""

    def __init__(self, *args: Any, build_ack: Callable[[Any, Any], Any],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._build_ack = build_ack
        self._a_interval = self.timers.A
        self._ack: Any = None

    def start(self) -> None:
        """Send the INVITE: enter Calling, start Timers A and B."""
        self.state = CALLING
        if not self._transmit(self.request):
            return
        if not self.reliable:
            self._timers.start("A", self._a_interval, self._timer_a)
        self._timers.start("B", self.timers.B, self._timeout)

    def _timer_a(self) -> None:
        if self.state != CALLING:
            return
        self._stats.timers["A"] += 1
        self._transmit(self.request)
        self._a_interval *= 2
        self._timers.start("A", self._a_interval, self._timer_a)

    def cancel_retransmissions(self) -> None:
        """Stop Timer A (e.g. after CANCEL was answered)."""
        self._timers.cancel("A")

    def receive_response(self, response: Any) -> None:
        status = response.status
        state = self.state
        if state in (CALLING, PROCEEDING):
            self._timers.cancel("A")
            if status < 200:
                self.state = PROCEEDING
                self.user.response_received(self, response)
            elif status < 300:
                self._timers.cancel("B")
                self.final_status = status
                self.state = ACCEPTED
                self._timers.start("M", self.timers.M, self.terminate)
                self.user.response_received(self, response)
            else:
                self._timers.cancel("B")
                self.final_status = status
                self.state = COMPLETED
                self._ack = self._build_ack(self.request, response)
                self._transmit(self._ack)
                delay = self.timers.D(self.reliable)
                if delay:
                    self._timers.start("D", delay, self.terminate)
                self.user.response_received(self, response)
                if not delay:
                    self.terminate()
        elif state == COMPLETED and status >= 300:
            self._transmit(self._ack)
        elif state == ACCEPTED and 200 <= status < 300:
            # RFC 6026 7.2: 2xx retransmissions go to the TU (it re-ACKs).
            self.user.response_received(self, response)


class NonInviteClientTransaction(ClientTransaction):
    """RFC 3261 17.1.2, figure 6."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._e_interval = self.timers.E

    def start(self) -> None:
        """Send the request: enter Trying, start Timers E and F."""
        self.state = TRYING
        if not self._transmit(self.request):
            return
        if not self.reliable:
            self._timers.start("E", self._e_interval, self._timer_e)
        self._timers.start("F", self.timers.F, self._timeout)

    def _timer_e(self) -> None:
        if self.state not in (TRYING, PROCEEDING):
            return
        self._stats.timers["E"] += 1
        self._transmit(self.request)
        if self.state == PROCEEDING:
            self._e_interval = self.timers.T2
        else:
            self._e_interval = min(2 * self._e_interval, self.timers.T2)
        self._timers.start("E", self._e_interval, self._timer_e)

    def receive_response(self, response: Any) -> None:
        if self.state not in (TRYING, PROCEEDING):
            return
        if response.status < 200:
            self.state = PROCEEDING
            self.user.response_received(self, response)
            return
        self._timers.cancel("E")
        self._timers.cancel("F")
        self.final_status = response.status
        self.state = COMPLETED
        delay = self.timers.K(self.reliable)
        if delay:
            self._timers.start("K", delay, self.terminate)
        self.user.response_received(self, response)
        if not delay:
            self.terminate()
