# -*- test-case-name: tests.test_sdp -*-
"""
Session descriptions: RFC 4566 parsing and serialization, the RFC 3264
offer/answer model, and the jabber chat media of
draft-sparks-simple-jabber-sessions (C{m=message <port> xmpp/tcp chat} with
C{a=jid:} and C{a=thread:}).

The draft's example (its Figure 1) writes the chat stream's C{c=} and C{t=}
lines I{before} its C{m=} line. RFC 4566 has no place for a C{t=} line
inside a media description, so the parser reads a run of C{c=} lines
followed by C{t=}/C{r=} lines at the end of a media description as the
preamble of the next one: its C{connections} and its C{times}. A media
description with C{times} is written back in the same layout, so the
draft's example round-trips byte for byte.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence, TypeVar

from twisted.logger import Logger

log = Logger()

T = TypeVar("T")

__all__ = [
    "DIRECTIONS", "NTP_EPOCH_OFFSET", "Attribute", "Bandwidth", "Connection",
    "JabberChat", "MediaDescription", "NotAcceptable", "OfferAnswer",
    "Origin", "Repeat", "SdpError", "SessionDescription", "Timing",
    "ZoneAdjustment", "answer_chat", "answer_direction", "chat_media",
    "check_answer",
    "is_chat_media", "jabber_chats", "parse_sdp", "revise_session",
    "typed_time_seconds",
]

#: An a= line: its name and its value (C{None} for a flag like C{a=recvonly}).
Attribute = tuple[str, str | None]

#: The RFC 3264 direction attributes.
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

#: Offset between the NTP epoch (1900) and the Unix epoch (1970), seconds.
NTP_EPOCH_OFFSET = 2208988800

_TYPED_TIME = re.compile(r"[0-9]+[dhms]?\Z")
_SIGNED_TYPED_TIME = re.compile(r"-?[0-9]+[dhms]?\Z")
_PORT = re.compile(r"([0-9]+)(?:/([0-9]+))?\Z")
_BANDWIDTH = re.compile(r"([^:\s]+):([0-9]+)\Z")
_TIME_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_FORBIDDEN = re.compile(r"[\x00\r\n]")

# Media-level lines kept in a single field, and session-only line types.
_MEDIA_ONLY_ONCE = {"i": "information", "k": "key"}
_SESSION_ONLY = frozenset("vosuepztr")


class SdpError(ValueError):
    """
    A session description that cannot be parsed.

    @ivar reason: what is wrong, e.g. C{"bad m= line"}.
    @ivar line_number: the 1-based number of the offending line.
    @ivar line: the offending line, without its line end.
    """

    def __init__(self, reason: str, line_number: int, line: str,
                 detail: str | None = None) -> None:
        self.reason = reason
        self.line_number = line_number
        self.line = line
        self.detail = detail
        message = f"line {line_number}: {reason} {line!r}"
        if detail:
            message += f": {detail}"
        super().__init__(message)


class NotAcceptable(Exception):
    """
    No offered stream was accepted; a UA core answers the offer with
    C{488 Not Acceptable Here}.
    """

    status_code = 488


def typed_time_seconds(value: str) -> int:
    """
    Convert an RFC 4566 typed time (C{"7d"}, C{"-1h"}, C{"90000"}) to
    seconds.

    @raise ValueError: C{value} is not a typed time.
    """
    if not _SIGNED_TYPED_TIME.match(value):
        raise ValueError(f"not a typed time: {value!r}")
    sign = -1 if value.startswith("-") else 1
    digits = value.lstrip("-")
    unit = _TIME_UNITS.get(digits[-1])
    if unit is None:
        return sign * int(digits)
    return sign * int(digits[:-1]) * unit


@dataclass(frozen=True)
class Origin:
    """The o= line: who made the session description, and which version."""

    username: str
    sess_id: str
    sess_version: int
    nettype: str
    addrtype: str
    address: str

    @classmethod
    def create(cls, address: str, username: str = "-",
               now: float | None = None) -> Origin:
        """
        A fresh origin for C{address}; session id and version are the
        current NTP time in seconds, as RFC 4566 section 5.2 suggests.

        @param now: the Unix time to use, for tests (default: C{time.time()}).
        """
        seconds = int(time.time() if now is None else now) + NTP_EPOCH_OFFSET
        addrtype = "IP6" if ":" in address else "IP4"
        if cls is Origin:
            return _origin(username, str(seconds), seconds, "IN", addrtype,
                           address)
        return cls(username, str(seconds), seconds, "IN", addrtype, address)

    def next_version(self) -> Origin:
        """This origin with C{sess_version} incremented by one."""
        return replace(self, sess_version=self.sess_version + 1)

    def __str__(self) -> str:
        return (f"{self.username} {self.sess_id} {self.sess_version} "
                f"{self.nettype} {self.addrtype} {self.address}")


@dataclass(frozen=True)
class Connection:
    """A c= line. C{address} keeps any C{/ttl} or C{/count} suffix."""

    nettype: str
    addrtype: str
    address: str

    @classmethod
    def for_address(cls, address: str) -> Connection:
        """An C{IN} connection, C{IP6} if C{address} contains a colon."""
        addrtype = "IP6" if ":" in address else "IP4"
        if cls is Connection:
            return _connection("IN", addrtype, address)
        return cls("IN", addrtype, address)

    @property
    def host(self) -> str:
        """The address without a multicast C{/ttl/count} suffix."""
        return self.address.split("/", 1)[0]

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True)
class Bandwidth:
    """A b= line: C{b=AS:128} is C{Bandwidth("AS", 128)}."""

    bwtype: str
    bandwidth: int

    def __str__(self) -> str:
        return f"{self.bwtype}:{self.bandwidth}"


@dataclass(frozen=True)
class Repeat:
    """An r= line; times are kept as written (C{"7d"}, C{"25h"}, C{"0"})."""

    interval: str
    duration: str
    offsets: tuple[str, ...]

    def __str__(self) -> str:
        return " ".join((self.interval, self.duration) + self.offsets)


@dataclass
class Timing:
    """A t= line (NTP seconds; 0 means unbounded) and its r= lines."""

    start: int = 0
    stop: int = 0
    repeats: list[Repeat] = field(default_factory=list)

    def copy(self) -> Timing:
        """An independent copy (its r= lines are immutable)."""
        return _timing(self.start, self.stop, list(self.repeats))


@dataclass(frozen=True)
class ZoneAdjustment:
    """One adjustment of a z= line: an NTP time and a typed-time offset."""

    time: int
    offset: str


class _AttributeMixin:
    """a= line helpers over an ordered C{attributes} list."""

    attributes: list[Attribute]

    def attribute(self, name: str) -> str | None:
        """
        The value of the first C{a=name} line: C{""} for a flag attribute,
        C{None} if there is none.
        """
        for key, value in self.attributes:
            if key == name:
                return "" if value is None else value
        return None

    def has_attribute(self, name: str) -> bool:
        """Whether there is at least one C{a=name} line."""
        return any(key == name for key, _ in self.attributes)

    def attributes_named(self, name: str) -> list[str]:
        """The values of all C{a=name} lines, in order (C{""} for flags)."""
        return ["" if value is None else value
                for key, value in self.attributes if key == name]

    def add_attribute(self, name: str, value: str | None = None) -> None:
        """Append C{a=name[:value]}."""
        self.attributes.append((name, value))

    def set_attribute(self, name: str, value: str | None = None) -> None:
        """
        Make C{a=name[:value]} the only C{a=name} line: the first one is
        replaced in place, later ones are removed; appended if absent.
        """
        result: list[Attribute] = []
        placed = False
        for key, old in self.attributes:
            if key != name:
                result.append((key, old))
            elif not placed:
                result.append((name, value))
                placed = True
        if not placed:
            result.append((name, value))
        self.attributes[:] = result

    def remove_attribute(self, name: str) -> int:
        """Remove every C{a=name} line; return how many there were."""
        before = len(self.attributes)
        self.attributes[:] = [(k, v) for k, v in self.attributes if k != name]
        return before - len(self.attributes)


@dataclass
class MediaDescription(_AttributeMixin):
    """
    One m= section.

    @ivar times: non-standard per-stream t= lines, as in the
        draft-sparks example; when present, this stream's c= and t= lines
        are written before its m= line.
    @ivar other_lines: lines with a type letter RFC 4566 does not define,
        as C{(type, value)}, written after the a= lines.
    """

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    information: str | None = None
    connections: list[Connection] = field(default_factory=list)
    bandwidths: list[Bandwidth] = field(default_factory=list)
    key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)
    times: list[Timing] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)

    def copy(self) -> MediaDescription:
        """An independent copy: every list copied, its items (tuples and
        frozen lines, or L{Timing} copied) immutable."""
        return _media(
            self.media, self.port, self.proto, list(self.formats), self.port_count,
            self.information, list(self.connections), list(self.bandwidths), self.key,
            list(self.attributes), [t.copy() for t in self.times],
            list(self.other_lines))

    @property
    def rejected(self) -> bool:
        """Whether the stream is disabled (port 0)."""
        return self.port == 0

    @property
    def direction(self) -> str | None:
        """This stream's own direction attribute, if any."""
        for key, _ in self.attributes:
            if key in DIRECTIONS:
                return key
        return None

    def lines(self) -> list[str]:
        """The section's lines, without line ends."""
        out: list[str] = []
        append = out.append
        times = self.times
        if times:
            for connection in self.connections:
                append(f"c={connection}")
            _timing_lines(times, out)
        port = (str(self.port) if self.port_count is None
                else f"{self.port}/{self.port_count}")
        append("m=" + " ".join([self.media, port, self.proto, *self.formats]))
        if self.information is not None:
            append(f"i={self.information}")
        if not times:
            for connection in self.connections:
                append(f"c={connection}")
        for bandwidth in self.bandwidths:
            append(f"b={bandwidth}")
        if self.key is not None:
            append(f"k={self.key}")
        _attribute_lines(self.attributes, out)
        for kind, value in self.other_lines:
            append(f"{kind}={value}")
        return out


@dataclass(kw_only=True)
class SessionDescription(_AttributeMixin):
    """
    A whole session description (RFC 4566 section 5).

    @ivar other_lines: session-level lines with a type letter RFC 4566 does
        not define, as C{(type, value)}, written after the a= lines.
    """

    version: int = 0
    origin: Origin
    session_name: str = "-"
    information: str | None = None
    uri: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    times: list[Timing] = field(default_factory=lambda: [Timing()])
    zone: list[ZoneAdjustment] = field(default_factory=list)
    key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)

    def connection_for(self, index: int) -> Connection | None:
        """The first connection of stream C{index}, else the session's."""
        media = self.media[index]
        return media.connections[0] if media.connections else self.connection

    def direction_of(self, index: int) -> str:
        """Stream C{index}'s direction: its own, the session's, or sendrecv."""
        own = self.media[index].direction
        if own is not None:
            return own
        for key, _ in self.attributes:
            if key in DIRECTIONS:
                return key
        return "sendrecv"

    def lines(self) -> list[str]:
        """All lines, without line ends."""
        if not self.times:
            raise ValueError("a session description needs a t= line")
        out = [f"v={self.version}", f"o={self.origin}",
               f"s={self.session_name}"]
        append = out.append
        if self.information is not None:
            append(f"i={self.information}")
        if self.uri is not None:
            append(f"u={self.uri}")
        for email in self.emails:
            append(f"e={email}")
        for phone in self.phones:
            append(f"p={phone}")
        if self.connection is not None:
            append(f"c={self.connection}")
        for bandwidth in self.bandwidths:
            append(f"b={bandwidth}")
        _timing_lines(self.times, out)
        if self.zone:
            append("z=" + " ".join([f"{z.time} {z.offset}"
                                    for z in self.zone]))
        if self.key is not None:
            append(f"k={self.key}")
        _attribute_lines(self.attributes, out)
        for kind, value in self.other_lines:
            append(f"{kind}={value}")
        for media in self.media:
            out += media.lines()
        return out

    def serialize(self) -> bytes:
        """
        The UTF-8 session description with CRLF line ends.

        @raise ValueError: a value contains CR, LF or NUL, or there is no
            t= line.
        """
        lines = self.lines()
        text = "\r\n".join(lines)
        breaks = len(lines) - 1  # the joins' own CR LF
        if ("\x00" in text or text.count("\r") != breaks
                or text.count("\n") != breaks):
            for line in lines:  # name the line
                if _FORBIDDEN.search(line):
                    raise ValueError(
                        f"line break or NUL in SDP line {line!r}")
        return (text + "\r\n").encode("utf-8")

    def copy(self) -> SessionDescription:
        """A deep copy (every list copied; lines that are frozen shared)."""
        return _session(
            self.version, self.origin, self.session_name, self.information,
            self.uri, list(self.emails), list(self.phones), self.connection,
            list(self.bandwidths), [t.copy() for t in self.times],
            list(self.zone), self.key, list(self.attributes),
            [m.copy() for m in self.media], list(self.other_lines))


# -- fast construction -------------------------------------------------------
#
# The parser and the offer/answer builders make a few dozen of these per
# call. A dataclass __init__ pays an object.__setattr__ per field of a frozen
# class, and default factories and keyword handling for the others; these
# make the same objects (equal, with the same __dict__) for about half the
# cost. tests.test_properties_sdp checks each against the public constructor.

_new = object.__new__


def _fill(cls: type, fields: dict[str, object]) -> Any:
    """An instance of dataclass C{cls} holding C{fields}, made without its
    __init__."""
    made = _new(cls)
    made.__dict__.update(fields)
    return made


def _origin(username: str, sess_id: str, sess_version: int, nettype: str,
            addrtype: str, address: str) -> Origin:
    return _fill(Origin, {"username": username, "sess_id": sess_id,
                          "sess_version": sess_version, "nettype": nettype,
                          "addrtype": addrtype, "address": address})


def _connection(nettype: str, addrtype: str, address: str) -> Connection:
    return _fill(Connection, {"nettype": nettype, "addrtype": addrtype, "address": address})


def _bandwidth(bwtype: str, bandwidth: int) -> Bandwidth:
    return _fill(Bandwidth, {"bwtype": bwtype, "bandwidth": bandwidth})


def _repeat(interval: str, duration: str, offsets: tuple[str, ...]) -> Repeat:
    return _fill(Repeat, {"interval": interval, "duration": duration, "offsets": offsets})


def _zone_adjustment(when: int, offset: str) -> ZoneAdjustment:
    return _fill(ZoneAdjustment, {"time": when, "offset": offset})


def _timing(start: int, stop: int, repeats: list[Repeat]) -> Timing:
    timing = _new(Timing)
    timing.start = start
    timing.stop = stop
    timing.repeats = repeats
    return timing


def _media(media: str, port: int, proto: str, formats: list[str],
           port_count: int | None, information: str | None,
           connections: list[Connection], bandwidths: list[Bandwidth],
           key: str | None, attributes: list[Attribute], times: list[Timing],
           other_lines: list[tuple[str, str]]) -> MediaDescription:
    made = _new(MediaDescription)
    made.media = media
    made.port = port
    made.proto = proto
    made.formats = formats
    made.port_count = port_count
    made.information = information
    made.connections = connections
    made.bandwidths = bandwidths
    made.key = key
    made.attributes = attributes
    made.times = times
    made.other_lines = other_lines
    return made


def _session(version: int, origin: Origin, session_name: str,
             information: str | None, uri: str | None, emails: list[str],
             phones: list[str], connection: Connection | None,
             bandwidths: list[Bandwidth], times: list[Timing],
             zone: list[ZoneAdjustment], key: str | None,
             attributes: list[Attribute], media: list[MediaDescription],
             other_lines: list[tuple[str, str]]) -> SessionDescription:
    sdp = _new(SessionDescription)
    sdp.version = version
    sdp.origin = origin
    sdp.session_name = session_name
    sdp.information = information
    sdp.uri = uri
    sdp.emails = emails
    sdp.phones = phones
    sdp.connection = connection
    sdp.bandwidths = bandwidths
    sdp.times = times
    sdp.zone = zone
    sdp.key = key
    sdp.attributes = attributes
    sdp.media = media
    sdp.other_lines = other_lines
    return sdp


def _jabber_chat(jid: str, thread: str | None, host: str | None, port: int,
                 index: int) -> JabberChat:
    chat = _new(JabberChat)
    fields = chat.__dict__
    fields["jid"] = jid
    fields["thread"] = thread
    fields["host"] = host
    fields["port"] = port
    fields["index"] = index
    return chat


#: The parser's placeholder until it has read the o= line.
_UNSET_ORIGIN = Origin("-", "0", 0, "IN", "IP4", "0.0.0.0")


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _timing_lines(times: list[Timing], out: list[str]) -> None:
    """Append the t= and r= lines of C{times} to C{out}."""
    for timing in times:
        out.append(f"t={timing.start} {timing.stop}")
        for repeat in timing.repeats:
            out.append(f"r={repeat}")


def _attribute_lines(attributes: list[Attribute], out: list[str]) -> None:
    """Append the a= lines of C{attributes} to C{out}."""
    for name, value in attributes:
        out.append(f"a={name}" if value is None else f"a={name}:{value}")


# -- parsing -----------------------------------------------------------------

#: One line: its 1-based number, its type letter and its value (the text
#: after C{=}); the line itself is C{type + "=" + value}.
_Line = tuple[int, str, str]


def _split_lines(data: bytes | str) -> list[_Line]:
    """Split on LF (an optional CR before it), skip blank lines.

    One decode and one search for NUL cover the whole description when it
    is UTF-8, has no NUL and no CR but before LF (every description a peer
    sends); anything else goes line by line (L{_split_lines_slowly}), which
    names the offending line."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) \
        else data
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _split_lines_slowly(raw)
    if "\x00" in text:
        return _split_lines_slowly(raw)
    if "\r" not in text:
        parts = text.split("\n")
    else:
        crlf = text.count("\r\n")
        if crlf != text.count("\r"):
            return _split_lines_slowly(raw)
        # Every CR ends a line; the same lines, and line numbers, as
        # splitting on LF and taking a CR off each line's end.
        parts = (text.split("\r\n") if crlf == text.count("\n")
                 else text.replace("\r\n", "\n").split("\n"))
    lines = []
    append = lines.append
    number = 0
    for line in parts:
        number += 1
        if line[1:2] == "=" and "a" <= line[0] <= "z":
            append((number, line[0], line[2:]))
        elif line and not line.isspace():
            return _split_lines_slowly(raw)  # the error, as it words it
    return lines


def _split_lines_slowly(raw: bytes) -> list[_Line]:
    """L{_split_lines} line by line."""
    # surrogatepass (above): a lone surrogate becomes bytes that are not
    # UTF-8, refused below with its line number.
    lines = []
    for number, chunk in enumerate(raw.split(b"\n"), 1):
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError:
            raise SdpError("line is not UTF-8", number,
                           chunk.decode("utf-8", "replace")) from None
        if not text.strip():
            continue
        if "=" not in text:
            raise SdpError("line without '='", number, text)
        kind, value = text.split("=", 1)
        if len(kind) != 1 or not ("a" <= kind <= "z"):
            raise SdpError("bad line type", number, text,
                           "expected one lower-case letter before '='")
        if _FORBIDDEN.search(value):
            raise SdpError("control character in line", number, text)
        lines.append((number, kind, value))
    return lines


#: Lines parsed before, by their value (the text after C{=}): descriptions
#: from one peer repeat their c=, t=, m= and most a= lines call after call.
#: The values kept are immutable (an m= line's fields, copied into each
#: new L{MediaDescription}), so every description parsed from the same
#: text shares them.
_CONNECTIONS: dict[str, Connection] = {}
_ATTRIBUTES: dict[str, Attribute] = {}
_TIMES: dict[str, tuple[int, int]] = {}
_MEDIA_LINES: dict[str, tuple[str, int, str, tuple[str, ...], int | None]] = {}
#: Entries a cache holds before it starts afresh, and the longest value kept.
_CACHE_SIZE = 1024
_CACHED_LENGTH = 200


def _remember(cache: dict[str, T], text: str, value: T) -> T:
    """Keep C{value}, parsed from C{text}, in C{cache}; return it."""
    if len(text) <= _CACHED_LENGTH:
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[text] = value
    return value


def _error(reason: str, line: _Line, detail: str | None = None) -> SdpError:
    number, kind, value = line
    return SdpError(reason, number, f"{kind}={value}", detail)


def _is_digits(text: str) -> bool:
    """Whether C{text} is one or more ASCII digits (C{[0-9]+}); inlined
    where a parser's hot path needs it."""
    return text.isascii() and text.isdigit()


def _int(digits: str, line: _Line) -> int:
    """The value of a digit string matched in C{line}; SdpError if it is
    too long for C{int()} (over 4300 digits)."""
    try:
        return int(digits)
    except ValueError:
        raise _error(f"bad {line[1]}= line", line,
                     "number too long") from None


def _fields(line: _Line, count: int) -> list[str]:
    parts = line[2].split()
    if len(parts) != count:
        raise _error(f"bad {line[1]}= line", line,
                     f"expected {count} fields")
    return parts


def _parse_origin(line: _Line) -> Origin:
    username, sess_id, version, nettype, addrtype, address = _fields(line, 6)
    if not (version.isascii() and version.isdigit()):
        raise _error("bad o= line", line, "sess-version is not a number")
    return _origin(username, sess_id, _int(version, line), nettype, addrtype,
                   address)


def _parse_connection(line: _Line) -> Connection:
    known = _CONNECTIONS.get(line[2])
    if known is not None:
        return known
    parts = line[2].split()
    if len(parts) != 3:
        raise _error("bad c= line", line, "expected 3 fields")
    return _remember(_CONNECTIONS, line[2], _connection(*parts))


def _parse_bandwidth(line: _Line) -> Bandwidth:
    match = _BANDWIDTH.match(line[2])
    if not match:
        raise _error("bad b= line", line, "expected <bwtype>:<bandwidth>")
    return _bandwidth(match.group(1), _int(match.group(2), line))


def _parse_timing(line: _Line) -> Timing:
    known = _TIMES.get(line[2])
    if known is None:
        start, stop = _fields(line, 2)
        if not (start.isascii() and start.isdigit()
                and stop.isascii() and stop.isdigit()):
            raise _error("bad t= line", line, "times must be numbers")
        known = _remember(_TIMES, line[2], (_int(start, line), _int(stop, line)))
    return _timing(known[0], known[1], [])


def _parse_repeat(line: _Line) -> Repeat:
    parts = line[2].split()
    if len(parts) < 3 or not all(_TYPED_TIME.match(p) for p in parts):
        raise _error("bad r= line", line,
                     "expected <interval> <duration> <offsets>...")
    return _repeat(parts[0], parts[1], tuple(parts[2:]))


def _parse_zone(line: _Line) -> list[ZoneAdjustment]:
    parts = line[2].split()
    if not parts or len(parts) % 2:
        raise _error("bad z= line", line, "expected <time> <offset> pairs")
    zone = []
    for when, offset in zip(parts[::2], parts[1::2]):
        if not (_is_digits(when) and _SIGNED_TYPED_TIME.match(offset)):
            raise _error("bad z= line", line, "expected <time> <offset> pairs")
        zone.append(_zone_adjustment(_int(when, line), offset))
    return zone


def _parse_attribute(line: _Line) -> Attribute:
    known = _ATTRIBUTES.get(line[2])
    if known is not None:
        return known
    name, colon, value = line[2].partition(":")
    if not name or " " in name:
        raise _error("bad a= line", line, "bad attribute name")
    return _remember(_ATTRIBUTES, line[2], (name, value if colon else None))


def _parse_media_line(line: _Line) -> MediaDescription:
    known = _MEDIA_LINES.get(line[2])
    if known is None:
        known = _remember(_MEDIA_LINES, line[2], _media_line_fields(line))
    media, port, proto, formats, count = known
    return _media(media, port, proto, list(formats), count, None, [], [],
                  None, [], [], [])


def _media_line_fields(line: _Line) -> tuple[str, int, str, tuple[str, ...], int | None]:
    """An m= line's media, port, proto, formats and port count."""
    parts = line[2].split()
    if len(parts) < 4:
        raise _error("bad m= line", line,
                     "expected <media> <port> <proto> <fmt>...")
    port_text = parts[1]
    count: int | None = None
    if port_text.isascii() and port_text.isdigit():  # no /count
        port = _int(port_text, line)
    else:
        match = _PORT.match(port_text)
        if not match:
            raise _error("bad m= line", line, "port is not a number")
        port = _int(match.group(1), line)
        if match.group(2) is not None:
            count = _int(match.group(2), line)
    if port > 65535 or count == 0:
        raise _error("bad m= line", line, "port out of range")
    return parts[0], port, parts[2], tuple(parts[3:]), count


def _set_once(target: object, name: str, value: object, line: _Line) -> None:
    if getattr(target, name) is not None:
        raise _error(f"duplicate {line[1]}= line", line)
    setattr(target, name, value)


def _other(target: SessionDescription | MediaDescription, line: _Line,
           strict: bool) -> None:
    if strict:
        raise _error("unknown line type", line)
    target.other_lines.append((line[1], line[2]))


def _preamble_start(lines: list[_Line], kinds: str, start: int, end: int,
                    has_next: bool) -> int:
    """
    Where the draft-sparks preamble (c=* then t= r=*) of the next media
    block begins at the end of the block C{lines[start:end]} (C{kinds}
    holds each line's type letter); C{end} if there is none.
    """
    first_t = kinds.find("t", start, end)
    if first_t < 0:
        return end
    if not has_next or kinds[first_t:end].strip("tr"):
        raise _error("t= line inside a media description", lines[first_t])
    cut = first_t
    while cut > start + 1 and kinds[cut - 1] == "c":
        cut -= 1
    return cut


def parse_sdp(data: bytes | str, *, strict: bool = False
              ) -> SessionDescription:
    """
    Parse a session description (CRLF or LF line ends, blank lines ignored).

    @param strict: reject lines whose type letter RFC 4566 does not define
        (the RFC's rule); by default they are kept in C{other_lines}.
    @raise SdpError: the description is malformed; the error names the line.
    """
    lines = _split_lines(data)
    if not lines:
        raise SdpError("empty session description", 1, "")
    first = lines[0]
    if first[1] != "v":
        raise _error("session description must start with v=", first)
    if not (first[2].isascii() and first[2].isdigit()):
        raise _error("bad v= line", first, "version is not a number")
    kinds = "".join([line[1] for line in lines])
    session_end = kinds.find("m")
    if session_end < 0:
        session_end = len(lines)

    origin: Origin | None = None
    session_name: str | None = None
    sdp = _session(_int(first[2], first), _UNSET_ORIGIN, "-", None, None, [],
                   [], None, [], [], [], None, [], [], [])
    zone_seen = False
    for index in range(1, session_end):
        line = lines[index]
        kind = line[1]
        if kind == "a":
            sdp.attributes.append(_parse_attribute(line))
        elif kind == "o":
            if origin is not None:
                raise _error("duplicate o= line", line)
            origin = _parse_origin(line)
        elif kind == "s":
            if session_name is not None:
                raise _error("duplicate s= line", line)
            session_name = line[2]
        elif kind == "c":
            _set_once(sdp, "connection", _parse_connection(line), line)
        elif kind == "t":
            sdp.times.append(_parse_timing(line))
        elif kind == "v":
            raise _error("duplicate v= line", line)
        elif kind == "i":
            _set_once(sdp, "information", line[2], line)
        elif kind == "u":
            _set_once(sdp, "uri", line[2], line)
        elif kind == "e":
            sdp.emails.append(line[2])
        elif kind == "p":
            sdp.phones.append(line[2])
        elif kind == "b":
            sdp.bandwidths.append(_parse_bandwidth(line))
        elif kind == "r":
            if not sdp.times:
                raise _error("r= line before any t= line", line)
            sdp.times[-1].repeats.append(_parse_repeat(line))
        elif kind == "z":
            if zone_seen:
                raise _error("duplicate z= line", line)
            zone_seen = True
            sdp.zone = _parse_zone(line)
        elif kind == "k":
            _set_once(sdp, "key", line[2], line)
        else:
            _other(sdp, line, strict)

    has_media = session_end < len(lines)
    boundary = lines[session_end] if has_media else lines[-1]
    where = "before" if has_media else "after"
    if origin is None:
        raise _error(f"missing o= line {where}", boundary)
    if session_name is None:
        raise _error(f"missing s= line {where}", boundary)
    if not sdp.times:
        raise _error(f"missing t= line {where}", boundary)
    sdp.origin = origin
    sdp.session_name = session_name

    start = preamble = session_end
    while start < len(lines):
        end = kinds.find("m", start + 1)
        if end < 0:
            end = len(lines)
        cut = _preamble_start(lines, kinds, start, end, end < len(lines))
        sdp.media.append(_parse_media(lines, start, cut, preamble, strict))
        start, preamble = end, cut
    return sdp


def _parse_media(lines: list[_Line], start: int, end: int, preamble: int,
                 strict: bool) -> MediaDescription:
    """The media description C{lines[start:end]}, with the draft-sparks
    preamble C{lines[preamble:start]} (c=, t=, r= lines)."""
    media = _parse_media_line(lines[start])
    for index in range(preamble, start):
        line = lines[index]
        kind = line[1]
        if kind == "c":
            media.connections.append(_parse_connection(line))
        elif kind == "t":
            media.times.append(_parse_timing(line))
        else:
            media.times[-1].repeats.append(_parse_repeat(line))
    for index in range(start + 1, end):
        line = lines[index]
        kind = line[1]
        if kind == "a":
            media.attributes.append(_parse_attribute(line))
        elif kind == "c":
            media.connections.append(_parse_connection(line))
        elif kind == "b":
            media.bandwidths.append(_parse_bandwidth(line))
        elif kind in _MEDIA_ONLY_ONCE:
            _set_once(media, _MEDIA_ONLY_ONCE[kind], line[2], line)
        elif kind in _SESSION_ONLY:
            raise _error(f"{kind}= line inside a media description", line)
        else:
            _other(media, line, strict)
    return media


# -- offer/answer (RFC 3264) -------------------------------------------------


def answer_direction(offered: str) -> str:
    """
    The default answer direction for an offered one (RFC 3264 section
    6.1): sendonly becomes recvonly and vice versa.
    """
    return {"sendonly": "recvonly", "recvonly": "sendonly"}.get(
        offered, offered)


_ALLOWED_DIRECTIONS = {
    "sendrecv": set(DIRECTIONS),
    "sendonly": {"recvonly", "inactive"},
    "recvonly": {"sendonly", "inactive"},
    "inactive": {"inactive"},
}


class OfferAnswer:
    """
    Build the answer to an offer, one offered stream at a time.

    Streams neither accepted nor modified are declined by L{build}, so the
    answer always has exactly the offer's m= lines, in the offer's order.
    """

    def __init__(self, offer: SessionDescription, origin: Origin,
                 connection: Connection | str, *, session_name: str = "-",
                 attributes: Iterable[Attribute] = (),
                 previous: SessionDescription | None = None) -> None:
        """
        @param origin: the answerer's o= line.
        @param connection: the answerer's session-level c= address.
        @param previous: the answerer's previous SDP in this session, if
            any: the answer then keeps its origin, with the version bumped
            if anything changed (see L{revise_session}).
        """
        self.offer = offer
        self.origin = origin
        self.connection = (Connection.for_address(connection)
                           if isinstance(connection, str) else connection)
        self.session_name = session_name
        self.attributes = list(attributes)
        self.previous = previous
        self._streams: dict[int, MediaDescription] = {}

    def _offered(self, index: int) -> MediaDescription:
        if not 0 <= index < len(self.offer.media):
            raise IndexError(f"the offer has no stream {index}")
        return self.offer.media[index]

    def accept(self, index: int, port: int,
               formats: Sequence[str] | None = None,
               attributes: Iterable[Attribute] = (), *,
               connection: Connection | str | None = None,
               direction: str | None = None,
               bandwidths: Iterable[Bandwidth] = ()) -> MediaDescription:
        """
        Accept offered stream C{index} on C{port}.

        @param formats: the answer's formats (default: the offered ones);
            at least one must be among the offered ones.
        @param attributes: a= lines for the stream.
        @param connection: a per-stream c= address, if it differs from the
            session's.
        @param direction: the answer's direction; by default the mirror of
            the offered one (none is written for sendrecv). Ignored if
            C{attributes} already holds a direction.
        @return: the stream's answer, which may still be changed.
        @raise ValueError: the offered stream is disabled, C{port} is 0,
            no format is in common or the direction is not allowed.
        """
        offered = self._offered(index)
        if port <= 0:
            raise ValueError("port 0 declines a stream: use decline()")
        chosen = list(offered.formats if formats is None else formats)
        if not set(chosen) & set(offered.formats):
            raise ValueError(f"no format in common with {offered.formats}")
        media = MediaDescription(offered.media, port, offered.proto, chosen,
                                 attributes=list(attributes),
                                 bandwidths=list(bandwidths))
        if connection is not None:
            media.connections.append(
                Connection.for_address(connection)
                if isinstance(connection, str) else connection)
        if media.direction is None:
            offered_direction = self.offer.direction_of(index)
            wanted = direction or answer_direction(offered_direction)
            if wanted not in _ALLOWED_DIRECTIONS[offered_direction]:
                raise ValueError(
                    f"cannot answer {offered_direction} with {wanted}")
            if wanted != "sendrecv":
                media.add_attribute(wanted)
        return self.modify(index, media)

    def modify(self, index: int, media: MediaDescription) -> MediaDescription:
        """
        Answer offered stream C{index} with C{media} as given.

        @raise ValueError: C{media} changes the media type or transport,
            enables a stream the offer disabled, has no formats or a
            direction the offered one does not allow.
        """
        offered = self._offered(index)
        if (media.media.lower() != offered.media.lower()
                or media.proto.lower() != offered.proto.lower()):
            raise ValueError(
                f"stream {index} was offered as {offered.media} "
                f"{offered.proto}, not {media.media} {media.proto}")
        if offered.port == 0 and media.port != 0:
            raise ValueError(f"stream {index} is disabled in the offer")
        if not media.formats:
            raise ValueError("a media description needs a format")
        wanted = media.direction
        if wanted is not None and media.port != 0:
            offered_direction = self.offer.direction_of(index)
            if wanted not in _ALLOWED_DIRECTIONS[offered_direction]:
                raise ValueError(
                    f"cannot answer {offered_direction} with {wanted}")
        self._streams[index] = media
        return media

    def decline(self, index: int) -> MediaDescription:
        """
        Decline offered stream C{index}: port 0 with the offered media
        type, transport and formats (and their rtpmap lines), as RFC 3264
        section 6 requires.
        """
        offered = self._offered(index)
        rtpmaps = [("rtpmap", value) for name, value in offered.attributes
                   if name == "rtpmap" and value
                   and value.split(" ", 1)[0] in offered.formats]
        media = _media(offered.media, 0, offered.proto, list(offered.formats),
                       None, None, [], [], None, rtpmaps, [], [])
        self._streams[index] = media
        return media

    def build(self) -> SessionDescription:
        """
        The answer: one m= line per offered stream, in the offer's order,
        and the offer's t= lines.

        @raise NotAcceptable: the offer has streams and none was accepted.
        """
        media = []
        accepted = False
        streams = self._streams
        for index in range(len(self.offer.media)):
            if index not in streams:
                log.debug("Declining unanswered stream {index}", index=index)
                self.decline(index)
            stream = streams[index].copy()
            accepted = accepted or stream.port != 0
            media.append(stream)
        if media and not accepted:
            raise NotAcceptable("no offered stream was accepted")
        answer = _session(
            0, self.origin, self.session_name, None, None, [], [],
            self.connection, [], [t.copy() for t in self.offer.times], [],
            None, list(self.attributes), media, [])
        if self.previous is not None:
            answer = revise_session(self.previous, answer)
        return answer


def revise_session(previous: SessionDescription,
                   updated: SessionDescription) -> SessionDescription:
    """
    Apply RFC 3264 section 8 to a new offer (or answer) in an existing
    session: the o= line stays the previous one, its version incremented
    by one if anything else changed, unchanged otherwise.

    @return: a copy of C{updated} with the right origin.
    @raise ValueError: C{updated} has fewer m= lines than C{previous}.
    """
    if len(updated.media) < len(previous.media):
        raise ValueError("a new offer cannot remove m= lines; "
                         "disable streams with port 0 instead")
    revised = updated.copy()
    revised.origin = previous.origin
    if revised != previous:
        revised.origin = previous.origin.next_version()
    return revised


def check_answer(offer: SessionDescription,
                 answer: SessionDescription) -> None:
    """
    Check that C{answer} answers C{offer} (RFC 3264 section 6) and accepts
    at least one stream: as many m= lines, in order, each with the offered
    media type and transport, none enabling a stream the offer disabled.

    @raise NotAcceptable: naming what is wrong.
    """
    if len(answer.media) != len(offer.media):
        raise NotAcceptable(f"the answer has {len(answer.media)} m= lines, "
                            f"the offer {len(offer.media)}")
    for index, (offered, answered) in enumerate(zip(offer.media, answer.media)):
        if (answered.media.lower() != offered.media.lower()
                or answered.proto.lower() != offered.proto.lower()):
            raise NotAcceptable(
                f"stream {index} was offered as {offered.media} "
                f"{offered.proto}, answered as {answered.media} "
                f"{answered.proto}")
        if offered.port == 0 and answered.port != 0:
            raise NotAcceptable(f"stream {index} is disabled in the offer")
    if offer.media and all(m.port == 0 for m in answer.media):
        raise NotAcceptable("the answer accepts no stream")


# -- jabber chat media (draft-sparks-simple-jabber-sessions) -----------------


@dataclass(frozen=True)
class JabberChat:
    """
    A jabber chat stream: C{m=message <port> xmpp/tcp chat}.

    @ivar jid: the peer's JID (C{a=jid:}).
    @ivar thread: the chat's thread (C{a=thread:}), if given.
    @ivar host: the jabber server from the stream's or the session's c=.
    @ivar port: the jabber server's port from the m= line.
    @ivar index: the stream's position among the m= lines.
    """

    jid: str
    thread: str | None
    host: str | None
    port: int
    index: int


def is_chat_media(media: MediaDescription) -> bool:
    """Whether C{media} is an C{m=message ... xmpp/tcp chat} stream."""
    if (media.media.lower() != "message"
            or media.proto.lower() != "xmpp/tcp"):
        return False
    for fmt in media.formats:
        if fmt.lower() == "chat":
            return True
    return False


def jabber_chats(sdp: SessionDescription, *,
                 include_rejected: bool = False) -> list[JabberChat]:
    """
    The jabber chat streams of C{sdp} that carry an C{a=jid:}, in order.
    Disabled (port 0) streams are left out unless C{include_rejected}.
    """
    chats = []
    for index, media in enumerate(sdp.media):
        if not is_chat_media(media):
            continue
        if media.port == 0 and not include_rejected:
            continue
        jid = media.attribute("jid")
        if not jid:
            log.debug("Ignoring chat stream {index} without a=jid",
                      index=index)
            continue
        connection = sdp.connection_for(index)
        chats.append(_jabber_chat(
            jid, media.attribute("thread"),
            connection.host if connection else None, media.port, index))
    return chats


def chat_media(jid: str, thread: str | None, port: int,
               host: str | None = None, *,
               draft_layout: bool = False) -> MediaDescription:
    """
    A jabber chat stream: C{m=message <port> xmpp/tcp chat}, C{a=jid:} and,
    if given, C{a=thread:}; C{host} becomes the stream's c= line.

    @param draft_layout: write C{c=} and C{t=0 0} before the m= line, as
        the draft's example does (RFC 4566 parsers will reject that).
    """
    attributes: list[Attribute] = [("jid", jid)]
    if thread is not None:
        attributes.append(("thread", thread))
    return _media(
        "message", port, "xmpp/tcp", ["chat"], None, None,
        [] if host is None else [Connection.for_address(host)], [], None,
        attributes, [_timing(0, 0, [])] if draft_layout else [], [])


def answer_chat(offered: JabberChat, jid: str, *, with_thread: bool = True,
                host: str | None = None, port: int | None = None,
                draft_layout: bool = False) -> MediaDescription:
    """
    The answer to an offered chat stream, for L{OfferAnswer.modify}: our
    C{jid}, the offered thread, and (as in the draft's example) the
    offered jabber server unless C{host}/C{port} name another.
    """
    return chat_media(jid, offered.thread if with_thread else None,
                      offered.port if port is None else port,
                      offered.host if host is None else host,
                      draft_layout=draft_layout)
