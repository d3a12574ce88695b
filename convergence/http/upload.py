# -*- test-case-name: tests.test_http_upload -*-
"""
HTTP File Upload (XEP-0363) on the HTTP listener, at C{/upload/<slot id>/<name>}:

  - C{PUT} with the signed URL of a slot: the head is checked before any
    body byte is read (L{UploadBodyRoute}: signature, expiry, the exact
    Content-Length, the Content-Type); the body streams into a partial
    file in the data directory, never into memory, and up to
    C{http_upload.max_file_size} whatever C{http.max_body_size} says;
    C{201 Created} once the file is in place;
  - C{GET}/C{HEAD}: the file with its Content-Type and Content-Length,
    C{Content-Disposition} (attachment unless an image, audio, video or
    plain text), C{X-Content-Type-Options: nosniff} and a
    C{Content-Security-Policy} that lets nothing run;
  - C{OPTIONS}: the CORS preflight web clients need.
"""

from __future__ import annotations

from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, unquote

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from convergence.http.channel import BodyRefused
from convergence.upload.files import SLOT_ID, UploadBody
from convergence.upload.names import disposition
from convergence.upload.service import PREFIX, PutRefused, UploadService

__all__ = ["SEGMENT", "UploadBodyRoute", "UploadResource", "install"]

#: the first path segment of upload URLs
SEGMENT = PREFIX.strip("/")

_CORS = {
    b"Access-Control-Allow-Origin": b"*",
    b"Access-Control-Allow-Methods": b"GET, HEAD, PUT, OPTIONS",
    b"Access-Control-Allow-Headers": b"Content-Type",
    b"Access-Control-Max-Age": b"86400",
}

#: nothing a download contains may run or be framed
_SAFETY = {
    b"X-Content-Type-Options": b"nosniff",
    b"Content-Security-Policy": b"default-src 'none'; frame-ancestors 'none'; sandbox",
    b"X-Frame-Options": b"DENY",
    b"Referrer-Policy": b"no-referrer",
}

log = Logger()


def _split(path: bytes) -> tuple[str, str] | None:
    """C{(slot id, decoded name)} of C{/upload/<id>/<name>}, or None."""
    parts = path.split(b"?", 1)[0].split(b"/")
    if len(parts) != 4 or parts[0] != b"" or parts[1] != SEGMENT.encode():
        return None
    try:
        slot_id = parts[2].decode("ascii")
        name = unquote(parts[3].decode("ascii"), errors="strict")
    except UnicodeError:
        return None
    if SLOT_ID.fullmatch(slot_id) is None or not name:
        return None
    return slot_id, name


@implementer(IPushProducer)
class FileProducer:
    """Writes a file to a request as fast as the connection takes it."""

    CHUNK = 65536

    def __init__(self, request: Any, f: Any) -> None:
        self.request: Any = request
        self.file = f
        self.paused = False

    def start(self) -> None:
        self.request.registerProducer(self, True)
        self.resumeProducing()

    def resumeProducing(self) -> None:
        self.paused = False
        while not self.paused and self.request is not None:
            data = self.file.read(self.CHUNK)
            if not data:
                request, self.request = self.request, None
                self.file.close()
                request.unregisterProducer()
                request.finish()
                return
            self.request.write(data)

    def pauseProducing(self) -> None:
        self.paused = True

    def stopProducing(self) -> None:
        self.request = None
        self.file.close()


class UploadBodyRoute:
    """Checks an upload PUT's head and gives it a partial file as body."""

    def __init__(self, service: UploadService) -> None:
        self.service = service

    def open_body(self, method: bytes, path: bytes, headers: Any,
                  length: int | None) -> UploadBody | None:
        if method != b"PUT":
            return None
        where = _split(path)
        if where is None:
            raise BodyRefused(404, "No such upload slot.")
        slot_id, name = where
        query = path.split(b"?", 1)[1] if b"?" in path else b""
        try:
            params = dict(parse_qsl(query.decode("ascii"), strict_parsing=False))
        except UnicodeError:
            params = {}
        content_type = headers.getRawHeaders(b"content-type", [None])[0]
        if content_type is not None:
            content_type = content_type.decode("latin-1")
        try:
            size = self.service.check_put(slot_id, name, params, length, content_type)
        except PutRefused as e:
            log.info("upload PUT to {slot} refused: {status} {message}",
                     slot=slot_id, status=e.status, message=e.message)
            raise BodyRefused(e.status, e.message) from None
        return self.service.files.receive(slot_id, size)


class UploadResource(Resource):
    """C{/upload/<slot id>/<name>}: PUT, GET, HEAD, OPTIONS."""

    isLeaf = True

    def __init__(self, service: UploadService) -> None:
        super().__init__()
        self.service = service

    # helpers
    def _where(self, request: Any) -> tuple[str, str] | None:
        # request.path as sent: twisted's postpath segments are already decoded
        return _split(request.path)

    @staticmethod
    def _answer(request: Any, status: int, message: str) -> None:
        if request._disconnected or request.finished:
            return
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        for name, value in _CORS.items():
            request.setHeader(name, value)
        request.write((message + "\n").encode("utf-8"))
        request.finish()

    def _failed(self, failure: Failure, request: Any) -> None:
        log.failure("upload request {uri!r} failed", failure, uri=request.uri)
        self._answer(request, 500, "The request failed.")

    # PUT
    def render_PUT(self, request: Any) -> Any:
        where = self._where(request)
        body = request.content
        if where is None or not isinstance(body, UploadBody):
            self._answer(request, 404, "No such upload slot.")
            return NOT_DONE_YET
        slot_id, name = where
        service = self.service
        if body.too_large or body.size != body.limit:
            self._answer(request, 400, f"The body must be {body.limit} bytes.")
            return NOT_DONE_YET

        def found(upload: Any) -> Any:
            if upload is None or upload.filename != name:
                return self._answer(request, 404, "No such upload slot.")
            if upload.uploaded is not None:
                return self._answer(request, 409, "This slot's file was already uploaded.")
            try:
                service.files.commit(body, slot_id)
            except FileExistsError:
                return self._answer(request, 409, "This slot's file was already uploaded.")
            d = service.run_in_db(service.store.complete_upload, slot_id,
                                  service.clock.seconds())
            return d.addCallback(completed)

        def completed(ok: bool) -> None:
            if not ok:  # the slot was purged meanwhile
                service.files.remove([slot_id])
                return self._answer(request, 404, "No such upload slot.")
            log.info("upload {slot}: {size} bytes stored", slot=slot_id, size=body.limit)
            request.setHeader(b"Location", service.get_url_of(slot_id, name).encode())
            self._answer(request, 201, "Created.")

        d = service.run_in_db(service.store.get_upload, slot_id)
        d.addCallback(found).addErrback(self._failed, request)
        return NOT_DONE_YET

    # GET, HEAD
    def render_GET(self, request: Any) -> Any:
        where = self._where(request)
        if where is None:
            self._answer(request, 404, "Not found.")
            return NOT_DONE_YET
        slot_id, name = where
        service = self.service

        def found(upload: Any) -> None:
            if (upload is None or upload.uploaded is None or upload.filename != name
                    or service.expired(upload)):
                return self._answer(request, 404, "Not found.")
            try:
                f = open(service.files.path(slot_id), "rb")
            except FileNotFoundError:
                return self._answer(request, 404, "Not found.")
            if request._disconnected:
                f.close()
                return None
            request.setResponseCode(200)
            request.setHeader(b"Content-Type", upload.content_type.encode("latin-1"))
            request.setHeader(b"Content-Length", str(upload.size).encode())
            request.setHeader(b"Content-Disposition",
                              disposition(upload.filename, upload.content_type).encode())
            request.setHeader(b"Last-Modified", formatdate(upload.uploaded, usegmt=True)
                              .encode())
            request.setHeader(b"Cache-Control", b"private, max-age=86400")
            for header, value in (*_SAFETY.items(), *_CORS.items()):
                request.setHeader(header, value)
            if request.method == b"HEAD":
                f.close()
                request.finish()
                return None
            FileProducer(request, f).start()
            return None

        d = service.run_in_db(service.store.get_upload, slot_id)
        d.addCallback(found).addErrback(self._failed, request)
        return NOT_DONE_YET

    render_HEAD = render_GET

    def render_OPTIONS(self, request: Any) -> bytes:
        request.setResponseCode(204)
        for name, value in _CORS.items():
            request.setHeader(name, value)
        return b""


def install(site: Any, service: UploadService) -> None:
    """Serve uploads at C{/upload/} of C{site} (an L{HttpSite})."""
    site.root.mount_resource(SEGMENT, UploadResource(service))
    site.put_body_route(SEGMENT, UploadBodyRoute(service))
