# -*- test-case-name: tests.test_http_limits -*-
"""
The HTTP/1.1 connection every request of the server passes through: a
twisted.web L{HTTPChannel} that enforces the server's limits before any
resource or servlet sees the request.

What each bad input gets (docs/http.md, "Limits"):

 - a request head not complete C{header_timeout} s after its first byte: 408;
 - more than C{max_headers} fields, or C{max_header_size} bytes of head: 431;
 - HTTP/1.1 without C{Host}, two C{Host} fields, an invalid C{Host}: 400
   (twisted's own bare 400);
 - C{Content-Length}, or chunk sizes added up, above C{max_body_size}: 413,
   before the body is read;
 - a chunk size of more than 16 hex digits: 400.

A server resource that takes large bodies (HTTP upload) registers a body
route with the site (L{HttpSite.put_body_route}): for requests under its
path it checks the head before any body byte is read, refusing it
(L{BodyRefused}: its status) or giving the body's own sink and limit,
which then replaces C{max_body_size} for that request.

Each answer closes the connection.
After a C{413} or C{431} the connection is half-closed and whatever the
client still sends is read and dropped for at most L{LINGER} seconds (and
L{LINGER_BYTES} bytes), so the client reads the answer instead of a reset.

The channel hooks into twisted.web's parser (C{_maybeChooseTransferDecoder},
C{_ChunkedTransferDecoder}, C{_respondToBadRequestAndDisconnect}), which are
private: C{tests/test_http_limits.py} pins the behaviour on the twisted
version in use.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from twisted.logger import Logger
from twisted.web.http import (
    HTTPChannel,
    _ChunkedTransferDecoder,
    _MalformedChunkedDataError,
)
from twisted.web.http_headers import Headers

from convergence.starttls import start_tls

#: More hex digits than this in a chunk size is malformed (above 2**64).
MAX_CHUNK_SIZE_DIGITS = 16

#: Seconds a rejected connection is still read (and dropped) after its answer.
LINGER = 2.0

#: Bytes read (and dropped) from a rejected connection before it is cut.
LINGER_BYTES = 1 << 20

#: Reason phrases of the answers the channel writes itself (RFC 9110).
REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}

_HEX = frozenset(b"0123456789abcdefABCDEF")

#: RFC 9110 7.2 Host = uri-host [ ":" port ]; reg-name without ","
#: (a comma means a list: two hosts).
_HOST = re.compile(
    rb"(?:\[[0-9A-Fa-f:.]+\]|\[v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+;=:]+\]"
    rb"|[A-Za-z0-9\-._~!$&'()*+;=%]*)(?::[0-9]*)?")

log = Logger()


class BodyTooLarge(Exception):
    """A request body exceeds the limit; raised before its bytes are read."""


class BodyRefused(Exception):
    """A body route refuses a request from its head: answer C{status}, close."""

    def __init__(self, status: int, message: str) -> None:
        if status not in REASONS:
            raise ValueError(f"no reason phrase for {status}")
        super().__init__(status, message)
        self.status = status
        self.message = message


def host_problem(version: bytes, values: list[bytes] | None) -> str | None:
    """
    Why the C{Host} field lines C{values} of a request of C{version} are
    unacceptable (RFC 9112 3.2), or C{None} if they are fine.
    """
    if not values:
        return "no Host" if version == b"HTTP/1.1" else None
    if len(values) > 1:
        return "more than one Host"
    if _HOST.fullmatch(values[0]) is None:
        return "invalid Host"
    return None


class LimitedChunkedDecoder(_ChunkedTransferDecoder):
    """
    twisted's chunked decoder, refusing absurd chunk sizes and bodies whose
    chunk sizes add up to more than C{limit} bytes as soon as the size line
    arrives (twisted's own waits for the chunk's bytes).
    """

    def __init__(self, dataCallback: Callable[[bytes], None],
                 finishCallback: Callable[[bytes], None], limit: int) -> None:
        super().__init__(dataCallback, finishCallback)
        self.limit = limit
        #: The body size announced by the chunks so far.
        self.total = 0

    def _dataReceived_CHUNK_LENGTH(self) -> bool:
        digits = 0
        for byte in self._buffer[:MAX_CHUNK_SIZE_DIGITS + 1]:
            if byte not in _HEX:
                break
            digits += 1
        if digits > MAX_CHUNK_SIZE_DIGITS:
            raise _MalformedChunkedDataError(
                f"Chunk size longer than {MAX_CHUNK_SIZE_DIGITS} hex digits.")
        if not super()._dataReceived_CHUNK_LENGTH():
            return False
        if self.state == "BODY":
            self.total += self.length
            if self.total > self.limit:
                raise BodyTooLarge(self.total)
        return True


class HttpChannel(HTTPChannel):
    """
    An HTTP/1.1 connection with the server's limits (see the module
    docstring); L{HttpSite.buildProtocol} sets them from C{HttpConfig}.
    """

    #: Largest request body, in bytes.
    max_body_size: int = 1048576
    #: Seconds from a request head's first byte to its end; None: no limit.
    header_timeout: float | None = 10.0
    #: twisted's names: header fields per request, bytes of request head,
    #: bytes of one head line.
    maxHeaders = 100
    totalHeadersSize = 16384
    MAX_LENGTH = 16384

    #: The HttpSite that built this channel (set by twisted's Site).
    site: Any = None
    #: Set when the server shuts down: finish the request in progress, then close.
    draining = False
    #: An C{ssl.SSLContext}: HTTPS, TLS from the first byte (set by an
    #: L{HttpSite} built with one).
    tls_context: Any = None

    _head_timer: Any = None
    _rejected = False
    _discarded = 0

    # -- connection ------------------------------------------------------

    def connectionMade(self) -> None:
        if self.tls_context is not None:
            # the handshake first; requests are read from the TLS layer,
            # and twisted.web sees an ISSLTransport (request.isSecure())
            start_tls(self, self.tls_context)
        super().connectionMade()
        opened = getattr(self.site, "channel_opened", None)
        if opened is not None:
            opened(self)
        self._start_head_timer()

    def connectionLost(self, reason: Any) -> None:
        self._cancel_head_timer()
        super().connectionLost(reason)
        closed = getattr(self.site, "channel_closed", None)
        if closed is not None:
            closed(self)

    def dataReceived(self, data: bytes) -> None:
        if self._rejected:
            self._discard(data)
            return
        if self.line_mode and not self._handlingRequest:
            self._start_head_timer()
        super().dataReceived(data)

    # -- the request head ------------------------------------------------

    def lineReceived(self, line: bytes) -> None:
        if self._rejected:
            return
        if self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            self._reject(431, f"The request head exceeds {self.totalHeadersSize} bytes.")
            return
        self._start_head_timer()
        super().lineReceived(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        self._reject(431, f"A request head line exceeds {self.MAX_LENGTH} bytes.")

    def headerReceived(self, line: bytes) -> bool:
        if self._rejected:
            return False
        if self._receivedHeaderCount >= self.maxHeaders:
            self._reject(431, f"The request has more than {self.maxHeaders} header fields.")
            return False
        return bool(super().headerReceived(line))

    def _maybeChooseTransferDecoder(self, header: bytes, data: bytes) -> bool:
        ok = bool(super()._maybeChooseTransferDecoder(header, data))
        if ok and type(self._transferDecoder) is _ChunkedTransferDecoder:
            self._transferDecoder = LimitedChunkedDecoder(
                self.requests[-1].handleContentChunk, self._finishRequestBody,
                self.max_body_size)
        return ok

    def allHeadersReceived(self) -> None:
        self._cancel_head_timer()
        request = self.requests[-1]
        problem = host_problem(self._version, request.requestHeaders.getRawHeaders(b"host"))
        if problem is not None:
            log.info("{peer}: {problem}: 400", peer=self._peer(), problem=problem)
            self._respondToBadRequestAndDisconnect()
            return
        body, limit = None, self.max_body_size
        route = getattr(self.site, "body_route", None)
        route = route(self._path) if route is not None else None
        if route is not None:
            try:
                body = route.open_body(self._command, self._path,
                                       request.requestHeaders, self.length)
            except BodyRefused as e:
                self._reject(e.status, e.message)
                return
            except Exception:
                log.failure("a body route failed on {path!r}", path=self._path)
                self._reject(500, "The request could not be taken.")
                return
            if body is not None:
                limit = body.limit
        if self.length is not None and self.length > limit:
            if body is not None:
                body.close()
            self._reject(413, f"The request body exceeds {limit} bytes.")
            return
        if isinstance(self._transferDecoder, LimitedChunkedDecoder):
            self._transferDecoder.limit = limit
        super().allHeadersReceived()
        if body is not None:
            # the route's sink (a file of its own) instead of the site's
            request.content.close()
            request.content = body
        if self.draining:
            self.persistent = False

    def allContentReceived(self) -> None:
        if not self._rejected:
            super().allContentReceived()

    # -- the request body ------------------------------------------------

    def rawDataReceived(self, data: bytes) -> None:
        if self._rejected:
            self._discard(data)
            return
        try:
            super().rawDataReceived(data)
        except BodyTooLarge:
            self._reject(413, f"The request body exceeds {self.max_body_size} bytes.")

    # -- answers ---------------------------------------------------------

    def writeHeaders(self, version: bytes, code: bytes, reason: bytes,
                     headers: Any) -> None:
        """A response on a connection about to close says so."""
        if (not self.persistent and isinstance(headers, Headers)
                and not headers.hasHeader(b"connection")):
            headers.setRawHeaders(b"Connection", [b"close"])
        super().writeHeaders(version, code, reason, headers)

    def _respondToBadRequestAndDisconnect(self) -> None:
        self._count(400)
        self._rejected = True
        self._cancel_head_timer()
        super()._respondToBadRequestAndDisconnect()

    def timeoutConnection(self) -> None:
        """Idle timeout: a request half received is answered 408 first."""
        if self.requests and not self._handlingRequest and not self._rejected:
            self._write_error(408, "The request was not received in time.")
            self._rejected = True
        super().timeoutConnection()

    def _reject(self, status: int, message: str) -> None:
        """Answer C{status} before the request is complete, then close."""
        log.info("{peer}: {status} {message}", peer=self._peer(), status=status,
                 message=message)
        self._rejected = True
        self._cancel_head_timer()
        self.setTimeout(None)
        self.setRawMode()
        self._write_error(status, message)
        self._networkProducer.unregisterProducer()
        half_close = getattr(self.transport, "loseWriteConnection", None)
        if status == 408 or half_close is None:
            self.transport.loseConnection()
            wait = self.abortTimeout
        else:
            half_close()
            wait = LINGER
        if wait is not None and self._abortingCall is None:
            self._abortingCall = self.callLater(wait, self.forceAbortClient)

    def _count(self, status: int) -> None:
        """Count an answer the channel writes itself (the metrics)."""
        count = getattr(self.site, "count_response", None)
        if count is not None:
            count(status)

    def _write_error(self, status: int, message: str) -> None:
        self._count(status)
        body = (message + "\n").encode("utf-8")
        head = (f"HTTP/1.1 {status} {REASONS[status]}\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n")
        self.transport.write(head.encode("ascii") + body)

    def _discard(self, data: bytes) -> None:
        self._discarded += len(data)
        if self._discarded > LINGER_BYTES:
            self.transport.abortConnection()

    # -- timers and shutdown -----------------------------------------------

    def _start_head_timer(self) -> None:
        if self._head_timer is None and self.header_timeout and not self._rejected:
            self._head_timer = self.callLater(self.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            if self._head_timer.active():
                self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        self._reject(408, f"The request head was not received within"
                          f" {self.header_timeout:g} seconds.")

    def drain(self) -> None:
        """Shut down: finish the request in progress (if any), then close."""
        self.draining = True
        self.persistent = False
        if not self.requests:
            self._cancel_head_timer()
            self.loseConnection()

    def _peer(self) -> str:
        peer = self.transport.getPeer() if self.transport is not None else None
        return str(getattr(peer, "host", peer))
