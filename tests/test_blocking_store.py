"""The SQLite blocklist store (XEP-0191, migration 9)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from convergence.store.interfaces import IBlockingStore
from convergence.store.sqlite_im import SqliteImStore


class SqliteBlockingStoreTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.store = SqliteImStore(self.mktemp())
        self.addCleanup(self.store.close)

    def test_interface(self) -> None:
        verifyObject(IBlockingStore, self.store)

    def test_block_unblock_per_user(self) -> None:
        s = self.store
        self.assertTrue(s.block("alice", "a", ["z@x", "b@x", "b@x"], 10))
        s.block("bob", "a", ["c@x"], 10)
        self.assertEqual(s.blocklist("alice", "a"), ["b@x", "z@x"])
        s.unblock("alice", "a", ["z@x", "nope@x"])
        self.assertEqual(s.blocklist("alice", "a"), ["b@x"])
        s.unblock("alice", "a", None)
        self.assertEqual(s.blocklist("alice", "a"), [])
        self.assertEqual(s.blocklist("bob", "a"), ["c@x"])

    def test_limit_rolls_back_the_whole_block(self) -> None:
        s = self.store
        s.block("alice", "a", ["1@x", "2@x"], 3)
        self.assertFalse(s.block("alice", "a", ["3@x", "4@x"], 3))
        self.assertEqual(s.blocklist("alice", "a"), ["1@x", "2@x"])
        self.assertTrue(s.block("alice", "a", ["2@x", "3@x"], 3))
        self.assertEqual(s.blocklist("alice", "a"), ["1@x", "2@x", "3@x"])

    def test_survives_reopen(self) -> None:
        path = self.mktemp()
        first = SqliteImStore(path)
        first.block("alice", "a", ["b@x"], 10)
        first.close()
        again = SqliteImStore(path)
        self.addCleanup(again.close)
        self.assertEqual(again.blocklist("alice", "a"), ["b@x"])
