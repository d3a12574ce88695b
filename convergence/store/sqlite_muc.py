# -*- test-case-name: tests.test_muc_store -*-
"""
Persistent XEP-0045 rooms in the server's SQLite database (the tables of
migration 12 in L{convergence.store.sqlite.MIGRATIONS}).

Every call is one statement or one transaction, made on the database
thread, like the other SQLite stores.
"""

from __future__ import annotations

from pathlib import Path

from zope.interface import implementer

from convergence.store.interfaces import IMucStore, StoredRoom
from convergence.store.sqlite import _transaction, open_database

__all__ = ["SqliteMucStore"]


@implementer(IMucStore)
class SqliteMucStore:
    """L{IMucStore} in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        """
        Open (creating if needed) and migrate the database at C{path}.

        @raise StoreError: the database is newer than this code.
        """
        self._db = open_database(path)

    def rooms(self, service: str) -> list[StoredRoom]:
        affiliations: dict[str, dict[str, str]] = {}
        nicks: dict[str, dict[str, str]] = {}
        for name, jid, affiliation, nick in self._db.execute(
                "SELECT name, jid, affiliation, nick FROM muc_affiliations WHERE service = ?"
                " ORDER BY name, jid", (service,)):
            affiliations.setdefault(name, {})[jid] = affiliation
            if nick:
                nicks.setdefault(name, {})[jid] = nick
        return [StoredRoom(name, config, subject, subject_from,
                           affiliations.get(name, {}), created, nicks.get(name, {}))
                for name, config, subject, subject_from, created in self._db.execute(
                    "SELECT name, config, subject, subject_from, created FROM muc_rooms"
                    " WHERE service = ? ORDER BY name", (service,))]

    def put_room(self, service: str, room: StoredRoom) -> None:
        with _transaction(self._db) as db:
            db.execute(
                "INSERT INTO muc_rooms (service, name, config, subject, subject_from,"
                " created) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (service, name) DO UPDATE"
                " SET config = excluded.config, subject = excluded.subject,"
                " subject_from = excluded.subject_from",
                (service, room.name, room.config, room.subject, room.subject_from,
                 room.created))
            db.execute("DELETE FROM muc_affiliations WHERE service = ? AND name = ?",
                       (service, room.name))
            db.executemany(
                "INSERT INTO muc_affiliations (service, name, jid, affiliation, nick)"
                " VALUES (?, ?, ?, ?, ?)",
                [(service, room.name, jid, affiliation, room.nicks.get(jid))
                 for jid, affiliation in sorted(room.affiliations.items())])

    def delete_room(self, service: str, name: str) -> bool:
        with _transaction(self._db) as db:
            cursor = db.execute("DELETE FROM muc_rooms WHERE service = ? AND name = ?",
                                (service, name))
        return cursor.rowcount > 0

    def close(self) -> None:
        self._db.close()
