# -*- test-case-name: tests.test_upload -*-
"""
Uploaded files in the data directory: C{files/<slot id>} once complete,
C{partial/<slot id>.<random>} while a PUT is being received.  Names come
only from slot ids the server generated (L{SLOT_ID}); nothing a client
sends is ever part of a path.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any, Iterable

from twisted.logger import Logger

__all__ = ["SLOT_ID", "FileStore", "UploadBody", "new_slot_id"]

#: what a slot id looks like (L{new_slot_id})
SLOT_ID = re.compile(r"[A-Za-z0-9_-]{32}")

log = Logger()


def new_slot_id() -> str:
    """A fresh, unguessable slot id (192 random bits, URL-safe)."""
    return secrets.token_urlsafe(24)


class UploadBody:
    """
    A PUT body written straight to a partial file, never held in memory,
    keeping at most C{limit} bytes; the file is removed when the body is
    closed unless it was committed first.
    """

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.size = 0
        #: more than C{limit} bytes arrived (they were not kept)
        self.too_large = False
        self.committed = False
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        self._file: Any = os.fdopen(fd, "w+b")

    def write(self, data: bytes) -> None:
        if self.too_large:
            return
        if self.size + len(data) > self.limit:
            self.too_large = True
            return
        self._file.write(data)
        self.size += len(data)

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def finish(self) -> None:
        """Flush the file to disk (before it is committed)."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        if not self.committed:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass


class FileStore:
    """The upload directory: complete files and partial uploads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = root / "files"
        self.partial = root / "partial"
        for directory in (root, self.files, self.partial):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path(self, slot_id: str) -> Path:
        """Where the file of C{slot_id} is kept.

        @raise ValueError: C{slot_id} is not a slot id."""
        if SLOT_ID.fullmatch(slot_id) is None:
            raise ValueError(f"not a slot id: {slot_id!r}")
        return self.files / slot_id

    def exists(self, slot_id: str) -> bool:
        return self.path(slot_id).exists()

    def receive(self, slot_id: str, limit: int) -> UploadBody:
        """A partial file for a PUT to C{slot_id} of at most C{limit} bytes."""
        self.path(slot_id)  # validates
        return UploadBody(self.partial / f"{slot_id}.{secrets.token_hex(8)}", limit)

    def commit(self, body: UploadBody, slot_id: str) -> None:
        """
        Make a complete body the file of C{slot_id}.

        @raise FileExistsError: that slot already has its file (a
            concurrent PUT won); the body is left to be closed (removed).
        """
        body.finish()
        os.link(body.path, self.path(slot_id))
        body.committed = True
        body.path.unlink()

    def remove(self, slot_ids: Iterable[str]) -> int:
        """Delete these slots' files; return how many existed."""
        removed = 0
        for slot_id in slot_ids:
            try:
                self.path(slot_id).unlink()
                removed += 1
            except (FileNotFoundError, ValueError):
                pass
        return removed

    def sweep(self, known: set[str], partial_before: float) -> int:
        """
        Delete files no slot knows (their account was deleted, their row
        purged) and partial files last written before C{partial_before}
        (wall-clock seconds); return how many.
        """
        removed = 0
        for entry in self.files.iterdir():
            if entry.name not in known:
                entry.unlink(missing_ok=True)
                removed += 1
        for entry in self.partial.iterdir():
            try:
                if entry.stat().st_mtime < partial_before:
                    entry.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed
