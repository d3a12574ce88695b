# -*- test-case-name: tests.test_store_mam -*-
"""
Message archives (XEP-0313) and archiving preferences (XEP-0441) in the
server's SQLite database (the tables of migration 13 in
L{convergence.store.sqlite.MIGRATIONS}).

An archive is ordered by C{(stamp, seq)}: C{seq} is the row id, and
L{SqliteArchiveStore.append} never lets a stamp go below the archive's
latest, so that order is the order of arrival even when the clock steps
back, and the C{(owner, stamp)} index serves every page.  Every call is
one statement or one transaction, made on the database thread.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from zope.interface import implementer

from convergence.store.errors import UnknownArchiveId
from convergence.store.interfaces import (
    ArchivedMessage,
    ArchivePage,
    ArchivePrefs,
    ArchiveQuery,
    IArchiveStore,
)
from convergence.store.sqlite import _transaction, open_database

__all__ = ["SqliteArchiveStore"]

_COLUMNS = "id, stamp, with_jid, with_resource, stanza"
#: more ids than SQLite binds in one statement are checked in chunks
_CHUNK = 500


def _message(row: tuple) -> ArchivedMessage:
    id_, stamp, with_jid, with_resource, stanza = row
    return ArchivedMessage(id_, stamp, with_jid, with_resource, bytes(stanza))


@implementer(IArchiveStore)
class SqliteArchiveStore:
    """L{IArchiveStore} in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        """
        Open (creating if needed) and migrate the database at C{path}.

        @raise StoreError: the database is newer than this code.
        """
        self._db = open_database(path)

    # Archive
    def append(self, localpart: str, domain: str, message: ArchivedMessage) -> bool:
        return self.append_many([(localpart, domain, message)]) == 1

    def append_many(self, messages: Sequence[tuple[str, str, ArchivedMessage]]) -> int:
        added = 0
        with _transaction(self._db) as db:
            for localpart, domain, message in messages:
                added += self._append(db, localpart, domain, message)
        return added

    @staticmethod
    def _append(db: Any, localpart: str, domain: str, message: ArchivedMessage) -> bool:
        (latest,) = db.execute(
            "SELECT MAX(stamp) FROM mam_messages WHERE localpart = ? AND domain = ?",
            (localpart, domain)).fetchone()
        stamp = message.stamp if latest is None else max(latest, message.stamp)
        cursor = db.execute(
            "INSERT OR IGNORE INTO mam_messages (localpart, domain, id, stamp,"
            " with_jid, with_resource, stanza) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (localpart, domain, message.id, stamp, message.with_jid,
             message.with_resource, message.stanza))
        return cursor.rowcount > 0

    def _position(self, localpart: str, domain: str, id_: str,
                  not_before: float | None) -> tuple[float, int]:
        row = self._db.execute(
            "SELECT stamp, seq FROM mam_messages WHERE localpart = ? AND domain = ?"
            " AND id = ?", (localpart, domain, id_)).fetchone()
        if row is None or (not_before is not None and row[0] < not_before):
            raise UnknownArchiveId(id_)
        return row[0], row[1]

    def _check_ids(self, localpart: str, domain: str, ids: tuple[str, ...],
                   not_before: float | None) -> None:
        wanted = set(ids)
        found: set[str] = set()
        listed = sorted(wanted)
        for i in range(0, len(listed), _CHUNK):
            chunk = listed[i:i + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            sql = (f"SELECT id FROM mam_messages WHERE localpart = ? AND domain = ?"
                   f" AND id IN ({marks})")
            args: list[Any] = [localpart, domain, *chunk]
            if not_before is not None:
                sql += " AND stamp >= ?"
                args.append(not_before)
            found.update(r[0] for r in self._db.execute(sql, args))
        missing = wanted - found
        if missing:
            raise UnknownArchiveId(min(missing))

    def find(self, localpart: str, domain: str, query: ArchiveQuery) -> ArchivePage:
        q = query
        where = ["localpart = ?", "domain = ?"]
        args: list[Any] = [localpart, domain]
        if q.with_jid is not None:
            where.append("with_jid = ?")
            args.append(q.with_jid)
            if q.with_resource is not None:
                where.append("with_resource = ?")
                args.append(q.with_resource)
        for bound, op in ((q.start, ">="), (q.not_before, ">="), (q.end, "<=")):
            if bound is not None:
                where.append(f"stamp {op} ?")
                args.append(bound)
        for id_, op in ((q.after_id, ">"), (q.before_id, "<")):
            if id_ is not None:
                where.append(f"(stamp, seq) {op} (?, ?)")
                args.extend(self._position(localpart, domain, id_, q.not_before))
        if q.ids is not None:
            self._check_ids(localpart, domain, q.ids, q.not_before)
            chunk = sorted(set(q.ids))
            where.append(f"id IN ({', '.join('?' * len(chunk))})")
            args.extend(chunk)
        set_where = " AND ".join(where)
        db = self._db
        (count,) = db.execute(f"SELECT COUNT(*) FROM mam_messages WHERE {set_where}",
                              args).fetchone()
        page_where, page_args = list(where), list(args)
        for id_, op in ((q.page_after, ">"), (q.page_before or None, "<")):
            if id_ is not None:
                page_where.append(f"(stamp, seq) {op} (?, ?)")
                page_args.extend(self._position(localpart, domain, id_, q.not_before))
        backward = q.page_before is not None
        order = "DESC" if backward else "ASC"
        sql = (f"SELECT {_COLUMNS}, seq FROM mam_messages WHERE {' AND '.join(page_where)}"
               f" ORDER BY stamp {order}, seq {order} LIMIT ?")
        page_args.append(q.limit + 1)
        if q.index is not None and not backward and q.page_after is None:
            sql += " OFFSET ?"
            page_args.append(q.index)
        rows = db.execute(sql, page_args).fetchall()
        complete = len(rows) <= q.limit
        rows = rows[:q.limit]
        if backward:
            rows.reverse()
        first_index = None
        if rows:
            stamp, seq = rows[0][1], rows[0][5]
            (first_index,) = db.execute(
                f"SELECT COUNT(*) FROM mam_messages WHERE {set_where}"
                " AND (stamp, seq) < (?, ?)", [*args, stamp, seq]).fetchone()
        return ArchivePage([_message(r[:5]) for r in rows], complete, count, first_index)

    def bounds(self, localpart: str, domain: str, not_before: float | None = None
               ) -> tuple[ArchivedMessage, ArchivedMessage] | None:
        ends = []
        where, args = "localpart = ? AND domain = ?", [localpart, domain]
        if not_before is not None:
            where += " AND stamp >= ?"
            args.append(not_before)
        for order in ("ASC", "DESC"):
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM mam_messages WHERE {where}"
                f" ORDER BY stamp {order}, seq {order} LIMIT 1", args).fetchone()
            if row is None:
                return None
            ends.append(_message(row))
        return ends[0], ends[1]

    def expire(self, before: float, limit: int, domains: Sequence[str] | None = None) -> int:
        where, args = "stamp < ?", [before]
        if domains is not None:
            if not domains:
                return 0
            where += f" AND domain IN ({', '.join('?' * len(domains))})"
            args.extend(domains)
        cursor = self._db.execute(
            "DELETE FROM mam_messages WHERE seq IN (SELECT seq FROM mam_messages"
            f" WHERE {where} LIMIT ?)", (*args, limit))
        return cursor.rowcount

    def delete_archive(self, localpart: str, domain: str) -> int:
        cursor = self._db.execute(
            "DELETE FROM mam_messages WHERE localpart = ? AND domain = ?", (localpart, domain))
        return cursor.rowcount

    # Preferences
    def prefs(self, localpart: str, domain: str) -> ArchivePrefs | None:
        row = self._db.execute(
            "SELECT default_mode, always, never FROM mam_prefs WHERE localpart = ?"
            " AND domain = ?", (localpart, domain)).fetchone()
        if row is None:
            return None
        default, always, never = row
        return ArchivePrefs(default, tuple(json.loads(always)), tuple(json.loads(never)))

    def set_prefs(self, localpart: str, domain: str, prefs: ArchivePrefs) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO mam_prefs (localpart, domain, default_mode, always,"
            " never) VALUES (?, ?, ?, ?, ?)",
            (localpart, domain, prefs.default, json.dumps(list(prefs.always)),
             json.dumps(list(prefs.never))))

    def close(self) -> None:
        self._db.close()

