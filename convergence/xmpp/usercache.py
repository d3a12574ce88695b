# -*- test-case-name: tests.test_usercache -*-
"""
Per-user state loaded from a store on first use (a roster, a blocklist):
work on one user runs in arrival order, after the load, and a failed load
gives each waiting piece of work C{None} rather than leaving it queued.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.xmpp.jid import JID

__all__ = ["UserCache"]

T = TypeVar("T")

log = Logger()


class UserCache(Generic[T]):
    """
    @param load: C{owner -> Deferred[T]}, reading the value from its store.
    @param what: what the value is, for the log ("roster", "blocklist").
    @param loaded: called with the owner once the work waiting for a load
        has run (the owner module decides there whether to keep the value).
    """

    def __init__(self, load: Callable[[JID], Deferred], what: str,
                 loaded: Callable[[JID], None] = lambda owner: None) -> None:
        self._load = load
        self._what = what
        self._after = loaded
        #: the values in memory, by owner
        self.values: dict[JID, T] = {}
        #: work waiting for a load, by owner, in arrival order
        self.waiting: dict[JID, list[Callable[[T | None], Any]]] = {}

    def use(self, owner: JID, work: Callable[[T | None], Any]) -> None:
        """Run C{work(value)} once C{owner}'s value is loaded, after the
        work queued before it (C{None} if it cannot be loaded)."""
        value = self.values.get(owner)
        if value is not None and owner not in self.waiting:
            work(value)
            return
        queue = self.waiting.get(owner)
        if queue is not None:
            queue.append(work)
            return
        self.waiting[owner] = [work]
        self._load(owner).addCallbacks(self._loaded, self._failed, (owner,), None, (owner,))

    def _loaded(self, value: T, owner: JID) -> None:
        value = self.values.setdefault(owner, value)
        for work in self.waiting.pop(owner, []):
            self._run(work, value)
        self._after(owner)

    def _failed(self, failure: Failure, owner: JID) -> None:
        log.failure("could not load the {what} of {owner}", failure, what=self._what,
                    owner=str(owner))
        for work in self.waiting.pop(owner, []):
            self._run(work, None)

    def _run(self, work: Callable[[T | None], Any], value: T | None) -> None:
        try:
            work(value)
        except Exception:
            log.failure("{what} work failed", what=self._what)
