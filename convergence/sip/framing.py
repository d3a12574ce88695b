# -*- test-case-name: tests.test_sip_framing -*-
"""Cutting SIP messages out of a stream (TCP, TLS; RFC 3261 18.3).

L{StreamFramer.feed} takes bytes as they arrive and returns every message
completed so far, each as the exact bytes to hand to
L{convergence.sip.message.parse_message}.  Between messages, a double
CRLF is an RFC 5626 keepalive ping: it comes back as L{PING} (answer it
with a single CRLF pong); single CRLFs (pongs) are dropped.

Content-Length is mandatory on a stream and says where a message ends:
bytes past it, when it is shorter than the body, start the next message
(RFC 3261 18.3).  A message larger than ``max_message_size``, a missing
or invalid Content-Length, or a first line that is not SIP raise
L{FramingError}; the stream cannot be resynchronised, so the connection
is to be closed.  When messages were completed before the error in the
same call, they are returned and the error waits in L{StreamFramer.error}
(the next call raises it): answer them, then close.  The framer never
holds more than ``max_message_size`` bytes between calls.
"""

from __future__ import annotations

import re

from convergence.sip.message import HEADER_END

__all__ = ["PING", "FramingError", "StreamFramer"]

PING = b"\r\n\r\n"

# Bytes that may start a message: token characters (a method or "SIP/").
_FIRST = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   b"0123456789-.!%*_+`'~")


class FramingError(Exception):
    """The stream cannot be framed any more; close the connection.

    @ivar reason: what went wrong ("Message too large" …).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# A Content-Length (or compact "l") header line: its value.  The start
# line never counts (a header line follows a line end), and one search
# with a literal first character finds every such line.
_CONTENT_LENGTH = re.compile(rb"\n[ \t]*(?:content-length|l)[ \t]*:([^\n]*)",
                             re.IGNORECASE)


def _content_length(head: bytes | bytearray, start: int = 0, end: int | None = None) -> int:
    """The Content-Length (or ``l``) of the header block C{head[start:end]}
    (every such line, which must agree)."""
    found = None
    for match in _CONTENT_LENGTH.finditer(head, start, len(head) if end is None else end):
        found = _length_value(match.group(1).strip(), found)
    if found is None:
        raise FramingError("Missing Content-Length")
    return found


def _length_value(value: bytes, found: int | None) -> int:
    """A Content-Length value, checked (against an earlier one, C{found})."""
    # Over 18 significant digits is too large (and int() refuses over 4300).
    if value.isdigit() and len(value.lstrip(b"0")) > 18:
        raise FramingError("Message too large")
    if not value.isdigit() or (found is not None and int(value) != found):
        raise FramingError("Bad Content-Length")
    return int(value)


def _looks_like_sip(line: bytes) -> bool:
    """True for a plausible Request-Line or Status-Line."""
    line = line.rstrip(b"\r")
    if line[:4].upper() == b"SIP/":
        return True
    return line.rpartition(b" ")[2][:4].upper() == b"SIP/"


class StreamFramer:
    """Turns a byte stream into complete SIP messages."""

    def __init__(self, max_message_size: int = 65536) -> None:
        self.max_message_size = max_message_size
        self._buffer = bytearray()
        self._start = 0          # where the unread part of _buffer begins
        self._scanned = 0        # header bytes searched for the blank line
        self._length: int | None = None  # total size of the current message
        self._failed: str | None = None
        self._first_line_ok = False

    @property
    def error(self) -> str | None:
        """Why the stream cannot be framed any more, or None."""
        return self._failed

    @property
    def buffered(self) -> int:
        """How many bytes wait for the rest of their message."""
        return len(self._buffer) - self._start

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the completed messages and L{PING}s in order.

        @raise FramingError: if the stream broke before any message was
            completed in this call (else see L{error}).
        """
        if self._failed is not None:
            raise FramingError(self._failed)
        buffer: bytes | bytearray
        if self._buffer or type(data) is not bytes:
            self._buffer += data
            buffer = self._buffer
        else:  # nothing waits: cut the messages from the bytes as read
            buffer = data
        out: list[bytes] = []
        try:
            self._drain(buffer, out)
        except FramingError as e:
            self._failed = e.reason
            self._buffer = bytearray()
            self._start = 0
            if not out:
                raise
        else:
            # what was read goes at once, not message by message
            start = self._start
            if buffer is data:
                if start < len(data):
                    self._buffer = bytearray(data[start:] if start else data)
            elif start:
                del self._buffer[:start]
            self._start = 0
        return out

    def _drain(self, buffer: bytes | bytearray, out: list[bytes]) -> None:
        size = len(buffer)
        while self._start < size:
            if self._length is None:
                if not self._skip_keepalives(buffer, out):
                    break
                if not self._read_headers(buffer):
                    break
            assert self._length is not None
            start = self._start
            end = start + self._length
            if size < end:
                break
            out.append(bytes(buffer[start:end]))
            self._start = end
            self._length = None
            self._scanned = 0
            self._first_line_ok = False

    def _skip_keepalives(self, buffer: bytes | bytearray, out: list[bytes]) -> bool:
        """Drop CRLFs before a message, reporting pings; False to wait."""
        size = len(buffer)
        i = self._start
        while i < size and buffer[i] in b"\r\n":
            if buffer.startswith(PING, i):
                out.append(PING)
                i += 4
            elif size - i < 4 and buffer[i:] in (b"\r", b"\r\n", b"\r\n\r"):
                self._start = i
                return False     # a ping may be on its way
            elif buffer.startswith(b"\r\n", i):
                i += 2
            else:
                i += 1
        self._start = i
        return i < size

    def _read_headers(self, buffer: bytes | bytearray) -> bool:
        """Find the end of the headers and the message size; False to wait."""
        origin = self._start
        if self._scanned == 0 and buffer[origin] not in _FIRST:
            raise FramingError("Not a SIP message")
        if not self._first_line_ok:
            first_end = buffer.find(b"\n", origin + self._scanned)
            if first_end >= 0:
                if not _looks_like_sip(bytes(buffer[origin:first_end])):
                    raise FramingError("Not a SIP message")
                self._first_line_ok = True
        blank = HEADER_END.search(buffer, origin + max(0, self._scanned - 2))
        if blank is None:
            if len(buffer) - origin > self.max_message_size:
                raise FramingError("Message too large")
            self._scanned = len(buffer) - origin
            return False
        end, body_start = blank.span()
        length = body_start - origin + _content_length(buffer, origin, end)
        if length > self.max_message_size:
            raise FramingError("Message too large")
        self._length = length
        return True
