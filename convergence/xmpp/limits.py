# -*- test-case-name: tests.test_xmpp_limits -*-
"""
Limits a public XMPP service needs against one abusive peer: a read rate
per connection (with back-pressure, never an unbounded buffer) and failed
authentications counted per address and per account over a window.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime

#: At most this many addresses and accounts are tracked at once; the one
#: whose last failure is oldest is forgotten first.
MAX_TRACKED = 65536


def address_host(address: Any) -> str:
    """The host of a Twisted address (the key of per-address limits)."""
    return getattr(address, "host", str(address))


class ConnectionsPerAddress:
    """Open connections counted by the peer's address, for a limit checked
    at accept time (C{xmpp.max_connections_per_ip},
    C{s2s.max_connections_per_ip})."""

    def __init__(self) -> None:
        self._open: dict[str, int] = {}

    def admits(self, host: str, limit: int) -> bool:
        """Whether one more connection from C{host} stays within C{limit}."""
        return self.count(host) < limit

    def count(self, host: str) -> int:
        """How many connections from C{host} are open."""
        return self._open.get(host, 0)

    def opened(self, host: str) -> None:
        self._open[host] = self._open.get(host, 0) + 1

    def closed(self, host: str) -> None:
        left = self._open.get(host, 0) - 1
        if left > 0:
            self._open[host] = left
        else:
            self._open.pop(host, None)


class ReadRate:
    """
    A token bucket on the bytes one connection sends us.

    Data already read is always processed (TCP has no way to give it back);
    once the bucket runs dry the transport is paused until the deficit has
    been paid, so the kernel's receive window pushes back on the peer.
    """

    def __init__(self, clock: IReactorTime, rate: int, burst: int) -> None:
        self.clock = clock
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = clock.seconds()
        self._resume: IDelayedCall | None = None
        #: bytes accounted for since the connection opened
        self.total = 0

    @property
    def paused(self) -> bool:
        """Whether the transport is held back now."""
        return self._resume is not None and self._resume.active()

    def received(self, size: int, transport: Any) -> None:
        """Account for C{size} bytes; pause C{transport} if over the rate."""
        self.total += size
        now = self.clock.seconds()
        self._tokens = min(self.burst,
                           self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        self._tokens -= size
        if self._tokens >= 0 or self.paused:
            return
        pause = getattr(transport, "pauseProducing", None)
        if pause is None:
            return
        pause()
        self._resume = self.clock.callLater(
            -self._tokens / self.rate, self._unpause, transport)

    def _unpause(self, transport: Any) -> None:
        self._resume = None
        resume = getattr(transport, "resumeProducing", None)
        if resume is not None and getattr(transport, "connected", True):
            resume()

    def stop(self) -> None:
        """The connection is gone: forget the pending resume."""
        if self.paused:
            assert self._resume is not None
            self._resume.cancel()
        self._resume = None


class FailureWindow:
    """How many failures each key had in the last C{window} seconds."""

    def __init__(self, clock: IReactorTime, limit: int, window: float,
                 max_tracked: int = MAX_TRACKED) -> None:
        self.clock = clock
        self.limit = limit
        self.window = window
        self.max_tracked = max_tracked
        self._failures: dict[str, deque[float]] = {}

    def __len__(self) -> int:
        return len(self._failures)

    def _recent(self, key: str) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        horizon = self.clock.seconds() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def exceeded(self, key: str) -> bool:
        """Whether C{key} has had C{limit} failures within the window."""
        times = self._recent(key)
        return times is not None and len(times) >= self.limit

    def record(self, key: str) -> None:
        """Count one failure for C{key} now."""
        times = self._recent(key)
        if times is None:
            times = deque(maxlen=self.limit)
        else:
            del self._failures[key]  # re-inserted last: newest at the end
        times.append(self.clock.seconds())
        self._failures[key] = times
        while len(self._failures) > self.max_tracked:
            del self._failures[next(iter(self._failures))]


class AuthFailureLimits:
    """Failed SASL authentications per IP address and per account."""

    def __init__(self, clock: IReactorTime, per_ip: int, per_account: int,
                 window: float) -> None:
        self.by_ip = FailureWindow(clock, per_ip, window)
        self.by_account = FailureWindow(clock, per_account, window)

    def address_blocked(self, ip: str) -> bool:
        """Whether C{ip} may not try to authenticate for now."""
        return self.by_ip.exceeded(ip)

    def account_locked(self, account: str | None) -> bool:
        """Whether C{account} is refused for now, right password or not."""
        return account is not None and self.by_account.exceeded(account)

    def failed(self, ip: str, account: str | None) -> None:
        """Count a failed attempt from C{ip} on C{account}."""
        self.by_ip.record(ip)
        if account is not None:
            self.by_account.record(account)
