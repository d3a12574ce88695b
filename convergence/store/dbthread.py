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
from typing import Any, Callable, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThreadPool
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

    def start(self) -> None:
        """
        Start the thread (the service does, once running; else the first
        query does).  Not when built: twistd builds the service before it
        forks into the background, and threads do not survive a fork.
        """
        if not self.pool.started and not self.pool.joined:
            self.pool.start()

    def run(self, f: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred:
        """C{f(*args, **kwargs)} on the database thread."""
        self.start()
        return deferToThreadPool(self.reactor, self.pool, f, *args, **kwargs)

    def stop(self) -> None:
        """Finish the queued work and end the thread."""
        self.pool.stop()


def run_now(f: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred:
    """A L{Run} for tests and tools: C{f} on the calling thread."""
    try:
        return succeed(f(*args, **kwargs))
    except BaseException:
        d: Deferred = Deferred()
        d.errback(Failure())
        return d
