# -*- test-case-name: tests.test_sm -*-
"""
Messages held for hibernating stream management sessions (XEP-0198) in the
server's SQLite database (the C{sm_held} table of
L{convergence.store.sqlite.MIGRATIONS}).

L{SqliteHeldStanzaStore} is a mixin of L{convergence.store.sqlite_im.SqliteImStore}
(one database connection, C{self._db}, the same file as the offline
messages it moves held ones into); every call is one transaction, made on
the database thread.
"""

from __future__ import annotations

import sqlite3
from typing import Sequence

from zope.interface import implementer

from convergence.store.interfaces import IHeldStanzaStore
from convergence.store.sqlite import _transaction

__all__ = ["SqliteHeldStanzaStore"]


@implementer(IHeldStanzaStore)
class SqliteHeldStanzaStore:
    """L{IHeldStanzaStore} on the SQLite connection C{self._db}."""

    _db: sqlite3.Connection

    def hold(self, session: str, localpart: str, domain: str,
             stanzas: Sequence[tuple[float, bytes]]) -> None:
        with _transaction(self._db) as db:
            db.executemany(
                "INSERT INTO sm_held (session, localpart, domain, stamp, stanza)"
                " VALUES (?, ?, ?, ?, ?)",
                [(session, localpart, domain, stamp, stanza) for stamp, stanza in stanzas])

    def release(self, session: str) -> None:
        with _transaction(self._db) as db:
            db.execute("DELETE FROM sm_held WHERE session = ?", (session,))

    def release_to_offline(self, session: str, quota: int) -> list[bytes]:
        overflow: list[bytes] = []
        with _transaction(self._db) as db:
            rows = db.execute("SELECT localpart, domain, stamp, stanza FROM sm_held"
                              " WHERE session = ? ORDER BY id", (session,)).fetchall()
            db.execute("DELETE FROM sm_held WHERE session = ?", (session,))
            for localpart, domain, stamp, stanza in rows:
                if quota:
                    (count,) = db.execute(
                        "SELECT COUNT(*) FROM offline_messages WHERE localpart = ?"
                        " AND domain = ?", (localpart, domain)).fetchone()
                    if count >= quota:
                        overflow.append(bytes(stanza))
                        continue
                db.execute("INSERT INTO offline_messages (localpart, domain, stamp, stanza)"
                           " VALUES (?, ?, ?, ?)", (localpart, domain, stamp, stanza))
        return overflow

    def recover(self) -> int:
        with _transaction(self._db) as db:
            moved = db.execute(
                "INSERT INTO offline_messages (localpart, domain, stamp, stanza)"
                " SELECT localpart, domain, stamp, stanza FROM sm_held ORDER BY id").rowcount
            db.execute("DELETE FROM sm_held")
        return moved
