"""Tests for L{convergence.auth.accounts}."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import tempfile
from pathlib import Path

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from convergence.auth.accounts import AccountError, Accounts
from convergence.auth.digest import DigestChallenger, parse_credentials
from convergence.auth.scram import verify_password
from convergence.store.errors import AccountExists, NoSuchAccount
from convergence.store.sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteAccountStore
from convergence.xmpp.jid import InvalidJID


def expected_ha1(hash_name: str, text: str) -> str:
    """HA1 computed here, independently of the code under test."""
    return hashlib.new(hash_name, text.encode("utf-8")).hexdigest()


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

    def test_add_stores_digests(self) -> None:
        """add stores MD5 and SHA-256 HA1 of localpart:domain:password."""
        self.accounts.add("Juliet@Example.COM", "r0meo")
        self.assertEqual(
            self.store.get_digest("juliet", "example.com", "MD5"),
            expected_ha1("md5", "juliet:example.com:r0meo"),
        )
        self.assertEqual(
            self.accounts.digest("juliet", "example.com", "SHA-256"),
            expected_ha1("sha256", "juliet:example.com:r0meo"),
        )

    def test_digest_uses_password_as_typed(self) -> None:
        """The HA1 hashes the password's UTF-8 as a phone would, not SASLprep's."""
        self.accounts.add("juliet@example.com", "caf\u00e9\u2168")
        self.assertEqual(
            self.accounts.digest("juliet", "example.com", "MD5"),
            expected_ha1("md5", "juliet:example.com:caf\u00e9\u2168"),
        )

    def test_set_password_replaces_digests(self) -> None:
        """passwd recomputes the HA1s for the new password."""
        self.accounts.add("juliet@example.com", "r0meo")
        self.accounts.set_password("juliet@example.com", "tybalt")
        for algorithm, hash_name in (("MD5", "md5"), ("SHA-256", "sha256")):
            self.assertEqual(
                self.accounts.digest("juliet", "example.com", algorithm),
                expected_ha1(hash_name, "juliet:example.com:tybalt"),
            )

    def test_set_password_enables_sip_for_old_accounts(self) -> None:
        """An account from schema 1 has no HA1 until its password is set."""
        self.store.close()
        self.path.unlink()
        db = sqlite3.connect(self.path)
        for statement in MIGRATIONS[0]:
            db.execute(statement)
        db.execute("PRAGMA user_version = 1")
        db.execute("INSERT INTO accounts VALUES ('juliet', 'example.com', 1)")
        db.commit()
        db.close()
        store = SqliteAccountStore(self.path)
        self.addCleanup(store.close)
        self.assertEqual(store.schema_version, SCHEMA_VERSION)
        accounts = Accounts(store, iterations=4096)
        self.assertEqual(accounts.list(), ["juliet@example.com"])
        self.assertIsNone(accounts.digest("juliet", "example.com", "MD5"))
        accounts.set_password("juliet@example.com", "r0meo")
        self.assertEqual(
            accounts.digest("juliet", "example.com", "MD5"),
            expected_ha1("md5", "juliet:example.com:r0meo"),
        )

    def test_remove_deletes_digests(self) -> None:
        """deluser removes the HA1s too."""
        self.accounts.add("juliet@example.com", "r0meo")
        self.accounts.remove("juliet@example.com")
        for algorithm in ("MD5", "SHA-256"):
            self.assertIsNone(self.accounts.digest("juliet", "example.com", algorithm))

    def test_ha1_lookup(self) -> None:
        """ha1_lookup binds the realm's domain for a DigestChallenger."""
        self.accounts.add("juliet@example.com", "r0meo")
        self.accounts.add("juliet@example.net", "other")
        lookup = self.accounts.ha1_lookup("example.com")
        self.assertEqual(
            lookup("juliet", "SHA-256"),
            expected_ha1("sha256", "juliet:example.com:r0meo"),
        )
        self.assertIsNone(lookup("romeo", "SHA-256"))
        self.assertIsNone(lookup("Juliet", "MD5"))

    def test_digest_round_trip(self) -> None:
        """A phone's response for a convergencectl account verifies."""
        self.accounts.add("juliet@example.com", "r0meo")
        challenger = DigestChallenger("example.com", Clock().seconds)
        for challenge in challenger.challenges():
            params = parse_credentials(challenge)[1]
            hash_name = {"MD5": "md5", "SHA-256": "sha256"}[params["algorithm"]]
            ha1 = expected_ha1(hash_name, "juliet:example.com:r0meo")
            ha2 = expected_ha1(hash_name, "REGISTER:sip:example.com")
            response = expected_ha1(
                hash_name, f"{ha1}:{params['nonce']}:00000001:{hash_name}:auth:{ha2}"
            )
            authorization = (
                f'Digest username="juliet", realm="example.com",'
                f' nonce="{params["nonce"]}", uri="sip:example.com",'
                f" algorithm={params['algorithm']}, qop=auth, nc=00000001,"
                f' cnonce="{hash_name}", response="{response}"'
            )
            result = challenger.verify(
                "REGISTER", authorization, self.accounts.ha1_lookup("example.com")
            )
            self.assertTrue(result.ok, result.reason)
            self.assertEqual(result.username, "juliet")
