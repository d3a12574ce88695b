"""Tests for L{convergence.store.sqlite} against a real SQLite file."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path

from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from convergence.auth.scram import ScramCredential
from convergence.store import sqlite as sqlite_module
from convergence.store.errors import AccountExists, NoSuchAccount, StoreError
from convergence.store.interfaces import IAccountStore
from convergence.store.sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteAccountStore


def credential(hash_name: str, fill: int) -> ScramCredential:
    """A recognizable credential without the PBKDF2 cost."""
    size = 32 if hash_name == "sha256" else 20
    return ScramCredential(
        hash_name,
        bytes([fill]) * 16,
        4096 + fill,
        bytes([fill]) * size,
        bytes([fill + 1]) * size,
    )


def credentials(fill: int = 1) -> dict[str, ScramCredential]:
    """Both mechanisms' credentials."""
    return {
        "SCRAM-SHA-1": credential("sha1", fill),
        "SCRAM-SHA-256": credential("sha256", fill + 10),
    }


def digests(fill: str = "a") -> dict[str, str]:
    """Recognizable HA1s of the right sizes for both digest algorithms."""
    return {"MD5": fill * 32, "SHA-256": fill * 64}


class SqliteAccountStoreTests(TestCase):
    """L{SqliteAccountStore}."""

    def setUp(self) -> None:
        directory = Path(tempfile.mkdtemp(prefix="convergence-test-"))
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        self.path = directory / "accounts.sqlite3"
        self.store = self.open()

    def open(self) -> SqliteAccountStore:
        """Open the store file, closing it at the end of the test."""
        store = SqliteAccountStore(self.path, now=lambda: 1700000000.5)
        self.addCleanup(store.close)
        return store

    def test_interface(self) -> None:
        """The store provides L{IAccountStore}."""
        self.assertTrue(verifyObject(IAccountStore, self.store))

    def test_create_and_get(self) -> None:
        """Credentials round-trip by mechanism name."""
        self.store.create("juliet", "example.com", credentials())
        self.assertEqual(
            self.store.get_credentials("juliet", "example.com"), credentials()
        )
        self.assertTrue(self.store.exists("juliet", "example.com"))

    def test_missing(self) -> None:
        """An unknown account has no credentials and does not exist."""
        self.assertIsNone(self.store.get_credentials("romeo", "example.com"))
        self.assertFalse(self.store.exists("romeo", "example.com"))

    def test_duplicate(self) -> None:
        """Creating the same account twice raises L{AccountExists}."""
        self.store.create("juliet", "example.com", credentials(1))
        self.assertRaises(
            AccountExists, self.store.create, "juliet", "example.com", credentials(2)
        )
        self.assertEqual(
            self.store.get_credentials("juliet", "example.com"), credentials(1)
        )

    def test_same_localpart_other_domain(self) -> None:
        """Accounts are keyed by localpart and domain together."""
        self.store.create("juliet", "example.com", credentials(1))
        self.store.create("juliet", "example.net", credentials(2))
        self.assertEqual(
            self.store.get_credentials("juliet", "example.net"), credentials(2)
        )

    def test_set_credentials(self) -> None:
        """set_credentials replaces all credentials."""
        self.store.create("juliet", "example.com", credentials(1))
        replacement = {"SCRAM-SHA-256": credential("sha256", 5)}
        self.store.set_credentials("juliet", "example.com", replacement)
        self.assertEqual(
            self.store.get_credentials("juliet", "example.com"), replacement
        )

    def test_set_credentials_missing(self) -> None:
        """set_credentials of an unknown account raises L{NoSuchAccount}."""
        self.assertRaises(
            NoSuchAccount,
            self.store.set_credentials,
            "romeo",
            "example.com",
            credentials(),
        )
        self.assertFalse(self.store.exists("romeo", "example.com"))

    def test_mechanism_mismatch(self) -> None:
        """A credential stored under the wrong mechanism name is refused."""
        bad = {"SCRAM-SHA-256": credential("sha1", 1)}
        self.assertRaises(ValueError, self.store.create, "juliet", "example.com", bad)
        self.assertFalse(self.store.exists("juliet", "example.com"))

    def test_delete(self) -> None:
        """Deleting an account removes it and its credentials."""
        self.store.create("juliet", "example.com", credentials())
        self.store.delete("juliet", "example.com")
        self.assertFalse(self.store.exists("juliet", "example.com"))
        self.assertIsNone(self.store.get_credentials("juliet", "example.com"))
        db = sqlite3.connect(self.path)
        self.addCleanup(db.close)
        rows = db.execute("SELECT COUNT(*) FROM credentials").fetchone()
        self.assertEqual(rows, (0,))

    def test_delete_missing(self) -> None:
        """Deleting an unknown account raises L{NoSuchAccount}."""
        self.assertRaises(NoSuchAccount, self.store.delete, "romeo", "example.com")

    def test_list(self) -> None:
        """Accounts are listed as sorted bare JIDs, optionally by domain."""
        for localpart, domain in (
            ("romeo", "example.net"),
            ("juliet", "example.com"),
            ("benvolio", "example.net"),
        ):
            self.store.create(localpart, domain, credentials())
        self.assertEqual(
            self.store.list_accounts(),
            ["benvolio@example.net", "juliet@example.com", "romeo@example.net"],
        )
        self.assertEqual(
            self.store.list_accounts("example.net"),
            ["benvolio@example.net", "romeo@example.net"],
        )
        self.assertEqual(self.store.list_accounts("example.org"), [])

    def test_schema(self) -> None:
        """The schema version, WAL mode and creation time are on disk."""
        self.store.create("juliet", "example.com", credentials())
        self.assertEqual(self.store.schema_version, SCHEMA_VERSION)
        db = sqlite3.connect(self.path)
        self.addCleanup(db.close)
        self.assertEqual(
            db.execute("PRAGMA user_version").fetchone()[0], SCHEMA_VERSION
        )
        self.assertEqual(db.execute("PRAGMA journal_mode").fetchone()[0], "wal")
        self.assertEqual(
            db.execute("SELECT created FROM accounts").fetchone()[0], 1700000000
        )

    def test_no_password_column(self) -> None:
        """No table has a column that could hold a password."""
        db = sqlite3.connect(self.path)
        self.addCleanup(db.close)
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master")]
        for table in tables:
            columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            self.assertFalse([c for c in columns if "password" in c])

    def test_reopen(self) -> None:
        """Accounts survive closing and reopening the file."""
        self.store.create("juliet", "example.com", credentials())
        self.store.close()
        store = self.open()
        self.assertEqual(store.get_credentials("juliet", "example.com"), credentials())
        self.assertEqual(store.schema_version, SCHEMA_VERSION)

    def test_newer_schema_refused(self) -> None:
        """A database from a newer version is not touched."""
        self.store.close()
        db = sqlite3.connect(self.path)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        db.close()
        self.assertRaises(StoreError, SqliteAccountStore, self.path)

    def test_migration_appended(self) -> None:
        """A step appended to the migrations upgrades an existing database."""
        self.store.create("juliet", "example.com", credentials())
        self.store.close()
        step = ("CREATE TABLE later (x INTEGER)",)
        self.patch(sqlite_module, "MIGRATIONS", sqlite_module.MIGRATIONS + (step,))
        self.patch(sqlite_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
        store = self.open()
        self.assertEqual(store.schema_version, SCHEMA_VERSION + 1)
        self.assertTrue(store.exists("juliet", "example.com"))
        db = sqlite3.connect(self.path)
        self.addCleanup(db.close)
        self.assertEqual(db.execute("SELECT COUNT(*) FROM later").fetchone(), (0,))

    def test_create_with_digests(self) -> None:
        """HA1s given to create are stored by algorithm."""
        self.store.create("juliet", "example.com", credentials(), digests())
        self.assertEqual(self.store.get_digest("juliet", "example.com", "MD5"), "a" * 32)
        self.assertEqual(
            self.store.get_digest("juliet", "example.com", "SHA-256"), "a" * 64
        )
        self.assertIsNone(self.store.get_digest("juliet", "example.com", "SHA-1"))
        self.assertIsNone(self.store.get_digest("juliet", "example.net", "MD5"))

    def test_create_without_digests(self) -> None:
        """An account may have no digest credentials."""
        self.store.create("juliet", "example.com", credentials())
        self.assertIsNone(self.store.get_digest("juliet", "example.com", "MD5"))

    def test_digests_lowercased(self) -> None:
        """HA1s are stored as lowercase hex."""
        self.store.create("juliet", "example.com", credentials(), digests("B"))
        self.assertEqual(self.store.get_digest("juliet", "example.com", "MD5"), "b" * 32)

    def test_bad_digests(self) -> None:
        """Unknown algorithms and wrongly sized or non-hex HA1s are refused whole."""
        for bad in (
            {"SHA-1": "a" * 40},
            {"MD5": "a" * 64},
            {"MD5": "g" * 32},
            {"SHA-256": "a" * 32},
        ):
            self.assertRaises(
                ValueError, self.store.create, "juliet", "example.com",
                credentials(), bad,
            )
        self.assertFalse(self.store.exists("juliet", "example.com"))

    def test_set_digest(self) -> None:
        """set_digest replaces all HA1s of an account."""
        self.store.create("juliet", "example.com", credentials(), digests("a"))
        self.store.set_digest("juliet", "example.com", {"SHA-256": "c" * 64})
        self.assertIsNone(self.store.get_digest("juliet", "example.com", "MD5"))
        self.assertEqual(
            self.store.get_digest("juliet", "example.com", "SHA-256"), "c" * 64
        )
        self.assertEqual(
            self.store.get_credentials("juliet", "example.com"), credentials()
        )

    def test_set_digest_missing(self) -> None:
        """set_digest of an unknown account raises L{NoSuchAccount}."""
        self.assertRaises(
            NoSuchAccount, self.store.set_digest, "romeo", "example.com", digests()
        )

    def test_set_credentials_replaces_digests(self) -> None:
        """A credential change replaces the HA1s in the same call."""
        self.store.create("juliet", "example.com", credentials(1), digests("a"))
        self.store.set_credentials(
            "juliet", "example.com", credentials(2), digests("d")
        )
        self.assertEqual(self.store.get_digest("juliet", "example.com", "MD5"), "d" * 32)
        self.assertEqual(
            self.store.get_credentials("juliet", "example.com"), credentials(2)
        )

    def test_set_credentials_without_digests_clears(self) -> None:
        """No HA1 of an old password survives set_credentials without digests."""
        self.store.create("juliet", "example.com", credentials(1), digests("a"))
        self.store.set_credentials("juliet", "example.com", credentials(2))
        self.assertIsNone(self.store.get_digest("juliet", "example.com", "MD5"))
        self.assertIsNone(self.store.get_digest("juliet", "example.com", "SHA-256"))

    def test_set_credentials_atomic(self) -> None:
        """A bad HA1 leaves the old SCRAM credentials and HA1s in place."""
        self.store.create("juliet", "example.com", credentials(1), digests("a"))
        self.assertRaises(
            ValueError, self.store.set_credentials, "juliet", "example.com",
            credentials(2), {"MD5": "short"},
        )
        self.assertEqual(
            self.store.get_credentials("juliet", "example.com"), credentials(1)
        )
        self.assertEqual(self.store.get_digest("juliet", "example.com", "MD5"), "a" * 32)

    def test_delete_removes_digests(self) -> None:
        """Deleting an account deletes its HA1s, and only its own."""
        self.store.create("juliet", "example.com", credentials(), digests("a"))
        self.store.create("romeo", "example.com", credentials(), digests("b"))
        self.store.delete("juliet", "example.com")
        self.assertIsNone(self.store.get_digest("juliet", "example.com", "MD5"))
        self.assertEqual(self.store.get_digest("romeo", "example.com", "MD5"), "b" * 32)
        db = sqlite3.connect(self.path)
        self.addCleanup(db.close)
        rows = db.execute(
            "SELECT localpart FROM digest_credentials GROUP BY localpart"
        ).fetchall()
        self.assertEqual(rows, [("romeo",)])

    def test_migration_from_version_1(self) -> None:
        """A version 1 database keeps its accounts and gains the new tables."""
        self.store.close()
        self.path.unlink()
        for suffix in ("-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)
        db = sqlite3.connect(self.path)
        for statement in MIGRATIONS[0]:
            db.execute(statement)
        db.execute("PRAGMA user_version = 1")
        db.execute("INSERT INTO accounts VALUES ('juliet', 'example.com', 1)")
        for mechanism, c in credentials().items():
            db.execute(
                "INSERT INTO credentials VALUES (?, ?, ?, ?, ?, ?, ?)",
                ("juliet", "example.com", mechanism, c.salt, c.iterations,
                 c.stored_key, c.server_key),
            )
        db.commit()
        db.close()
        store = self.open()
        self.assertEqual(store.schema_version, SCHEMA_VERSION)
        self.assertEqual(
            store.get_credentials("juliet", "example.com"), credentials()
        )
        self.assertIsNone(store.get_digest("juliet", "example.com", "MD5"))
        store.set_digest("juliet", "example.com", digests())
        self.assertEqual(store.get_digest("juliet", "example.com", "MD5"), "a" * 32)
        db = sqlite3.connect(self.path)
        self.addCleanup(db.close)
        self.assertEqual(
            db.execute("SELECT COUNT(*) FROM sip_bindings").fetchone(), (0,)
        )
