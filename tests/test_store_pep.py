"""The SQLite store of PEP nodes and items and of private XML."""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from convergence.auth.accounts import Accounts
from convergence.store.interfaces import IPepStore, IPrivateStore
from convergence.store.sqlite import SCHEMA_VERSION, SqliteAccountStore
from convergence.store.sqlite_pep import SqlitePepStore

A = ("alice", "localhost")


class PepStoreTests(SynchronousTestCase):
    def setUp(self) -> None:
        path = Path(self.mktemp())
        path.parent.mkdir(parents=True, exist_ok=True)
        self.accounts_store = SqliteAccountStore(path)
        self.addCleanup(self.accounts_store.close)
        Accounts(self.accounts_store, 4096).add("alice@localhost", "pw")
        self.store = SqlitePepStore(path)
        self.addCleanup(self.store.close)

    def test_interfaces_and_schema(self) -> None:
        verifyObject(IPepStore, self.store)
        verifyObject(IPrivateStore, self.store)
        self.assertEqual(self.accounts_store.schema_version, SCHEMA_VERSION)

    def test_nodes(self) -> None:
        self.assertTrue(self.store.create_pep_node(*A, "n1", {"max_items": 1}, 2))
        self.assertRaises(ValueError, self.store.create_pep_node, *A, "n1", {}, 2)
        self.assertTrue(self.store.create_pep_node(*A, "n2", {}, 2))
        self.assertFalse(self.store.create_pep_node(*A, "n3", {}, 2))
        self.assertTrue(self.store.create_pep_node(*A, "n3", {}, 0))  # 0: no limit
        self.store.configure_pep_node(*A, "n2", {"title": "T"}, 5)
        self.assertEqual(self.store.pep_nodes(*A),
                         [("n1", {"max_items": 1}), ("n2", {"title": "T"}), ("n3", {})])
        self.assertEqual(self.store.pep_nodes("bob", "localhost"), [])

    def test_items_order_trim_and_ids(self) -> None:
        self.store.create_pep_node(*A, "n", {}, 0)
        for n in range(4):
            self.store.put_pep_item(*A, "n", f"i{n}", b"<x/>", 3)
        self.assertEqual([i for i, _ in self.store.pep_items(*A, "n")], ["i1", "i2", "i3"])
        self.store.put_pep_item(*A, "n", "i1", b"<y/>", 3)  # republished: newest
        self.assertEqual(self.store.pep_items(*A, "n", 2), [("i3", b"<x/>"), ("i1", b"<y/>")])
        self.assertEqual(self.store.pep_items(*A, "n", ids=["i2", "zz"]), [("i2", b"<x/>")])
        self.store.configure_pep_node(*A, "n", {}, 1)  # fewer items kept
        self.assertEqual([i for i, _ in self.store.pep_items(*A, "n")], ["i1"])
        self.assertTrue(self.store.retract_pep_item(*A, "n", "i1"))
        self.assertFalse(self.store.retract_pep_item(*A, "n", "i1"))
        self.store.put_pep_item(*A, "n", "a", b"<a/>", 5)
        self.store.purge_pep_node(*A, "n")
        self.assertEqual(self.store.pep_items(*A, "n"), [])
        self.store.put_pep_item(*A, "n", "a", b"<a/>", 5)
        self.store.delete_pep_node(*A, "n")
        self.assertEqual((self.store.pep_nodes(*A), self.store.pep_items(*A, "n")), ([], []))

    def test_private(self) -> None:
        self.assertIsNone(self.store.private_data(*A, "urn:x", "p"))
        self.assertTrue(self.store.set_private_data(*A, [("urn:x", "p", b"<p/>")], 1))
        self.assertFalse(self.store.set_private_data(*A, [("urn:x", "q", b"<q/>")], 1))
        self.assertIsNone(self.store.private_data(*A, "urn:x", "q"))
        self.assertTrue(self.store.set_private_data(*A, [("urn:x", "p", b"<p>2</p>")], 1))
        self.assertEqual(self.store.private_data(*A, "urn:x", "p"), b"<p>2</p>")
        # all or nothing: removing one and adding another fits
        self.assertTrue(self.store.set_private_data(
            *A, [("urn:x", "p", None), ("urn:x", "q", b"<q/>")], 1))
        self.assertIsNone(self.store.private_data(*A, "urn:x", "p"))
        self.assertFalse(self.store.set_private_data(
            *A, [("urn:x", "a", b"<a/>"), ("urn:x", "b", b"<b/>")], 2))
        self.assertIsNone(self.store.private_data(*A, "urn:x", "a"))

    def test_subscriptions(self) -> None:
        self.store.create_pep_node(*A, "n", {}, 0)
        self.store.create_pep_node(*A, "m", {}, 0)
        self.assertTrue(self.store.subscribe_pep(*A, "n", "bob@localhost", 2))
        self.assertTrue(self.store.subscribe_pep(*A, "n", "bob@localhost", 2))  # again
        self.assertTrue(self.store.subscribe_pep(*A, "n", "carol@localhost/x", 2))
        self.assertFalse(self.store.subscribe_pep(*A, "n", "dave@localhost", 2))
        self.assertTrue(self.store.subscribe_pep(*A, "m", "dave@localhost", 0))
        self.assertEqual(self.store.pep_subscriptions(*A),
                         [("m", "dave@localhost"), ("n", "bob@localhost"),
                          ("n", "carol@localhost/x")])
        self.assertTrue(self.store.unsubscribe_pep(*A, "n", "bob@localhost"))
        self.assertFalse(self.store.unsubscribe_pep(*A, "n", "bob@localhost"))
        self.store.delete_pep_node(*A, "m")
        self.assertEqual(self.store.pep_subscriptions(*A), [("n", "carol@localhost/x")])

    def test_account_delete_removes_everything(self) -> None:
        self.store.create_pep_node(*A, "n", {}, 0)
        self.store.put_pep_item(*A, "n", "i", b"<x/>", 1)
        self.store.set_private_data(*A, [("urn:x", "p", b"<p/>")], 0)
        self.store.subscribe_pep(*A, "n", "bob@localhost", 0)
        self.accounts_store.delete(*A)
        self.assertEqual(self.store.pep_subscriptions(*A), [])
        self.assertEqual(self.store.pep_nodes(*A), [])
        self.assertEqual(self.store.pep_items(*A, "n"), [])
        self.assertIsNone(self.store.private_data(*A, "urn:x", "p"))


class PepConfigTests(SynchronousTestCase):
    def load(self, text: str):
        from convergence.config import load_config

        path = Path(self.mktemp())
        path.write_text(text)
        return load_config(path)

    def test_keys_and_bounds(self) -> None:
        from convergence.config import ConfigError

        xmpp = self.load("[xmpp]\npep_max_nodes = 5\npep_max_items = 10\n"
                         "pep_max_item_size = 2048\npep_max_avatar_size = 4096\n"
                         "private_max_size = 1024\nprivate_max_elements = 3\n").xmpp
        self.assertEqual((xmpp.pep_max_nodes, xmpp.pep_max_items, xmpp.pep_max_item_size,
                          xmpp.pep_max_avatar_size, xmpp.private_max_size,
                          xmpp.private_max_elements), (5, 10, 2048, 4096, 1024, 3))
        for bad in ("pep_max_nodes = 0", "pep_max_items = -1", "pep_max_item_size = 10",
                    "pep_max_avatar_size = 'big'", "private_max_size = 1",
                    "private_max_elements = 0"):
            with self.assertRaises(ConfigError) as cm:
                self.load(f"[xmpp]\n{bad}\n")
            self.assertIn("xmpp." + bad.split()[0], str(cm.exception))
