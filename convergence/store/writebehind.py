# -*- test-case-name: tests.test_location_writebehind -*-
"""
The registrar's bindings in memory, written behind to a persistent
L{ILocationStore} (SQLite) in batches on the database thread.

The registrar answers a REGISTER with every binding of the address-of-
record after the change, and refuses an out-of-order one, so each
REGISTER used to read and write the database: a second round trip to the
database thread after the HA1 lookup, and one commit per REGISTER.  Here
the bindings the server holds are a dictionary owned by the reactor
thread, loaded from the backend at startup; every change is applied to it
at once and queued for the backend.  The queue goes to the database
thread as one job, in one transaction; changes made while a job runs wait
for the next one, so under load a batch holds every change of the last
few milliseconds and at rest a change is written at once.

Durability: a change is in memory before it is on disk.  A crash of the
process loses the changes of the batch being written and of the queue
(milliseconds); the clients that made them register again when their
registration expires.  A clean shutdown (L{close}) writes everything
first.  This process must be the only writer of the backend while it
runs (it is: nothing else writes registrations).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from convergence.store.interfaces import Binding, ILocationStore
from convergence.store.location import MemoryLocationStore, ordered

__all__ = ["WriteBehindLocationStore"]

log = Logger()

#: Where a kept binding's tuple has its expiry time (L{Binding} field order).
_EXPIRES_AT = 2
#: ... and the transport address it was registered from.
_RECEIVED = 9

#: Seconds between sweeps of expired bindings out of memory and the backend.
PURGE_INTERVAL = 300.0


@implementer(ILocationStore)
class WriteBehindLocationStore(MemoryLocationStore):
    """
    L{ILocationStore} answered from memory, every change written behind to
    C{backend} (which must offer C{apply(changes)}: a list of
    C{(method name, arguments)} in one transaction, and C{live_bindings}).
    Use it from one thread (the reactor's).
    """

    def __init__(self, backend: Any, run: Callable[..., Deferred],
                 now: Callable[[], float],
                 purge_interval: float = PURGE_INTERVAL) -> None:
        """
        @param run: runs a callable on the database thread (Deferred).
        @param now: the registrar's clock (binding expiry times use it).
        """
        super().__init__()
        self.backend = backend
        self.run = run
        self.now = now
        self.purge_interval = purge_interval
        self._queue: list[tuple[str, tuple]] = []
        self._writing = False
        self._closed = False
        start = now()
        self._last_purge = start
        for binding in backend.live_bindings(start):
            self._keep(binding)

    def _keep(self, binding: Binding) -> None:
        """
        Hold C{binding} as a plain tuple of its fields: strings and numbers
        only, so the garbage collector stops walking it (and the AOR's
        dictionary) after its first look; 100,000 contacts do not make
        every full collection 200,000 objects longer.
        """
        self._aors.setdefault(binding.aor, {})[binding.contact] = (  # type: ignore[assignment]
            binding.aor, binding.contact, binding.expires_at, binding.call_id, binding.cseq,
            binding.q, binding.path, binding.instance_id, binding.reg_id, binding.received)

    # What the registrar calls: memory now, the backend behind.
    def store(self, binding: Binding) -> None:
        self._keep(binding)
        self._change("store", binding)

    def remove_binding(self, aor: str, contact: str) -> bool:
        removed = super().remove_binding(aor, contact)
        if removed:
            self._change("remove_binding", aor, contact)
        return removed

    def remove_all(self, aor: str) -> int:
        count = super().remove_all(aor)
        if count:
            self._change("remove_all", aor)
        return count

    def remove_received(self, received: str) -> int:
        removed = self._remove_kept(lambda fields: fields[_RECEIVED] == received)
        if removed:
            self._change("remove_received", received)
        return removed

    def remove_received_prefix(self, prefix: str) -> int:
        removed = self._remove_kept(
            lambda fields: fields[_RECEIVED] is not None and fields[_RECEIVED].startswith(prefix))
        # always: the file may hold expired ones that memory never loaded
        self._change("remove_received_prefix", prefix)
        return removed

    def _remove_kept(self, test: Callable[[tuple], bool]) -> int:
        removed = 0
        for aor, contacts in list(self._aors.items()):
            for contact, fields in list(contacts.items()):
                if test(fields):  # type: ignore[arg-type]
                    del contacts[contact]
                    removed += 1
            if not contacts:
                del self._aors[aor]
        return removed

    def purge_expired(self, now: float) -> int:
        self._last_purge = now
        removed = 0
        for aor, contacts in list(self._aors.items()):
            for contact, fields in list(contacts.items()):
                if fields[_EXPIRES_AT] <= now:  # type: ignore[index]
                    del contacts[contact]
                    removed += 1
            if not contacts:
                del self._aors[aor]
        self._change("purge_expired", now)
        return removed

    def bindings(self, aor: str, now: float) -> list[Binding]:
        if now - self._last_purge >= self.purge_interval:
            self.purge_expired(now)
        contacts = self._aors.get(aor)
        if not contacts:
            return []
        return ordered([Binding(*fields) for fields in contacts.values()  # type: ignore[misc]
                        if fields[_EXPIRES_AT] > now])  # type: ignore[index]

    # Writing behind
    @property
    def pending(self) -> int:
        """Changes not yet handed to the database thread."""
        return len(self._queue)

    def _change(self, name: str, *args: Any) -> None:
        self._queue.append((name, args))
        if not self._writing and not self._closed:
            self._write()

    def _write(self) -> None:
        batch, self._queue = self._queue, []
        self._writing = True
        d = self.run(self.backend.apply, batch)
        d.addErrback(self._failed, len(batch))
        d.addBoth(self._written)

    def _failed(self, failure: Any, count: int) -> None:
        log.failure("writing {count} registration change(s) to the database", failure,
                    count=count)

    def _written(self, _: Any) -> None:
        self._writing = False
        if self._queue and not self._closed:
            self._write()

    def close(self) -> None:
        """
        Write what is still queued, on the calling thread (the database
        thread has stopped by now), and close the backend.
        """
        self._closed = True
        if self._queue:
            batch, self._queue = self._queue, []
            try:
                self.backend.apply(batch)
            except Exception:  # noqa: BLE001 (logged; memory stays right)
                log.failure("writing {count} registration change(s) at shutdown",
                            count=len(batch))
        super().close()
        self.backend.close()
