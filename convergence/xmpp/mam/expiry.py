# -*- test-case-name: tests.test_mam -*-
"""
Retention (C{xmpp.mam_retention} days; 0 keeps everything): messages
older than that are deleted by a sweep every L{INTERVAL} seconds of the
server's clock (from the first client session on), in batches of L{BATCH} so that other queries on the
database thread are not kept waiting.  Until a sweep removes them, queries
already leave them out (L{Retention.not_before}).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

__all__ = ["BATCH", "INTERVAL", "Retention"]

#: seconds between sweeps
INTERVAL = 3600.0
#: messages deleted per database call
BATCH = 1000
DAY = 86400.0

log = Logger()


class Retention:
    """The archive's retention period and its periodic sweep."""

    def __init__(self, server: Any, store: Any, days: int,
                 domains: Sequence[str] | None = None) -> None:
        """
        @param domains: the archives swept are those on these domains
            (C{None}: every archive).
        """
        self.server = server
        self.store = store
        self.days = days
        self.domains = None if domains is None else tuple(sorted(domains))
        self._loop: LoopingCall | None = None
        self._stopped = False

    def not_before(self) -> float | None:
        """The oldest stamp still kept, or C{None}: everything is."""
        if not self.days:
            return None
        return self.server.clock.seconds() - self.days * DAY

    def start(self) -> None:
        """Sweep every L{INTERVAL}, the first one an interval from now;
        once started (or stopped), further calls do nothing."""
        if not self.days or self._loop is not None or self._stopped:
            return
        self._loop = LoopingCall(self.sweep)
        self._loop.clock = self.server.clock
        self._loop.start(INTERVAL, now=False)

    def stop(self) -> None:
        self._stopped = True
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def sweep(self) -> Deferred:
        """Delete everything older than the retention period; the Deferred
        fires with how many messages went."""
        cutoff = self.not_before()
        assert cutoff is not None
        done: Deferred = Deferred()
        total = [0]

        def batch(_: Any = None) -> None:
            d = self.server.run_in_db(self.store.expire, cutoff, BATCH, self.domains)
            d.addCallbacks(deleted, failed)

        def deleted(count: int) -> None:
            total[0] += count
            if count >= BATCH:
                batch()
                return
            if total[0]:
                log.info("archive retention: {n} messages older than {days} days deleted",
                         n=total[0], days=self.days)
            done.callback(total[0])

        def failed(failure: Failure) -> None:
            log.failure("archive retention sweep failed", failure)
            done.callback(total[0])

        batch()
        return done
