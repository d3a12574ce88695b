# -*- test-case-name: tests.test_blocking_store -*-
"""
Blocklists (XEP-0191) in the server's SQLite database (the table of
migration 10 in L{convergence.store.sqlite.MIGRATIONS}).

L{SqliteBlockingStore} is a mixin of L{convergence.store.sqlite_im.SqliteImStore}
(one database connection, C{self._db}); every call is one statement or one
transaction, made on the database thread.
"""

from __future__ import annotations

import sqlite3
from typing import Sequence

from zope.interface import implementer

from convergence.store.interfaces import IBlockingStore
from convergence.store.sqlite import _transaction

__all__ = ["SqliteBlockingStore"]


@implementer(IBlockingStore)
class SqliteBlockingStore:
    """L{IBlockingStore} on the SQLite connection C{self._db}."""

    _db: sqlite3.Connection

    def blocklist(self, localpart: str, domain: str) -> list[str]:
        rows = self._db.execute(
            "SELECT jid FROM blocklist_items WHERE localpart = ? AND domain = ?"
            " ORDER BY jid", (localpart, domain))
        return [jid for (jid,) in rows]

    def block(self, localpart: str, domain: str, jids: Sequence[str], limit: int) -> bool:
        try:
            with _transaction(self._db) as db:
                db.executemany(
                    "INSERT OR IGNORE INTO blocklist_items (localpart, domain, jid)"
                    " VALUES (?, ?, ?)", [(localpart, domain, jid) for jid in jids])
                (count,) = db.execute(
                    "SELECT COUNT(*) FROM blocklist_items WHERE localpart = ?"
                    " AND domain = ?", (localpart, domain)).fetchone()
                if count > limit:
                    raise _OverLimit()  # rolls the inserts back
        except _OverLimit:
            return False
        return True

    def unblock(self, localpart: str, domain: str, jids: Sequence[str] | None) -> None:
        with _transaction(self._db) as db:
            if jids is None:
                db.execute("DELETE FROM blocklist_items WHERE localpart = ? AND domain = ?",
                           (localpart, domain))
            else:
                db.executemany(
                    "DELETE FROM blocklist_items WHERE localpart = ? AND domain = ?"
                    " AND jid = ?", [(localpart, domain, jid) for jid in jids])


class _OverLimit(Exception):
    """The blocklist would grow past its limit."""
