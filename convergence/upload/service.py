# -*- test-case-name: tests.test_upload -*-
"""
The upload service: hands out slots (checked against the limits and the
user's quota), checks PUTs against their signed URL, and deletes expired
files.  Protocol-neutral: the XMPP feature asks for slots, the HTTP
resource for PUT checks, downloads and commits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlencode

from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger

from convergence.config import HttpUploadConfig
from convergence.store.interfaces import Upload
from convergence.upload.files import SLOT_ID, FileStore, new_slot_id
from convergence.upload.names import (
    BadName,
    check_content_type,
    check_filename,
    url_segment,
)
from convergence.upload.signing import Signer

__all__ = ["PREFIX", "PutRefused", "Slot", "SlotRefused", "UploadService"]

#: the path on the HTTP listener under which uploads live
PREFIX = "/upload"

#: seconds an unused slot's row outlives its PUT URL (a PUT that started
#: in time may still be finishing)
SLOT_GRACE = 3600.0

#: the content type of a file uploaded without one
OCTET_STREAM = "application/octet-stream"

log = Logger()


@dataclass(frozen=True)
class Slot:
    """A granted slot: where to PUT the file and where it will be."""

    put_url: str
    get_url: str
    upload: Upload


class SlotRefused(Exception):
    """
    A slot request that is refused.

    @ivar reason: C{"filename"}, C{"size"}, C{"content-type"} (the request
        is malformed), C{"too-large"} (above C{max_file_size}) or
        C{"quota"} (the user's quota is used up).
    @ivar retry: for C{"quota"}, when the oldest file expires (or None).
    """

    def __init__(self, reason: str, text: str, max_size: int | None = None,
                 retry: float | None = None) -> None:
        super().__init__(reason, text)
        self.reason = reason
        self.text = text
        self.max_size = max_size
        self.retry = retry


class PutRefused(Exception):
    """A PUT that does not fit its slot: the HTTP status and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message


def _parse_size(value: Any) -> int | None:
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    return int(value) if len(value) <= 18 else None


class UploadService:
    """Slots, PUT checks and expiry for one server."""

    def __init__(self, config: HttpUploadConfig, store: Any, files: FileStore,
                 signer: Signer, clock: Any, run_in_db: Callable[..., Deferred],
                 base_url: str, wall_clock: Callable[[], float] = time.time) -> None:
        """
        @param store: the slots and files (an L{IUploadStore}).
        @param base_url: C{http://host:port} of the HTTP listener, used when
            C{config.public_url} is empty.
        """
        self.config = config
        self.store = store
        self.files = files
        self.signer = signer
        self.clock = clock
        self.run_in_db = run_in_db
        self.base_url = base_url
        self.wall_clock = wall_clock

    # URLs
    @property
    def public_base(self) -> str:
        """Where clients reach the HTTP listener's root."""
        return (self.config.public_url or self.base_url).rstrip("/")

    @staticmethod
    def path_of(upload: Upload) -> str:
        """The listener-side path of an upload: C{/upload/<id>/<name>}."""
        return f"{PREFIX}/{upload.id}/{url_segment(upload.filename)}"

    def _signed_type(self, upload: Upload) -> str:
        return "" if upload.content_type == OCTET_STREAM else upload.content_type

    def put_url(self, upload: Upload) -> str:
        """The signed URL a client PUTs the file to."""
        expires = int(upload.slot_expires)
        content_type = self._signed_type(upload)
        query: dict[str, Any] = {"size": upload.size, "expires": expires}
        if content_type:
            query["type"] = content_type
        signed = f"{PREFIX}/{upload.id}/{upload.filename}"
        query["sig"] = self.signer.sign(signed, upload.size, content_type, expires)
        return self.public_base + self.path_of(upload) + "?" + urlencode(query)

    def get_url(self, upload: Upload) -> str:
        """Where the file will be downloaded."""
        return self.public_base + self.path_of(upload)

    def get_url_of(self, slot_id: str, filename: str) -> str:
        return f"{self.public_base}{PREFIX}/{slot_id}/{url_segment(filename)}"

    # Slots
    def request_slot(self, localpart: str, domain: str, filename: Any, size: Any,
                     content_type: Any) -> Deferred:
        """
        A L{Slot} for the user's file, as a Deferred; it fails with
        L{SlotRefused} when the request is malformed, too large or over quota.
        """
        try:
            filename = check_filename(filename)
        except BadName as e:
            return fail(SlotRefused("filename", str(e)))
        parsed = _parse_size(size)
        if parsed is None:
            return fail(SlotRefused("size", "The size must be a non-negative integer"))
        limit = self.config.max_file_size
        if parsed > limit:
            return fail(SlotRefused(
                "too-large", f"File too large. The maximum file size is {limit} bytes",
                max_size=limit))
        try:
            content_type = check_content_type(content_type) or OCTET_STREAM
        except BadName as e:
            return fail(SlotRefused("content-type", str(e)))
        now = self.clock.seconds()
        upload = Upload(new_slot_id(), localpart, domain, filename, parsed, content_type,
                        now, now + self.config.slot_lifetime)
        quota = self.config.quota_per_user

        def stored(ok: bool) -> Any:
            if ok:
                log.info("upload slot {id} for {user}@{domain}: {size} bytes",
                         id=upload.id, user=localpart, domain=domain, size=parsed)
                return Slot(self.put_url(upload), self.get_url(upload), upload)
            d = self.run_in_db(self.store.usage, localpart, domain, now)
            return d.addCallback(over_quota)

        def over_quota(usage: tuple[int, float | None]) -> None:
            _, oldest = usage
            retry = None
            if oldest is not None and self.config.expire_after:
                retry = oldest + self.config.expire_after
            raise SlotRefused("quota", f"Quota reached: {quota} bytes per user",
                              retry=retry)

        return self.run_in_db(self.store.add_slot, upload, quota, now).addCallback(stored)

    # PUT
    def check_put(self, slot_id: str, filename: str, query: Mapping[str, str],
                  length: int | None, content_type: str | None) -> int:
        """
        Check a PUT's head against its signed URL before the body is read;
        return the number of body bytes to accept.

        The signature covers the decoded path C{/upload/<id>/<name>}, so
        however a client re-encodes the URL, the same path verifies.

        @param filename: the URL's last segment, percent-decoded.
        @raise PutRefused: the URL is not signed by this server, has
            expired, or the Content-Length or Content-Type do not match.
        """
        if SLOT_ID.fullmatch(slot_id) is None:
            raise PutRefused(404, "No such upload slot.")
        size = _parse_size(query.get("size"))
        expires = _parse_size(query.get("expires"))
        signed_type = query.get("type", "")
        signature = query.get("sig", "")
        if (size is None or expires is None
                or not self.signer.verify(signature, f"{PREFIX}/{slot_id}/{filename}",
                                          size, signed_type, expires)):
            raise PutRefused(403, "The upload URL is not valid.")
        if self.clock.seconds() > expires:
            raise PutRefused(403, "The upload URL has expired; request a new slot.")
        if length is None:
            raise PutRefused(411, f"A Content-Length of {size} is required.")
        if length != size:
            raise PutRefused(413 if length > size else 400,
                             f"The Content-Length must be {size}, as requested.")
        if signed_type:
            try:
                given = check_content_type(content_type)
            except BadName:
                given = None
            if given != signed_type:
                raise PutRefused(415, f"The Content-Type must be {signed_type},"
                                      " as requested.")
        if self.files.exists(slot_id):
            raise PutRefused(409, "This slot's file was already uploaded.")
        return size

    # Expiry
    def purge(self) -> Deferred:
        """Delete expired files, stale slots and orphaned files (Deferred: how many)."""
        now = self.clock.seconds()
        expire = self.config.expire_after
        return self.run_in_db(self._purge, now - expire if expire else None, now)

    def _purge(self, uploaded_before: float | None, now: float) -> int:
        ids = self.store.expired_uploads(uploaded_before, now - SLOT_GRACE)
        self.files.remove(ids)
        self.store.remove_uploads(ids)
        swept = self.files.sweep(self.store.upload_ids(),
                                 self.wall_clock() - self.config.slot_lifetime - SLOT_GRACE)
        if ids or swept:
            log.info("HTTP upload: {n} expired files and slots, {swept} orphaned files"
                     " removed", n=len(ids), swept=swept)
        return len(ids) + swept

    def expired(self, upload: Upload) -> bool:
        """Whether an uploaded file is past C{expire_after} (purge may lag)."""
        expire = self.config.expire_after
        return bool(expire) and upload.uploaded is not None \
            and upload.uploaded + expire <= self.clock.seconds()
