# -*- test-case-name: tests.test_store_push -*-
"""
XEP-0357 push registrations in the server's SQLite database (the table of
migration 6 in L{convergence.store.sqlite.MIGRATIONS}).

Every call is one statement or one transaction, made on the database
thread, like the other SQLite stores.
"""

from __future__ import annotations

from pathlib import Path

from zope.interface import implementer

from convergence.store.interfaces import IPushStore, PushRegistration
from convergence.store.sqlite import _transaction, open_database

__all__ = ["SqlitePushStore"]


@implementer(IPushStore)
class SqlitePushStore:
    """L{IPushStore} in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        """
        Open (creating if needed) and migrate the database at C{path}.

        @raise StoreError: the database is newer than this code.
        """
        self._db = open_database(path)

    def put_registration(self, localpart: str, domain: str,
                         registration: PushRegistration, limit: int) -> bool:
        r = registration
        with _transaction(self._db) as db:
            known = db.execute(
                "SELECT 1 FROM push_registrations WHERE localpart = ? AND domain = ?"
                " AND service = ? AND node = ?",
                (localpart, domain, r.service, r.node)).fetchone()
            if known is None and limit:
                (count,) = db.execute(
                    "SELECT COUNT(*) FROM push_registrations WHERE localpart = ?"
                    " AND domain = ?", (localpart, domain)).fetchone()
                if count >= limit:
                    return False
            db.execute(
                "INSERT OR REPLACE INTO push_registrations"
                " (localpart, domain, service, node, options, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (localpart, domain, r.service, r.node, r.options, r.created))
        return True

    def remove_registrations(self, localpart: str, domain: str, service: str,
                             node: str | None = None) -> int:
        if node is None:
            cursor = self._db.execute(
                "DELETE FROM push_registrations WHERE localpart = ? AND domain = ?"
                " AND service = ?", (localpart, domain, service))
        else:
            cursor = self._db.execute(
                "DELETE FROM push_registrations WHERE localpart = ? AND domain = ?"
                " AND service = ? AND node = ?", (localpart, domain, service, node))
        return cursor.rowcount

    def registrations(self, localpart: str, domain: str) -> list[PushRegistration]:
        rows = self._db.execute(
            "SELECT service, node, options, created FROM push_registrations"
            " WHERE localpart = ? AND domain = ? ORDER BY created, service, node",
            (localpart, domain))
        return [PushRegistration(service, node,
                                 None if options is None else bytes(options), created)
                for service, node, options, created in rows]

    def close(self) -> None:
        self._db.close()
