# -*- test-case-name: tests.test_sip_transaction -*-
"""
RFC 3261 section 17 timers (table 4 of RFC 3261, plus RFC 6026's L and M),
all derived from T1, T2 and T4.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Protocol

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

    __slots__ = ("clock", "_calls")

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._calls: dict[str, IDelayedCall] | None = None

    def start(self, name: str, delay: float, fire: Callable[[], None]) -> None:
        """(Re)start timer C{name}: C{fire} runs after C{delay} seconds."""
        self.cancel(name)
        if self._calls is None:
            self._calls = {}
        self._calls[name] = self.clock.callLater(delay, fire)

    def cancel(self, name: str) -> None:
        """Stop timer C{name} if it runs."""
        if self._calls is None:
            return
        call = self._calls.pop(name, None)
        if call is not None and call.active():
            call.cancel()

    def cancel_all(self) -> None:
        """Stop every timer (and forget the ones that fired)."""
        calls, self._calls = self._calls, None
        for call in (calls or {}).values():
            if call.active():
                call.cancel()


class Waiting(Protocol):
    """A transaction in a final wait (see L{Waits})."""

    def terminate(self) -> None:
        ...


class Waits:
    """
    The final waits of transactions: Timers D, I, J, K, L and M, at whose
    end a transaction only terminates.

    Every wait of one timer lasts as long for every transaction, so the
    waits of one length form a queue in the order they end, and one delayed
    call (for the head of each queue) serves them all: tens of thousands of
    waiting transactions cost a tuple each, not a delayed call each.
    """

    __slots__ = ("clock", "_queues", "_calls", "_expire")

    def __init__(self, clock: IReactorTime,
                 expire: Callable[[Any], None] | None = None) -> None:
        """@param expire: called with each item whose wait ends, instead of
            its C{terminate()} (the items may then be plain values)."""
        self.clock = clock
        self._queues: dict[float, deque[tuple[float, Any]]] = {}
        self._calls: dict[float, IDelayedCall] = {}
        self._expire = expire

    def start(self, delay: float, waiting: Waiting | Any) -> None:
        """C{waiting.terminate()} in C{delay} seconds (it may end before)."""
        queue = self._queues.get(delay)
        if queue is None:
            queue = self._queues[delay] = deque()
        queue.append((self.clock.seconds() + delay, waiting))
        if delay not in self._calls:
            self._calls[delay] = self.clock.callLater(delay, self._due, delay)

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def _due(self, delay: float) -> None:
        del self._calls[delay]
        queue = self._queues[delay]
        now = self.clock.seconds()
        try:
            expire = self._expire
            while queue and queue[0][0] <= now:
                item = queue.popleft()[1]
                if expire is None:
                    item.terminate()
                else:
                    expire(item)
        finally:  # one failing terminate() must not strand the rest
            if queue:
                self._calls[delay] = self.clock.callLater(
                    max(0.0, queue[0][0] - now), self._due, delay)

    def stop(self) -> None:
        """End every wait now (the stack is stopping)."""
        for call in self._calls.values():
            call.cancel()
        self._calls.clear()
        queues, self._queues = self._queues, {}
        for queue in queues.values():
            for _, waiting in queue:
                if self._expire is None:
                    waiting.terminate()
                else:
                    self._expire(waiting)
