"""
The database thread: the running server's SQLite queries happen off the
reactor thread, and their results come back to it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from convergence.config import load_config
from convergence.service import build
from convergence.store.dbthread import DatabaseThread


class DatabaseThreadTests(TestCase):
    timeout = 20

    def setUp(self) -> None:
        self.db = DatabaseThread(reactor, name="test-db")
        self.addCleanup(self.db.stop)

    async def test_runs_off_the_reactor_thread(self) -> None:
        def where(x: int) -> tuple[int, str]:
            return x * 2, threading.current_thread().name

        value, thread = await self.db.run(where, 21)
        self.assertEqual(value, 42)
        self.assertNotEqual(thread, threading.main_thread().name)
        self.assertIn("test-db", thread)

    async def test_thread_starts_on_first_use(self) -> None:
        """No thread before the first query: twistd forks after building the
        service, and a thread started before the fork would be lost."""
        db = DatabaseThread(reactor, name="lazy-db")
        self.addCleanup(db.stop)
        self.assertFalse(db.pool.started)
        self.assertEqual(db.pool.threads, [])
        self.assertEqual(await db.run(lambda: 7), 7)
        self.assertTrue(db.pool.started)

    async def test_errors_come_back(self) -> None:
        def broken() -> None:
            raise KeyError("nope")

        await self.assertFailure(self.db.run(broken), KeyError)

    async def test_one_thread_in_order(self) -> None:
        seen: list[tuple[int, str]] = []
        await self.db.run(lambda: None)
        ds = [self.db.run(lambda n=n: seen.append((n, threading.current_thread().name)))
              for n in range(20)]
        for d in ds:
            await d
        self.assertEqual([n for n, _ in seen], list(range(20)))
        self.assertEqual(len({name for _, name in seen}), 1)

    async def test_batch(self) -> None:
        """
        Jobs asked for while the thread is busy go over in one hand-over;
        each gets its own result or failure, in order, and a job asked for
        by a result's callback still runs.
        """
        gate = threading.Event()
        first = self.db.run(gate.wait, 10)
        handovers: list[int] = []
        original = self.db.pool.callInThread

        def counting(f: object, *args: object) -> None:
            handovers.append(1)
            original(f, *args)  # type: ignore[arg-type]

        self.db.pool.callInThread = counting  # type: ignore[method-assign]

        def broken() -> None:
            raise KeyError("nope")

        ds = [self.db.run(lambda n=n: n * n) for n in range(5)]
        bad = self.db.run(broken)
        later: list[int] = []
        ds[0].addCallback(lambda _: self.db.run(lambda: later.append(1)))
        gate.set()
        self.assertTrue(await first)
        self.assertEqual([await d for d in ds[1:]], [1, 4, 9, 16])
        await self.assertFailure(bad, KeyError)
        await ds[0]
        self.assertEqual(later, [1])
        self.assertLessEqual(len(handovers), 2)

    def test_stop_runs_what_is_left(self) -> None:
        """A job queued but never taken by the thread runs at stop."""
        db = DatabaseThread(reactor, name="stopping-db")
        db._draining = True  # as if a drain's results were still on their way
        seen: list[int] = []
        d = db.run(lambda: seen.append(1) or 5)
        db.stop()
        self.assertEqual(seen, [1])
        self.assertEqual(self.successResultOf(d), 5)


class ServerWiringTests(TestCase):
    timeout = 20

    async def test_server_queries_on_the_database_thread(self) -> None:
        """Account and registration queries of a built server run on its
        database thread."""
        root = Path(self.mktemp())
        root.mkdir()
        (root / "c.toml").write_text("")
        server = build(load_config(root / "c.toml", {"data_dir": str(root / "d")}), reactor)
        self.addCleanup(server.close)
        server.accounts.add("alice@localhost", "secret")
        threads: list[bool] = []
        store = server.store
        original = store.get_credentials

        def recording(*args):
            threads.append(threading.current_thread() is threading.main_thread())
            return original(*args)

        self.patch(store, "get_credentials", recording)
        creds = await server.xmpp.account_lookup.credentials("alice", "localhost")
        self.assertIn("SCRAM-SHA-256", creds)
        self.assertTrue(await server.xmpp.account_exists("alice", "localhost"))
        self.assertFalse(await server.xmpp.account_exists("nobody", "localhost"))
        self.assertEqual(await server.sip.registrar.lookup("sip:alice@localhost"), [])
        self.assertEqual(threads, [False])

    def test_service_start_starts_the_thread(self) -> None:
        """The running service starts its database thread (after twistd's fork)."""
        from convergence.service import ConvergenceService

        root = Path(self.mktemp())
        root.mkdir()
        (root / "c.toml").write_text("")
        server = build(load_config(root / "c.toml", {"data_dir": str(root / "d")}), reactor)
        service = ConvergenceService(server)
        self.assertFalse(server.database.pool.started)
        service.startService()
        self.assertTrue(server.database.pool.started)
        service.stopService()
        self.assertFalse(server.database.pool.started)
