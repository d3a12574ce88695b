# -*- test-case-name: tests.test_store_im -*-
"""
Rosters, offline messages, vCards and last logouts in the server's SQLite
database (the tables of migrations 4, 7 and 8 in
L{convergence.store.sqlite.MIGRATIONS}).

Like the other SQLite stores, every call is one statement or one
transaction, made on the database thread.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

from zope.interface import implementer

from convergence.store.interfaces import (
    ILastActivityStore,
    IOfflineStore,
    IRosterStore,
    IVCardStore,
    OfflineMessage,
    RosterItem,
)
from convergence.store.sqlite import _transaction, open_database
from convergence.store.sqlite_blocking import SqliteBlockingStore
from convergence.store.sqlite_held import SqliteHeldStanzaStore

__all__ = ["SqliteImStore"]

_ITEM_COLUMNS = ("contact, name, subscription, ask, pending_in, approved, groups,"
                 " listed, request")


def _item(row: tuple) -> RosterItem:
    contact, name, subscription, ask, pending_in, approved, groups, listed, request = row
    # a contact's JID is in many rosters held in memory: one string for all
    return RosterItem(sys.intern(contact), name, sys.intern(subscription), bool(ask),
                      bool(pending_in), bool(approved),
                      tuple(json.loads(groups)) if groups != "[]" else (),
                      bool(listed), request)


@implementer(IRosterStore, IOfflineStore, IVCardStore, ILastActivityStore)
class SqliteImStore(SqliteBlockingStore, SqliteHeldStanzaStore):
    """L{IRosterStore}, L{IOfflineStore}, L{IVCardStore},
    L{ILastActivityStore}, L{IBlockingStore} and L{IHeldStanzaStore} in one
    SQLite file."""

    def __init__(self, path: str | Path) -> None:
        """
        Open (creating if needed) and migrate the database at C{path}.

        @raise StoreError: the database is newer than this code.
        """
        self._db = open_database(path)

    # IRosterStore
    def roster(self, localpart: str, domain: str) -> tuple[int, list[RosterItem]]:
        db = self._db
        row = db.execute("SELECT version FROM roster_versions WHERE localpart = ?"
                         " AND domain = ?", (localpart, domain)).fetchone()
        items = db.execute(f"SELECT {_ITEM_COLUMNS} FROM roster_items"
                           " WHERE localpart = ? AND domain = ? ORDER BY contact",
                           (localpart, domain))
        return (row[0] if row else 0), [_item(r) for r in items]

    def put_item(self, localpart: str, domain: str, item: RosterItem) -> int:
        with _transaction(self._db) as db:
            db.execute(
                f"INSERT OR REPLACE INTO roster_items (localpart, domain, {_ITEM_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (localpart, domain, item.contact, item.name, item.subscription,
                 int(item.ask), int(item.pending_in), int(item.approved),
                 json.dumps(list(item.groups)), int(item.listed), item.request))
            return self._bump(db, localpart, domain)

    def subscribers(self, contact: str) -> list[tuple[str, str]]:
        rows = self._db.execute(
            "SELECT localpart, domain FROM roster_items WHERE contact = ?"
            " AND subscription IN ('to', 'both') ORDER BY domain, localpart", (contact,))
        return [(localpart, domain) for localpart, domain in rows]

    def remove_item(self, localpart: str, domain: str, contact: str) -> int:
        with _transaction(self._db) as db:
            db.execute("DELETE FROM roster_items WHERE localpart = ? AND domain = ?"
                       " AND contact = ?", (localpart, domain, contact))
            return self._bump(db, localpart, domain)

    def cancel_subscriptions_of(self, contact: str) -> list[tuple[str, str]]:
        with _transaction(self._db) as db:
            owners = [(localpart, domain) for localpart, domain in db.execute(
                "SELECT localpart, domain FROM roster_items WHERE contact = ? AND"
                " (subscription != 'none' OR ask OR pending_in OR approved)"
                " ORDER BY domain, localpart", (contact,))]
            db.execute("UPDATE roster_items SET subscription = 'none', ask = 0,"
                       " pending_in = 0, approved = 0, request = NULL WHERE contact = ?",
                       (contact,))
            for localpart, domain in owners:
                self._bump(db, localpart, domain)
        return owners

    @staticmethod
    def _bump(db, localpart: str, domain: str) -> int:
        db.execute("INSERT INTO roster_versions (localpart, domain, version)"
                   " VALUES (?, ?, 1) ON CONFLICT (localpart, domain)"
                   " DO UPDATE SET version = version + 1", (localpart, domain))
        return db.execute("SELECT version FROM roster_versions WHERE localpart = ?"
                          " AND domain = ?", (localpart, domain)).fetchone()[0]

    # IOfflineStore
    def store_message(self, localpart: str, domain: str, stamp: float, stanza: bytes,
                      quota: int) -> bool:
        return self.store_messages([(localpart, domain, stamp, stanza)], quota)[0]

    def store_messages(self, items: Sequence[tuple[str, str, float, bytes]],
                       quota: int) -> list[bool]:
        results: list[bool] = []
        rows: list[tuple[str, str, float, bytes]] = []
        counts: dict[tuple[str, str], int] = {}
        with _transaction(self._db) as db:
            for localpart, domain, stamp, stanza in items:
                if quota:
                    key = (localpart, domain)
                    count = counts.get(key)
                    if count is None:
                        (count,) = db.execute(
                            "SELECT COUNT(*) FROM offline_messages WHERE localpart = ?"
                            " AND domain = ?", key).fetchone()
                    if count >= quota:
                        counts[key] = count
                        results.append(False)
                        continue
                    counts[key] = count + 1
                rows.append((localpart, domain, stamp, stanza))
                results.append(True)
            db.executemany("INSERT INTO offline_messages (localpart, domain, stamp, stanza)"
                           " VALUES (?, ?, ?, ?)", rows)
        return results

    def messages(self, localpart: str, domain: str, limit: int) -> list[OfflineMessage]:
        rows = self._db.execute(
            "SELECT id, stamp, stanza FROM offline_messages WHERE localpart = ?"
            " AND domain = ? ORDER BY id LIMIT ?", (localpart, domain, limit))
        return [OfflineMessage(id_, stamp, bytes(stanza)) for id_, stamp, stanza in rows]

    def remove_messages(self, localpart: str, domain: str, ids: Sequence[int]) -> None:
        with _transaction(self._db) as db:
            db.executemany("DELETE FROM offline_messages WHERE id = ? AND localpart = ?"
                           " AND domain = ?", [(i, localpart, domain) for i in ids])

    def remove_messages_through(self, localpart: str, domain: str, last: int) -> None:
        self._db.execute("DELETE FROM offline_messages WHERE localpart = ? AND domain = ?"
                         " AND id <= ?", (localpart, domain, last))

    def count_messages(self, localpart: str, domain: str) -> int:
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM offline_messages WHERE localpart = ? AND domain = ?",
            (localpart, domain)).fetchone()
        return count

    def count_all_messages(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM offline_messages").fetchone()
        return count

    # IVCardStore
    def get_vcard(self, localpart: str, domain: str) -> bytes | None:
        row = self._db.execute("SELECT vcard FROM vcards WHERE localpart = ? AND domain = ?",
                               (localpart, domain)).fetchone()
        return None if row is None else bytes(row[0])

    def set_vcard(self, localpart: str, domain: str, vcard: bytes, stamp: float) -> None:
        self._db.execute("INSERT OR REPLACE INTO vcards (localpart, domain, vcard, updated)"
                         " VALUES (?, ?, ?, ?)", (localpart, domain, vcard, stamp))

    # ILastActivityStore
    def set_last_logout(self, localpart: str, domain: str, stamp: float,
                        status: str | None) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO last_activity (localpart, domain, stamp, status)"
            " VALUES (?, ?, ?, ?)", (localpart, domain, stamp, status))

    def last_logout(self, localpart: str, domain: str) -> tuple[float, str | None] | None:
        row = self._db.execute(
            "SELECT stamp, status FROM last_activity WHERE localpart = ? AND domain = ?",
            (localpart, domain)).fetchone()
        return None if row is None else (row[0], row[1])

    def close(self) -> None:
        self._db.close()
