# -*- test-case-name: tests.test_location_store -*-
"""
The in-memory L{ILocationStore} (tests, single-node servers that need not
keep registrations across restarts) and the checks every backend shares.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from zope.interface import implementer

from convergence.store.interfaces import Binding, ILocationStore

__all__ = ["LocationStoreBase", "MemoryLocationStore", "make_binding", "ordered"]


def make_binding(
    aor: str,
    contact: str,
    expires_at: float,
    call_id: str,
    cseq: int,
    q: float | None = None,
    path: Sequence[str] = (),
    instance_id: str | None = None,
    reg_id: int | None = None,
    received: str | None = None,
) -> Binding:
    """
    Validate the fields of L{ILocationStore.register_binding}.

    @raise ValueError: empty AOR or contact, non-finite expiry, negative
        CSeq or reg-id, or C{q} outside 0..1.
    """
    if not aor or not contact:
        raise ValueError("a binding needs an AOR and a contact")
    if not math.isfinite(expires_at):
        raise ValueError(f"expires_at must be finite, not {expires_at!r}")
    if cseq < 0:
        raise ValueError(f"CSeq must not be negative, not {cseq!r}")
    if q is not None and not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be between 0 and 1, not {q!r}")
    if reg_id is not None and reg_id < 0:
        raise ValueError(f"reg-id must not be negative, not {reg_id!r}")
    if isinstance(path, str):
        raise ValueError("path is a sequence of URIs, not one string")
    return Binding(
        aor,
        contact,
        float(expires_at),
        call_id,
        int(cseq),
        None if q is None else float(q),
        tuple(path),
        instance_id,
        reg_id,
        received,
    )


def ordered(bindings: list[Binding]) -> list[Binding]:
    """Sort bindings highest q first, then by contact."""
    return sorted(bindings, key=lambda b: (-b.priority, b.contact))


class LocationStoreBase:
    """C{register_binding} once for every backend: validate, then L{store}."""

    def register_binding(
        self,
        aor: str,
        contact: str,
        expires_at: float,
        call_id: str,
        cseq: int,
        q: float | None = None,
        path: Sequence[str] = (),
        instance_id: str | None = None,
        reg_id: int | None = None,
        received: str | None = None,
    ) -> None:
        self.store(make_binding(aor, contact, expires_at, call_id, cseq, q, path,
                                instance_id, reg_id, received))

    def store(self, binding: Binding) -> None:
        """Insert or replace one validated binding."""
        raise NotImplementedError


@implementer(ILocationStore)
class MemoryLocationStore(LocationStoreBase):
    """L{ILocationStore} in a dictionary; lost when the process ends."""

    def __init__(self) -> None:
        self._aors: dict[str, dict[str, Binding]] = {}

    def store(self, binding: Binding) -> None:
        self._aors.setdefault(binding.aor, {})[binding.contact] = binding

    def remove_binding(self, aor: str, contact: str) -> bool:
        contacts = self._aors.get(aor)
        if contacts is None or contacts.pop(contact, None) is None:
            return False
        if not contacts:
            del self._aors[aor]
        return True

    def remove_all(self, aor: str) -> int:
        return len(self._aors.pop(aor, {}))

    def remove_received(self, received: str) -> int:
        return self._remove_where(lambda b: b.received == received)

    def remove_received_prefix(self, prefix: str) -> int:
        return self._remove_where(
            lambda b: b.received is not None and b.received.startswith(prefix))

    def _remove_where(self, test: Callable[[Binding], bool]) -> int:
        removed = 0
        for aor, contacts in list(self._aors.items()):
            for contact, binding in list(contacts.items()):
                if test(binding):
                    del contacts[contact]
                    removed += 1
            if not contacts:
                del self._aors[aor]
        return removed

    def bindings(self, aor: str, now: float) -> list[Binding]:
        contacts = self._aors.get(aor, {})
        return ordered([b for b in contacts.values() if b.expires_at > now])

    def purge_expired(self, now: float) -> int:
        removed = 0
        for aor, contacts in list(self._aors.items()):
            for contact, binding in list(contacts.items()):
                if binding.expires_at <= now:
                    del contacts[contact]
                    removed += 1
            if not contacts:
                del self._aors[aor]
        return removed

    def close(self) -> None:
        self._aors.clear()
