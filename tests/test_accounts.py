"""Tests for L{convergence.auth.accounts}."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from twisted.trial.unittest import TestCase

from convergence.auth.accounts import AccountError, Accounts
from convergence.auth.scram import verify_password
from convergence.store.errors import AccountExists, NoSuchAccount
from convergence.store.sqlite import SqliteAccountStore
from convergence.xmpp.jid import InvalidJID


class AccountsTests(TestCase):
    """L{Accounts} over a real SQLite store."""

    def setUp(self) -> None:
        directory = Path(tempfile.mkdtemp(prefix="convergence-test-"))
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        self.path = directory / "accounts.sqlite3"
        self.store = SqliteAccountStore(self.path)
        self.addCleanup(self.store.close)
        self.accounts = Accounts(self.store, iterations=5000)

    def test_add(self) -> None:
        """Both SCRAM credentials are derived with the configured iterations."""
        self.accounts.add("juliet@example.com", "r0meo")
        credentials = self.accounts.credentials("juliet", "example.com")
        assert credentials is not None
        self.assertEqual(set(credentials), {"SCRAM-SHA-1", "SCRAM-SHA-256"})
        self.assertEqual(credentials["SCRAM-SHA-1"].hash_name, "sha1")
        self.assertEqual(credentials["SCRAM-SHA-256"].hash_name, "sha256")
        for credential in credentials.values():
            self.assertEqual(credential.iterations, 5000)
            self.assertEqual(len(credential.salt), 16)
            self.assertTrue(verify_password("r0meo", credential))
            self.assertFalse(verify_password("romeo", credential))

    def test_password_not_stored(self) -> None:
        """The password appears nowhere in the database files."""
        self.accounts.add("juliet@example.com", "very-secret-words")
        self.store.close()
        for path in self.path.parent.iterdir():
            self.assertNotIn(b"very-secret-words", path.read_bytes())

    def test_jid_prepared(self) -> None:
        """The JID is prepared before it is stored."""
        self.accounts.add("Juliet@Example.COM", "r0meo")
        self.assertEqual(self.accounts.list(), ["juliet@example.com"])
        self.assertIsNotNone(self.accounts.credentials("juliet", "example.com"))

    def test_duplicate(self) -> None:
        """Adding an existing account raises L{AccountExists}."""
        self.accounts.add("juliet@example.com", "r0meo")
        self.assertRaises(
            AccountExists, self.accounts.add, "JULIET@example.com", "other"
        )

    def test_needs_localpart(self) -> None:
        """A domain alone is not an account."""
        self.assertRaises(AccountError, self.accounts.add, "example.com", "r0meo")

    def test_no_resource(self) -> None:
        """An account JID has no resource."""
        self.assertRaises(
            AccountError, self.accounts.add, "juliet@example.com/balcony", "r0meo"
        )
        self.assertEqual(self.accounts.list(), [])

    def test_invalid_jid(self) -> None:
        """An invalid JID raises L{InvalidJID}, a L{ValueError}."""
        self.assertRaises(InvalidJID, self.accounts.add, "juliet@", "r0meo")
        self.assertRaises(ValueError, self.accounts.add, "a@b@c", "r0meo")

    def test_bad_passwords(self) -> None:
        """Empty passwords and passwords SASLprep refuses are rejected."""
        for password in ("", "\u00ad", "bell\u0007"):
            self.assertRaises(
                AccountError, self.accounts.add, "juliet@example.com", password
            )
        self.assertEqual(self.accounts.list(), [])

    def test_set_password(self) -> None:
        """A new password replaces the old one."""
        self.accounts.add("juliet@example.com", "r0meo")
        self.accounts.set_password("juliet@example.com", "tybalt")
        credentials = self.accounts.credentials("juliet", "example.com")
        assert credentials is not None
        for credential in credentials.values():
            self.assertTrue(verify_password("tybalt", credential))
            self.assertFalse(verify_password("r0meo", credential))

    def test_set_password_unknown(self) -> None:
        """Changing the password of an unknown account fails."""
        self.assertRaises(
            NoSuchAccount, self.accounts.set_password, "romeo@example.com", "x"
        )

    def test_remove(self) -> None:
        """A removed account has no credentials left."""
        self.accounts.add("juliet@example.com", "r0meo")
        self.accounts.remove("juliet@example.com")
        self.assertIsNone(self.accounts.credentials("juliet", "example.com"))
        self.assertRaises(NoSuchAccount, self.accounts.remove, "juliet@example.com")

    def test_list_by_domain(self) -> None:
        """Listing filters by a prepared domain."""
        self.accounts.add("romeo@example.net", "x1")
        self.accounts.add("juliet@example.com", "x2")
        self.assertEqual(
            self.accounts.list(), ["juliet@example.com", "romeo@example.net"]
        )
        self.assertEqual(self.accounts.list("EXAMPLE.net"), ["romeo@example.net"])
        self.assertRaises(AccountError, self.accounts.list, "juliet@example.com")
