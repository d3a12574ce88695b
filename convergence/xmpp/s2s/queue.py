# -*- test-case-name: tests.test_s2s_link -*-
"""
Stanzas waiting for a stream to a remote domain: kept in order, bounced
with one condition when the stream cannot be had (RFC 6120 8.3.3:
C{remote-server-not-found} when the server cannot be found or reached,
C{remote-server-timeout} when it does not answer in time).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

from lxml import etree

from convergence.xmpp.errors import StanzaError


class StanzaQueue:
    """A bounded FIFO of stanzas for one remote domain."""

    def __init__(self, limit: int,
                 bounce: Callable[[etree._Element, StanzaError], None]) -> None:
        self.limit = limit
        self._bounce = bounce
        self._items: deque[etree._Element] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, stanza: etree._Element) -> None:
        """Queue C{stanza}; over the limit it bounces at once."""
        if len(self._items) >= self.limit:
            self._bounce(stanza, StanzaError("resource-constraint",
                                             "too many stanzas wait for this server"))
            return
        self._items.append(stanza)

    def drain(self) -> Iterator[etree._Element]:
        """Take every stanza, oldest first."""
        while self._items:
            yield self._items.popleft()

    def bounce_all(self, condition: str, text: str | None = None) -> None:
        """Bounce every queued stanza with C{condition}."""
        for stanza in self.drain():
            self._bounce(stanza, StanzaError(condition, text))
