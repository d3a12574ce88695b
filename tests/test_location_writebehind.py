"""Tests for L{WriteBehindLocationStore}: bindings in memory, written behind to SQLite."""

from __future__ import annotations

import gc
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from convergence.store.dbthread import run_now
from convergence.store.interfaces import ILocationStore
from convergence.store.sqlite import SqliteLocationStore
from convergence.store.writebehind import WriteBehindLocationStore
from tests.test_location_store import ALICE, BOB, DESK, MOBILE, SOFT, _LocationStoreTests


class ManualRun:
    """A database thread that runs each job when the test says so."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Callable[..., Any], tuple, Deferred]] = []

    def __call__(self, f: Callable[..., Any], *args: Any) -> Deferred:
        d: Deferred = Deferred()
        self.jobs.append((f, args, d))
        return d

    def finish(self) -> None:
        """Run the oldest job and deliver its result (or failure)."""
        f, args, d = self.jobs.pop(0)
        try:
            result = f(*args)
        except Exception as e:  # noqa: BLE001 (as the thread would)
            d.errback(e)
        else:
            d.callback(result)


class _Fixture:
    path: Path

    def open_backend(self) -> SqliteLocationStore:
        backend = SqliteLocationStore(self.path)
        self.addCleanup(backend.close)  # type: ignore[attr-defined]
        return backend

    def make_path(self) -> None:
        directory = Path(tempfile.mkdtemp(prefix="convergence-test-"))
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)  # type: ignore[attr-defined]
        self.path = directory / "convergence.sqlite3"


class WriteBehindContractTests(_Fixture, _LocationStoreTests, SynchronousTestCase):
    """The L{ILocationStore} contract holds, and every change reaches the file."""

    def make_store(self) -> ILocationStore:
        self.make_path()
        store = WriteBehindLocationStore(SqliteLocationStore(self.path), run_now, lambda: 0.0)
        self.addCleanup(store.close)
        return store

    def test_on_disk(self) -> None:
        """What the store was told is in the SQLite file as well."""
        self.store.register_binding(ALICE, DESK, 100.0, "c", 1, 0.5)
        self.store.register_binding(ALICE, MOBILE, 100.0, "c", 2)
        self.store.register_binding(BOB, DESK, 100.0, "d", 1)
        self.store.remove_binding(ALICE, MOBILE)
        self.store.remove_all(BOB)
        disk = self.open_backend()
        self.assertEqual(disk.bindings(ALICE, 0.0), self.store.bindings(ALICE, 0.0))
        self.assertEqual(disk.bindings(BOB, 0.0), [])


class WriteBehindTests(_Fixture, SynchronousTestCase):
    """Batching, startup, failures, shutdown."""

    def setUp(self) -> None:
        self.make_path()
        self.run = ManualRun()
        self.clock = 0.0

    def make_store(self, **kwargs: Any) -> WriteBehindLocationStore:
        store = WriteBehindLocationStore(SqliteLocationStore(self.path), self.run,
                                         lambda: self.clock, **kwargs)
        self.addCleanup(store.close)
        return store

    def test_memory_first(self) -> None:
        """A change is answered from memory before the database has it."""
        store = self.make_store()
        store.register_binding(ALICE, DESK, 100.0, "c", 1)
        self.assertEqual([b.contact for b in store.bindings(ALICE, 0.0)], [DESK])
        self.assertEqual(self.open_backend().bindings(ALICE, 0.0), [])
        self.run.finish()
        self.assertEqual([b.contact for b in self.open_backend().bindings(ALICE, 0.0)], [DESK])

    def test_batches(self) -> None:
        """
        The first change goes at once; those made while it is written wait
        and go together in the next job; at rest nothing is submitted.
        """
        store = self.make_store()
        store.register_binding(ALICE, DESK, 100.0, "c", 1)
        self.assertEqual(len(self.run.jobs), 1)
        store.register_binding(ALICE, MOBILE, 100.0, "c", 2)
        store.register_binding(BOB, DESK, 100.0, "d", 1)
        store.remove_binding(ALICE, DESK)
        self.assertEqual((len(self.run.jobs), store.pending), (1, 3))
        self.run.finish()
        self.assertEqual((len(self.run.jobs), store.pending), (1, 0))
        [(_, (batch,), _)] = self.run.jobs
        self.assertEqual([name for name, _ in batch],
                         ["store", "store", "remove_binding"])
        self.run.finish()
        self.assertEqual(self.run.jobs, [])
        disk = self.open_backend()
        self.assertEqual([b.contact for b in disk.bindings(ALICE, 0.0)], [MOBILE])
        self.assertEqual([b.contact for b in disk.bindings(BOB, 0.0)], [DESK])

    def test_removing_nothing_writes_nothing(self) -> None:
        """Removing an absent binding changes nothing, so nothing is queued."""
        store = self.make_store()
        self.assertFalse(store.remove_binding(ALICE, DESK))
        self.assertEqual(store.remove_all(ALICE), 0)
        self.assertEqual(self.run.jobs, [])

    def test_loads_live_bindings(self) -> None:
        """At startup the store holds the file's unexpired bindings."""
        backend = SqliteLocationStore(self.path)
        backend.register_binding(ALICE, DESK, 100.0, "c", 1)
        backend.register_binding(BOB, DESK, 5.0, "d", 1)
        backend.close()
        self.clock = 10.0
        store = self.make_store()
        self.assertEqual([b.contact for b in store.bindings(ALICE, 10.0)], [DESK])
        self.assertEqual(store._aors.keys(), {ALICE})

    def test_failed_write(self) -> None:
        """A batch the database refuses is logged; later batches still go."""
        store = self.make_store()
        store.register_binding(ALICE, DESK, 100.0, "c", 1)
        _, _, d = self.run.jobs.pop(0)
        d.errback(RuntimeError("disk full"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        store.register_binding(BOB, DESK, 100.0, "d", 1)
        self.run.finish()
        self.assertEqual([b.contact for b in self.open_backend().bindings(BOB, 0.0)], [DESK])

    def test_batch_is_one_transaction(self) -> None:
        """SqliteLocationStore.apply: a failing change undoes the batch."""
        backend = self.open_backend()
        backend.register_binding(ALICE, DESK, 100.0, "c", 1)
        with self.assertRaises(AttributeError):
            backend.apply([("remove_all", (ALICE,)), ("no_such_change", ())])
        self.assertEqual([b.contact for b in backend.bindings(ALICE, 0.0)], [DESK])

    def test_close_writes_the_queue(self) -> None:
        """
        At shutdown (the database thread stopped with a job unanswered),
        what is still queued is written on the calling thread.
        """
        store = self.make_store()
        store.register_binding(ALICE, DESK, 100.0, "c", 1)
        store.register_binding(BOB, DESK, 100.0, "d", 1)
        f, args, _ = self.run.jobs.pop(0)
        f(*args)  # the thread finished the job; its answer never came back
        store.close()
        disk = self.open_backend()
        self.assertEqual([b.contact for b in disk.bindings(ALICE, 0.0)], [DESK])
        self.assertEqual([b.contact for b in disk.bindings(BOB, 0.0)], [DESK])

    def test_not_walked_by_the_collector(self) -> None:
        """Held bindings leave the garbage collector's lists after one look."""
        store = self.make_store()
        for n in range(50):
            store.register_binding(f"sip:u{n}@example.com", DESK, 100.0, f"c{n}", 1,
                                   path=("<sip:p;lr>",), received="udp:192.0.2.1:5060")
        gc.collect()
        self.assertFalse(any(gc.is_tracked(contacts) for contacts in store._aors.values()))
        self.assertEqual(store.bindings("sip:u7@example.com", 0.0)[0].call_id, "c7")

    def test_flows(self) -> None:
        """A closed flow's bindings leave memory and the file; at startup the
        file's bindings of every earlier flow go, loaded or not."""
        store = self.make_store()
        store.register_binding(ALICE, DESK, 100.0, "c", 1, received="ws:192.0.2.1:4000")
        store.register_binding(ALICE, MOBILE, 100.0, "c", 2, received="udp:192.0.2.2:5060")
        store.register_binding(BOB, DESK, 100.0, "d", 1, received="ws:192.0.2.1:4000")
        self.run.finish()
        self.run.finish()
        self.assertEqual(store.remove_received("ws:192.0.2.1:4000"), 2)
        self.assertEqual(store.remove_received("ws:192.0.2.9:1"), 0)
        self.assertEqual([b.contact for b in store.bindings(ALICE, 0.0)], [MOBILE])
        self.run.finish()
        disk = self.open_backend()
        self.assertEqual([b.contact for b in disk.bindings(ALICE, 0.0)], [MOBILE])
        self.assertEqual(disk.bindings(BOB, 0.0), [])
        disk.register_binding(BOB, SOFT, 5.0, "e", 1, received="wss:192.0.2.3:443")
        self.clock = 10.0  # expired: a new store does not load it
        again = self.make_store()
        self.assertEqual(again.remove_received_prefix("wss:"), 0)
        self.run.finish()
        self.assertEqual(self.open_backend().purge_expired(0.0), 0)
        self.assertEqual(self.open_backend().remove_received_prefix("wss:"), 0)

    def test_purge_sweep(self) -> None:
        """Expired bindings leave memory and the file once per interval."""
        store = self.make_store(purge_interval=60.0)
        store.register_binding(ALICE, DESK, 30.0, "c", 1)
        store.register_binding(BOB, DESK, 1000.0, "d", 1)
        self.run.finish()
        self.run.finish()
        store.bindings(BOB, 59.0)
        self.assertIn(ALICE, store._aors)
        store.bindings(BOB, 61.0)
        self.assertNotIn(ALICE, store._aors)
        self.run.finish()
        backend = self.open_backend()
        self.assertEqual(backend.purge_expired(61.0), 0)  # already gone
        self.assertEqual([b.contact for b in backend.bindings(BOB, 61.0)], [DESK])
