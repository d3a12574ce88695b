"""The SQLite roster and offline-message store."""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from convergence.auth.accounts import Accounts
from convergence.store.interfaces import IOfflineStore, IRosterStore, RosterItem
from convergence.store.sqlite import SqliteAccountStore
from convergence.store.sqlite_im import SqliteImStore


class ImStoreTests(SynchronousTestCase):
    def setUp(self) -> None:
        path = Path(self.mktemp())
        path.parent.mkdir(parents=True, exist_ok=True)
        self.accounts_store = SqliteAccountStore(path)
        self.addCleanup(self.accounts_store.close)
        Accounts(self.accounts_store, 4096).add("alice@localhost", "pw")
        self.store = SqliteImStore(path)
        self.addCleanup(self.store.close)

    def test_interfaces(self) -> None:
        verifyObject(IRosterStore, self.store)
        verifyObject(IOfflineStore, self.store)

    def test_roster_round_trip_and_versions(self) -> None:
        item = RosterItem("bob@localhost", "Bob", "both", ask=True, pending_in=True,
                          approved=True, groups=("A", "B"), listed=False, request="<p/>")
        self.assertEqual(self.store.put_item("alice", "localhost", item), 1)
        self.assertEqual(self.store.roster("alice", "localhost"), (1, [item]))
        self.assertEqual(self.store.remove_item("alice", "localhost", "bob@localhost"), 2)
        self.assertEqual(self.store.roster("alice", "localhost"), (2, []))
        self.assertEqual(self.store.roster("bob", "localhost"), (0, []))

    def test_subscribers_of_a_contact(self) -> None:
        """Users with the contact as to or both, nobody else."""
        for user, sub in (("alice", "to"), ("bob", "both"), ("carol", "from"),
                          ("dave", "none")):
            self.store.put_item(user, "localhost", RosterItem("bot@localhost", subscription=sub))
        self.store.put_item("erin", "localhost", RosterItem("other@localhost", subscription="to"))
        self.assertEqual(self.store.subscribers("bot@localhost"),
                         [("alice", "localhost"), ("bob", "localhost")])
        self.assertEqual(self.store.subscribers("nobody@localhost"), [])

    def test_offline_order_quota_and_removal(self) -> None:
        for n in range(3):
            self.assertTrue(self.store.store_message("alice", "localhost", n, b"m%d" % n, 3))
        self.assertFalse(self.store.store_message("alice", "localhost", 9, b"over", 3))
        self.assertTrue(self.store.store_message("alice", "localhost", 9, b"any", 0))
        messages = self.store.messages("alice", "localhost", 2)
        self.assertEqual([m.stanza for m in messages], [b"m0", b"m1"])
        self.store.remove_messages("alice", "localhost", [m.id for m in messages])
        self.assertEqual([m.stanza for m in self.store.messages("alice", "localhost", 10)],
                         [b"m2", b"any"])
        self.assertEqual(self.store.count_messages("alice", "localhost"), 2)

    def test_offline_batch_counts_the_quota_per_user(self) -> None:
        """A batch is stored in order in one call; the quota counts the
        messages already stored and those earlier in the batch, per user."""
        self.assertTrue(self.store.store_message("alice", "localhost", 0, b"a0", 2))
        got = self.store.store_messages(
            [("alice", "localhost", 1, b"a1"), ("bob", "localhost", 1, b"b1"),
             ("alice", "localhost", 2, b"a2"), ("bob", "localhost", 2, b"b2"),
             ("bob", "localhost", 3, b"b3")], 2)
        self.assertEqual(got, [True, True, False, True, False])
        self.assertEqual([m.stanza for m in self.store.messages("alice", "localhost", 9)],
                         [b"a0", b"a1"])
        self.assertEqual([m.stanza for m in self.store.messages("bob", "localhost", 9)],
                         [b"b1", b"b2"])
        self.assertEqual(self.store.store_messages([], 2), [])

    def test_offline_remove_through(self) -> None:
        """Removing through an id takes that user's messages up to it, not
        later ones nor another user's."""
        for n in range(4):
            self.store.store_message("alice", "localhost", n, b"a%d" % n, 0)
            self.store.store_message("bob", "localhost", n, b"b%d" % n, 0)
        read = self.store.messages("alice", "localhost", 2)
        self.store.remove_messages_through("alice", "localhost", read[-1].id)
        self.assertEqual([m.stanza for m in self.store.messages("alice", "localhost", 9)],
                         [b"a2", b"a3"])
        self.assertEqual(self.store.count_messages("bob", "localhost"), 4)

    def test_account_deletion_removes_im_data(self) -> None:
        """Deleting an account deletes its roster and stored messages."""
        self.store.put_item("alice", "localhost", RosterItem("bob@localhost"))
        self.store.store_message("alice", "localhost", 1, b"m", 0)
        self.accounts_store.delete("alice", "localhost")
        self.assertEqual(self.store.roster("alice", "localhost"), (0, []))
        self.assertEqual(self.store.count_messages("alice", "localhost"), 0)
