# -*- test-case-name: tests.test_store_sqlite -*-
"""
The embedded SQLite backend (stdlib C{sqlite3}, WAL mode).

Calls are synchronous and made from the reactor thread, so each one is a
single short statement or transaction.  The schema version lives in
C{PRAGMA user_version}; L{MIGRATIONS} is applied in order on open, so later
features add tables by appending a step.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Mapping

from zope.interface import implementer

from convergence.auth.scram import MECHANISMS, ScramCredential
from convergence.store.errors import AccountExists, NoSuchAccount, StoreError
from convergence.store.interfaces import IAccountStore

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SqliteAccountStore"]

#: Schema steps; step N (1-based) brings the database to C{user_version} N.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE accounts (
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            created INTEGER NOT NULL,
            PRIMARY KEY (localpart, domain)
        )
        """,
        """
        CREATE TABLE credentials (
            localpart TEXT NOT NULL,
            domain TEXT NOT NULL,
            mechanism TEXT NOT NULL,
            salt BLOB NOT NULL,
            iterations INTEGER NOT NULL,
            stored_key BLOB NOT NULL,
            server_key BLOB NOT NULL,
            PRIMARY KEY (localpart, domain, mechanism),
            FOREIGN KEY (localpart, domain)
                REFERENCES accounts (localpart, domain) ON DELETE CASCADE
        )
        """,
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)


def _rows(credentials: Mapping[str, ScramCredential]) -> list[tuple]:
    """Validate credentials and turn them into C{credentials} table rows."""
    rows = []
    for mechanism, credential in credentials.items():
        if MECHANISMS.get(mechanism) != credential.hash_name:
            raise ValueError(f"{credential.hash_name} credential given as {mechanism}")
        rows.append(
            (
                mechanism,
                credential.salt,
                credential.iterations,
                credential.stored_key,
                credential.server_key,
            )
        )
    return rows


@implementer(IAccountStore)
class SqliteAccountStore:
    """L{IAccountStore} in one SQLite file."""

    def __init__(
        self, path: str | Path, now: Callable[[], float] = time.time
    ) -> None:
        """
        Open (creating if needed) and migrate the database at C{path}.

        @param now: the clock used for account creation times.
        @raise StoreError: the database is newer than this code.
        """
        self._now = now
        self._db = sqlite3.connect(str(path), isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    @property
    def schema_version(self) -> int:
        """The database's C{PRAGMA user_version}."""
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._transaction() as db:
            version = self.schema_version
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"database schema version {version} is newer than"
                    f" this software ({SCHEMA_VERSION})"
                )
            for number, steps in enumerate(MIGRATIONS[version:], version + 1):
                for statement in steps:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number:d}")

    def create(
        self,
        localpart: str,
        domain: str,
        credentials: Mapping[str, ScramCredential],
    ) -> None:
        rows = _rows(credentials)
        with self._transaction() as db:
            try:
                db.execute(
                    "INSERT INTO accounts (localpart, domain, created)"
                    " VALUES (?, ?, ?)",
                    (localpart, domain, int(self._now())),
                )
            except sqlite3.IntegrityError:
                raise AccountExists(f"{localpart}@{domain}") from None
            self._insert(db, localpart, domain, rows)

    def set_credentials(
        self,
        localpart: str,
        domain: str,
        credentials: Mapping[str, ScramCredential],
    ) -> None:
        rows = _rows(credentials)
        with self._transaction() as db:
            if not self._exists(db, localpart, domain):
                raise NoSuchAccount(f"{localpart}@{domain}")
            db.execute(
                "DELETE FROM credentials WHERE localpart = ? AND domain = ?",
                (localpart, domain),
            )
            self._insert(db, localpart, domain, rows)

    @staticmethod
    def _insert(
        db: sqlite3.Connection, localpart: str, domain: str, rows: list[tuple]
    ) -> None:
        db.executemany(
            "INSERT INTO credentials (localpart, domain, mechanism, salt,"
            " iterations, stored_key, server_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(localpart, domain, *row) for row in rows],
        )

    @staticmethod
    def _exists(db: sqlite3.Connection, localpart: str, domain: str) -> bool:
        row = db.execute(
            "SELECT 1 FROM accounts WHERE localpart = ? AND domain = ?",
            (localpart, domain),
        ).fetchone()
        return row is not None

    def delete(self, localpart: str, domain: str) -> None:
        cursor = self._db.execute(
            "DELETE FROM accounts WHERE localpart = ? AND domain = ?",
            (localpart, domain),
        )
        if cursor.rowcount == 0:
            raise NoSuchAccount(f"{localpart}@{domain}")

    def get_credentials(
        self, localpart: str, domain: str
    ) -> dict[str, ScramCredential] | None:
        rows = self._db.execute(
            "SELECT c.mechanism, c.salt, c.iterations, c.stored_key, c.server_key"
            " FROM accounts AS a LEFT JOIN credentials AS c"
            " ON c.localpart = a.localpart AND c.domain = a.domain"
            " WHERE a.localpart = ? AND a.domain = ?",
            (localpart, domain),
        ).fetchall()
        if not rows:
            return None
        return {
            mechanism: ScramCredential(
                MECHANISMS[mechanism], salt, iterations, stored_key, server_key
            )
            for mechanism, salt, iterations, stored_key, server_key in rows
            if mechanism in MECHANISMS
        }

    def exists(self, localpart: str, domain: str) -> bool:
        return self._exists(self._db, localpart, domain)

    def list_accounts(self, domain: str | None = None) -> list[str]:
        if domain is None:
            rows = self._db.execute("SELECT localpart, domain FROM accounts")
        else:
            rows = self._db.execute(
                "SELECT localpart, domain FROM accounts WHERE domain = ?", (domain,)
            )
        return sorted(f"{localpart}@{host}" for localpart, host in rows)

    def close(self) -> None:
        self._db.close()
