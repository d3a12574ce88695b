"""Tests for the L{ILocationStore} implementations, memory and SQLite."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from convergence.store.interfaces import DEFAULT_Q, Binding, ILocationStore
from convergence.store.location import MemoryLocationStore
from convergence.store.sqlite import SqliteAccountStore, SqliteLocationStore

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
DESK = "sip:alice@192.0.2.10:5060"
MOBILE = "sip:alice@198.51.100.7:5062;transport=tcp"
SOFT = "sips:alice@203.0.113.1;ob"


class _LocationStoreTests:
    """Behaviour every L{ILocationStore} shares; mixed into a concrete case."""

    store: ILocationStore

    def make_store(self) -> ILocationStore:
        """Create the store under test."""
        raise NotImplementedError

    def setUp(self) -> None:
        self.store = self.make_store()

    def test_interface(self) -> None:
        """The store provides L{ILocationStore}."""
        self.assertTrue(verifyObject(ILocationStore, self.store))

    def test_register(self) -> None:
        """A registered binding comes back with every field."""
        self.store.register_binding(
            ALICE, SOFT, 1000.0, "call-1@host", 7, 0.5,
            path=("<sip:edge.example.com;lr>", "<sip:core.example.com;lr>"),
            instance_id="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>",
            reg_id=1,
            received="tls:203.0.113.1:40123",
        )
        self.assertEqual(
            self.store.bindings(ALICE, 10.0),
            [
                Binding(
                    ALICE, SOFT, 1000.0, "call-1@host", 7, 0.5,
                    ("<sip:edge.example.com;lr>", "<sip:core.example.com;lr>"),
                    "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>",
                    1,
                    "tls:203.0.113.1:40123",
                )
            ],
        )

    def test_defaults(self) -> None:
        """Optional fields default to none, and no q orders as L{DEFAULT_Q}."""
        self.store.register_binding(ALICE, DESK, 100.0, "c", 1)
        [binding] = self.store.bindings(ALICE, 0.0)
        self.assertEqual(
            (binding.q, binding.path, binding.instance_id, binding.reg_id),
            (None, (), None, None),
        )
        self.assertIsNone(binding.received)
        self.assertEqual(binding.priority, DEFAULT_Q)

    def test_unknown_aor(self) -> None:
        """An AOR nobody registered has no bindings."""
        self.assertEqual(self.store.bindings(BOB, 0.0), [])

    def test_refresh(self) -> None:
        """Registering the same contact again replaces the binding."""
        self.store.register_binding(ALICE, DESK, 100.0, "c", 1, 0.3)
        self.store.register_binding(ALICE, DESK, 200.0, "c", 2)
        [binding] = self.store.bindings(ALICE, 150.0)
        self.assertEqual((binding.expires_at, binding.cseq, binding.q), (200.0, 2, None))

    def test_aors_separate(self) -> None:
        """The same contact under two AORs is two bindings."""
        self.store.register_binding(ALICE, DESK, 100.0, "c", 1)
        self.store.register_binding(BOB, DESK, 50.0, "d", 1)
        self.assertEqual([b.aor for b in self.store.bindings(ALICE, 0.0)], [ALICE])
        self.assertEqual([b.call_id for b in self.store.bindings(BOB, 0.0)], ["d"])

    def test_expiry(self) -> None:
        """Bindings expiring at or before C{now} are not returned."""
        self.store.register_binding(ALICE, DESK, 100.0, "c", 1)
        self.store.register_binding(ALICE, MOBILE, 200.0, "c", 2)
        self.assertEqual(len(self.store.bindings(ALICE, 99.9)), 2)
        self.assertEqual(
            [b.contact for b in self.store.bindings(ALICE, 100.0)], [MOBILE]
        )
        self.assertEqual(self.store.bindings(ALICE, 200.0), [])

    def test_q_order(self) -> None:
        """Highest q first, no q as 1.0, ties by contact."""
        self.store.register_binding(ALICE, DESK, 100.0, "c", 1, 0.1)
        self.store.register_binding(ALICE, MOBILE, 100.0, "c", 2, 0.9)
        self.store.register_binding(ALICE, SOFT, 100.0, "c", 3)
        self.store.register_binding(ALICE, "sip:alice@a.example", 100.0, "c", 4, 0.9)
        self.assertEqual(
            [b.contact for b in self.store.bindings(ALICE, 0.0)],
            [SOFT, MOBILE, "sip:alice@a.example", DESK],
        )

    def test_remove_binding(self) -> None:
        """One binding goes; the others of the AOR stay."""
        self.store.register_binding(ALICE, DESK, 100.0, "c", 1)
        self.store.register_binding(ALICE, MOBILE, 100.0, "c", 1)
        self.assertTrue(self.store.remove_binding(ALICE, DESK))
        self.assertFalse(self.store.remove_binding(ALICE, DESK))
        self.assertFalse(self.store.remove_binding(BOB, MOBILE))
        self.assertEqual(
            [b.contact for b in self.store.bindings(ALICE, 0.0)], [MOBILE]
        )

    def test_remove_all(self) -> None:
        """C{Contact: *} removes every binding of the AOR only."""
        self.store.register_binding(ALICE, DESK, 100.0, "c", 1)
        self.store.register_binding(ALICE, MOBILE, 100.0, "c", 1)
        self.store.register_binding(BOB, DESK, 100.0, "d", 1)
        self.assertEqual(self.store.remove_all(ALICE), 2)
        self.assertEqual(self.store.remove_all(ALICE), 0)
        self.assertEqual(self.store.bindings(ALICE, 0.0), [])
        self.assertEqual(len(self.store.bindings(BOB, 0.0)), 1)

    def test_purge_expired(self) -> None:
        """Purging deletes exactly the expired bindings and counts them."""
        self.store.register_binding(ALICE, DESK, 100.0, "c", 1)
        self.store.register_binding(ALICE, MOBILE, 300.0, "c", 1)
        self.store.register_binding(BOB, DESK, 100.0, "d", 1)
        self.assertEqual(self.store.purge_expired(100.0), 2)
        self.assertEqual(self.store.purge_expired(100.0), 0)
        self.assertEqual(
            [b.contact for b in self.store.bindings(ALICE, 0.0)], [MOBILE]
        )
        self.assertEqual(self.store.bindings(BOB, 0.0), [])

    def test_invalid(self) -> None:
        """Out-of-range q, negative CSeq, empty keys and a bare string path fail."""
        for kwargs in (
            {"q": 1.5},
            {"q": -0.1},
            {"cseq": -1},
            {"contact": ""},
            {"expires_at": float("nan")},
            {"path": "<sip:edge.example.com;lr>"},
        ):
            args = {
                "aor": ALICE, "contact": DESK, "expires_at": 100.0,
                "call_id": "c", "cseq": 1,
            }
            args.update(kwargs)
            self.assertRaises(ValueError, self.store.register_binding, **args)
        self.assertEqual(self.store.bindings(ALICE, 0.0), [])


class MemoryLocationStoreTests(_LocationStoreTests, SynchronousTestCase):
    """L{MemoryLocationStore}."""

    def make_store(self) -> ILocationStore:
        return MemoryLocationStore()


class SqliteLocationStoreTests(_LocationStoreTests, SynchronousTestCase):
    """L{SqliteLocationStore} on a real file shared with the account store."""

    def make_store(self) -> ILocationStore:
        directory = Path(tempfile.mkdtemp(prefix="convergence-test-"))
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        self.path = directory / "convergence.sqlite3"
        store = SqliteLocationStore(self.path)
        self.addCleanup(store.close)
        return store

    def test_survives_reopen(self) -> None:
        """Bindings persist in the file, next to the accounts."""
        accounts = SqliteAccountStore(self.path)
        self.addCleanup(accounts.close)
        self.store.register_binding(ALICE, DESK, 100.0, "c", 1, 0.5, ("<sip:p;lr>",))
        self.store.close()
        reopened = SqliteLocationStore(self.path)
        self.addCleanup(reopened.close)
        [binding] = reopened.bindings(ALICE, 0.0)
        self.assertEqual((binding.q, binding.path), (0.5, ("<sip:p;lr>",)))
        db = sqlite3.connect(self.path)
        self.addCleanup(db.close)
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        self.assertTrue({"accounts", "digest_credentials", "sip_bindings"} <= names)
