# -*- test-case-name: tests.test_xmpp_sessions -*-
"""
The table of bound client resources and their presence.

Conflict policy: binding a resource that is already bound replaces the older
stream, which is closed with a C{conflict} stream error (RFC 6120 7.7.2.2,
"override the existing session").
"""

from __future__ import annotations

from typing import Any, Protocol

from convergence.xmpp.jid import JID


class BoundStream(Protocol):
    """What the registry needs of a client stream."""

    jid: JID | None
    available: bool
    priority: int

    def stream_error(self, condition: str, text: str | None = None) -> None:
        ...

    def deliver(self, stanza: Any) -> None:
        ...


class SessionRegistry:
    """Bound full JIDs, grouped by bare JID."""

    def __init__(self) -> None:
        self._by_bare: dict[JID, dict[str, BoundStream]] = {}

    def __len__(self) -> int:
        return sum(len(r) for r in self._by_bare.values())

    def bind(self, stream: BoundStream, jid: JID) -> BoundStream | None:
        """
        Bind C{jid} to C{stream}; return the stream it replaced, if any.

        The replaced stream is sent a C{conflict} stream error.
        """
        resources = self._by_bare.setdefault(jid.bare, {})
        old = resources.get(jid.resource)
        resources[jid.resource] = stream
        if old is not None and old is not stream:
            old.jid = None
            old.stream_error("conflict", "Replaced by new connection")
        return old

    def unbind(self, stream: BoundStream) -> None:
        """Forget C{stream}'s binding if it still holds it."""
        jid = stream.jid
        if jid is None:
            return
        resources = self._by_bare.get(jid.bare)
        if resources is not None and resources.get(jid.resource) is stream:
            del resources[jid.resource]
            if not resources:
                del self._by_bare[jid.bare]

    def get(self, jid: JID) -> BoundStream | None:
        """The stream bound to a full JID."""
        resources = self._by_bare.get(jid.bare)
        return resources.get(jid.resource) if resources else None

    def resources(self, bare: JID) -> list[BoundStream]:
        """Every stream bound for a bare JID."""
        return list(self._by_bare.get(bare, {}).values())

    def most_available(self, bare: JID) -> list[BoundStream]:
        """
        The available resources with the highest non-negative priority
        (RFC 6121 8.5.2.1.1): a message to the bare JID goes to each.
        """
        candidates = [
            s for s in self._by_bare.get(bare, {}).values()
            if s.available and s.priority >= 0
        ]
        if not candidates:
            return []
        best = max(s.priority for s in candidates)
        return [s for s in candidates if s.priority == best]

    def present(self, bare: JID) -> list[BoundStream]:
        """Every available resource, whatever its priority (presence goes
        to all of them, RFC 6121 8.5.2.1.2)."""
        return [s for s in self._by_bare.get(bare, {}).values() if s.available]

    def available(self, bare: JID) -> list[BoundStream]:
        """Every available resource with a non-negative priority."""
        return [
            s for s in self._by_bare.get(bare, {}).values()
            if s.available and s.priority >= 0
        ]
