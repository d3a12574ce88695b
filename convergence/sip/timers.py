# -*- test-case-name: tests.test_sip_transaction -*-
"""
RFC 3261 section 17 timers (table 4 of RFC 3261, plus RFC 6026's L and M),
all derived from T1, T2 and T4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime


@dataclass(frozen=True)
class Timers:
    """
    Transaction timer values in seconds.

    @ivar T1: RTT estimate (default 500 ms).
    @ivar T2: maximum retransmit interval for non-INVITE requests and
        INVITE responses (default 4 s).
    @ivar T4: maximum time a message remains in the network (default 5 s).
    """

    T1: float = 0.5
    T2: float = 4.0
    T4: float = 5.0

    @property
    def A(self) -> float:
        """INVITE request retransmit interval, initially (UDP only)."""
        return self.T1

    @property
    def B(self) -> float:
        """INVITE client transaction timeout."""
        return 64 * self.T1

    def D(self, reliable: bool) -> float:
        """Wait time for response retransmits (client INVITE, Completed)."""
        return 0.0 if reliable else max(32.0, 64 * self.T1)

    @property
    def E(self) -> float:
        """Non-INVITE request retransmit interval, initially (UDP only)."""
        return self.T1

    @property
    def F(self) -> float:
        """Non-INVITE client transaction timeout."""
        return 64 * self.T1

    @property
    def G(self) -> float:
        """INVITE final response retransmit interval, initially (UDP only)."""
        return self.T1

    @property
    def H(self) -> float:
        """Wait time for ACK receipt."""
        return 64 * self.T1

    def I(self, reliable: bool) -> float:  # noqa: E743 - the RFC's name
        """Wait time for ACK retransmits (server INVITE, Confirmed)."""
        return 0.0 if reliable else self.T4

    def J(self, reliable: bool) -> float:
        """Wait time for non-INVITE request retransmits."""
        return 0.0 if reliable else 64 * self.T1

    def K(self, reliable: bool) -> float:
        """Wait time for non-INVITE response retransmits."""
        return 0.0 if reliable else self.T4

    @property
    def L(self) -> float:
        """RFC 6026: wait time for accepted INVITE request retransmits."""
        return 64 * self.T1

    @property
    def M(self) -> float:
        """RFC 6026: wait time for retransmissions of 2xx responses."""
        return 64 * self.T1


class RunningTimers:
    """A transaction's running timers, by RFC name (C{"A"}, C{"G"} …)."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._calls: dict[str, IDelayedCall] = {}

    def start(self, name: str, delay: float, fire: Callable[[], None]) -> None:
        """(Re)start timer C{name}: C{fire} runs after C{delay} seconds."""
        self.cancel(name)
        self._calls[name] = self.clock.callLater(delay, self._fire, name, fire)

    def _fire(self, name: str, fire: Callable[[], None]) -> None:
        self._calls.pop(name, None)
        fire()

    def cancel(self, name: str) -> None:
        """Stop timer C{name} if it runs."""
        call = self._calls.pop(name, None)
        if call is not None and call.active():
            call.cancel()

    def cancel_all(self) -> None:
        """Stop every timer."""
        for name in list(self._calls):
            self.cancel(name)
