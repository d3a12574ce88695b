# -*- test-case-name: tests.test_metrics -*-
"""
Reactor lag: how late the reactor runs a call scheduled for a known time.

Every C{interval} seconds a delayed call is due; the time between when it
was due and when it ran is the scheduling delay every other event waited
too (a long callback, a blocking call, a CPU-starved process).  The
measurements go to a histogram of fixed buckets, kept as plain integers.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from twisted.application import service
from twisted.internet.interfaces import IReactorTime

#: Upper bounds of the histogram buckets, in seconds (+Inf follows).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ReactorLag(service.Service):
    """Measures the reactor's scheduling delay while running."""

    def __init__(self, clock: IReactorTime, interval: float = 1.0) -> None:
        self.clock = clock
        self.interval = interval
        #: measurements per bucket (not cumulative); the last is +Inf
        self.counts = [0] * (len(BUCKETS) + 1)
        self.count = 0
        self.sum = 0.0
        #: the latest and the largest delay measured, in seconds
        self.last = 0.0
        self.max = 0.0
        self._due = 0.0
        self._call: Any = None

    def startService(self) -> None:
        super().startService()
        self._schedule()

    def stopService(self) -> None:
        super().stopService()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _schedule(self) -> None:
        self._due = self.clock.seconds() + self.interval
        self._call = self.clock.callLater(self.interval, self._tick)

    def _tick(self) -> None:
        self.observe(max(0.0, self.clock.seconds() - self._due))
        self._schedule()

    def observe(self, lag: float) -> None:
        """Record one delay of C{lag} seconds."""
        self.counts[bisect_left(BUCKETS, lag)] += 1
        self.count += 1
        self.sum += lag
        self.last = lag
        if lag > self.max:
            self.max = lag

    def cumulative(self) -> list[tuple[str, int]]:
        """The buckets as OpenMetrics wants them: (le, count at or below)."""
        result = []
        total = 0
        for bound, n in zip((*(repr(b) for b in BUCKETS), "+Inf"), self.counts):
            total += n
            result.append((bound, total))
        return result
