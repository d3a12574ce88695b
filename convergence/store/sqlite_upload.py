# -*- test-case-name: tests.test_upload_store -*-
"""
HTTP upload slots and files (XEP-0363) in the server's SQLite database
(the C{http_uploads} table of migration 7 in
L{convergence.store.sqlite.MIGRATIONS}).  Only the metadata lives here;
the files are in the data directory (L{convergence.upload.files}).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from zope.interface import implementer

from convergence.store.interfaces import IUploadStore, Upload
from convergence.store.sqlite import _transaction, open_database

__all__ = ["SqliteUploadStore"]

_COLUMNS = ("id, localpart, domain, filename, size, content_type, created,"
            " slot_expires, uploaded")

#: rows that count towards a user's quota: files, and slots still usable
_COUNTED = "(uploaded IS NOT NULL OR slot_expires > ?)"


@implementer(IUploadStore)
class SqliteUploadStore:
    """L{IUploadStore} in a SQLite file (the server's database is fine)."""

    def __init__(self, path: str | Path) -> None:
        """
        Open (creating if needed) and migrate the database at C{path}.

        @raise StoreError: the database is newer than this code.
        """
        self._db = open_database(path)

    def add_slot(self, upload: Upload, quota: int, now: float) -> bool:
        with _transaction(self._db) as db:
            if quota:
                (used,) = db.execute(
                    "SELECT COALESCE(SUM(size), 0) FROM http_uploads WHERE localpart = ?"
                    f" AND domain = ? AND {_COUNTED}",
                    (upload.localpart, upload.domain, now)).fetchone()
                if used + upload.size > quota:
                    return False
            db.execute(f"INSERT INTO http_uploads ({_COLUMNS})"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (upload.id, upload.localpart, upload.domain, upload.filename,
                        upload.size, upload.content_type, upload.created,
                        upload.slot_expires, upload.uploaded))
        return True

    def usage(self, localpart: str, domain: str, now: float) -> tuple[int, float | None]:
        used, oldest = self._db.execute(
            "SELECT COALESCE(SUM(size), 0), MIN(uploaded) FROM http_uploads"
            f" WHERE localpart = ? AND domain = ? AND {_COUNTED}",
            (localpart, domain, now)).fetchone()
        return used, oldest

    def get_upload(self, upload_id: str) -> Upload | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM http_uploads WHERE id = ?",
                               (upload_id,)).fetchone()
        return None if row is None else Upload(*row)

    def complete_upload(self, upload_id: str, stamp: float) -> bool:
        cursor = self._db.execute(
            "UPDATE http_uploads SET uploaded = ? WHERE id = ? AND uploaded IS NULL",
            (stamp, upload_id))
        return cursor.rowcount > 0

    def expired_uploads(self, uploaded_before: float | None, now: float) -> list[str]:
        rows = self._db.execute(
            "SELECT id FROM http_uploads WHERE (uploaded IS NULL AND slot_expires <= ?)"
            " OR (uploaded IS NOT NULL AND ? IS NOT NULL AND uploaded <= ?)",
            (now, uploaded_before, uploaded_before))
        return [upload_id for (upload_id,) in rows]

    def upload_ids(self) -> set[str]:
        return {upload_id for (upload_id,) in self._db.execute("SELECT id FROM http_uploads")}

    def remove_uploads(self, ids: Sequence[str]) -> None:
        with _transaction(self._db) as db:
            db.executemany("DELETE FROM http_uploads WHERE id = ?", [(i,) for i in ids])

    def close(self) -> None:
        self._db.close()
