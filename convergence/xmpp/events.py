# -*- test-case-name: tests.test_events -*-
"""
Named, prioritised events: the spine of stanza routing.

Handlers subscribe to a name with a priority; L{EventBus.fire} calls them
from the highest priority down and stops at the first that returns a true
value ("handled"), as Prosody's C{core/stanza_router.lua} does.

Besides stanzas (L{convergence.xmpp.router}) the bus carries the life of
streams (C{c2s/bound}, C{c2s/closed} …) and of accounts (L{AccountEvent}).
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field
from typing import Any, Callable

from twisted.logger import Logger

Handler = Callable[[Any], Any]


@dataclass(order=True)
class _Subscription:
    sort_key: tuple[float, int]
    handler: Handler = field(compare=False)


class EventBus:
    """A table of event names to prioritised handlers."""

    log = Logger()

    def __init__(self) -> None:
        self._handlers: dict[str, list[_Subscription]] = {}
        self._counter = 0

    def hook(self, name: str, handler: Handler, priority: float = 0) -> None:
        """Subscribe C{handler} to C{name}; higher priorities run first."""
        self._counter += 1
        insort(
            self._handlers.setdefault(name, []),
            _Subscription((-priority, self._counter), handler),
        )

    def unhook(self, name: str, handler: Handler) -> None:
        """Remove a subscription made with L{hook}."""
        subs = self._handlers.get(name, [])
        subs[:] = [s for s in subs if s.handler != handler]

    def has_handlers(self, name: str) -> bool:
        """Whether anything subscribes to C{name}."""
        return bool(self._handlers.get(name))

    def fire(self, name: str, event: Any) -> bool:
        """
        Call the handlers of C{name} in priority order.

        @return: C{True} if a handler returned a true value (handled).
        """
        for sub in tuple(self._handlers.get(name, ())):
            if sub.handler(event):
                return True
        return False


@dataclass(frozen=True)
class AccountEvent:
    """
    An account came or went: fired as C{account/registered} and
    C{account/removed} (XEP-0077) so that modules holding per-user state
    in memory (roster caches, presence) can drop it.  Handlers return
    nothing: every one of them is called.
    """

    localpart: str
    domain: str

    @property
    def jid(self) -> Any:
        """The account's bare JID."""
        from convergence.xmpp.jid import JID

        return JID(self.localpart, self.domain)
