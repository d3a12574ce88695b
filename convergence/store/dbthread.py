# -*- test-case-name: tests.test_dbthread -*-
"""
The database thread: every SQLite query the running server makes (account
credentials, SIP digest secrets, registrations) runs on one thread of its
own, so the reactor thread never waits on the database file.

One thread is enough for SQLite (one writer at a time) and keeps each
connection on a single thread.  C{convergencectl} and the tests use the
stores directly.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")

Run = Callable[..., Deferred]


class _DaemonThreadPool(ThreadPool):
    """A pool whose thread never keeps the process alive by itself."""

    @staticmethod
    def threadFactory(*args: Any, **kwargs: Any) -> threading.Thread:  # noqa: N802
        return threading.Thread(*args, daemon=True, **kwargs)


class DatabaseThread:
    """Runs callables on the database thread; the results come as Deferreds."""

    def __init__(self, reactor: Any, name: str = "convergence-db") -> None:
        self.reactor = reactor
        self.pool = _DaemonThreadPool(minthreads=1, maxthreads=1, name=name)
        #: Jobs not yet taken by the thread: (f, args, kwargs, deferred).
        self._jobs: deque[tuple[Callable[..., Any], tuple, dict, Deferred]] = deque()
        #: Whether a drain of L{_jobs} is on the thread (reactor thread only).
        self._draining = False

    def start(self) -> None:
        """
        Start the thread (the service does, once running; else the first
        query does).  Not when built: twistd builds the service before it
        forks into the background, and threads do not survive a fork.
        """
        if not self.pool.started and not self.pool.joined:
            self.pool.start()

    def run(self, f: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred:
        """
        C{f(*args, **kwargs)} on the database thread, in the order asked.

        Call it from the reactor thread.  Jobs asked for while the thread
        is busy are run together by one hand-over, and their results come
        back to the reactor together: under load the cost of crossing
        threads (the pool's queue, the reactor's waker) is paid once per
        batch instead of once per query.
        """
        self.start()
        d: Deferred = Deferred()
        self._jobs.append((f, args, kwargs, d))
        if not self._draining:
            self._draining = True
            self.pool.callInThread(self._drain)
        return d

    def _drain(self) -> None:
        """On the database thread: run every queued job, then hand back."""
        done: list[tuple[Deferred, bool, Any]] = []
        jobs = self._jobs
        while jobs:
            f, args, kwargs, d = jobs.popleft()
            try:
                done.append((d, True, f(*args, **kwargs)))
            except BaseException:  # noqa: BLE001 (its Deferred gets it)
                done.append((d, False, Failure()))
        self.reactor.callFromThread(self._deliver, done)

    def _deliver(self, done: list[tuple[Deferred, bool, Any]]) -> None:
        """On the reactor thread: fire the batch's Deferreds, in order."""
        self._draining = False
        if self._jobs:  # queued after the thread's last look
            self._draining = True
            self.pool.callInThread(self._drain)
        for d, ok, result in done:
            if ok:
                d.callback(result)
            else:
                d.errback(result)

    def stop(self) -> None:
        """
        Finish the queued work and end the thread.  Jobs queued after the
        thread's last drain run here, on the calling thread.
        """
        self.pool.stop()
        while self._jobs:
            f, args, kwargs, d = self._jobs.popleft()
            try:
                result = f(*args, **kwargs)
            except BaseException:  # noqa: BLE001 (its Deferred gets it)
                d.errback(Failure())
            else:
                d.callback(result)
        self._draining = False


def run_now(f: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred:
    """A L{Run} for tests and tools: C{f} on the calling thread."""
    try:
        return succeed(f(*args, **kwargs))
    except BaseException:
        d: Deferred = Deferred()
        d.errback(Failure())
        return d
