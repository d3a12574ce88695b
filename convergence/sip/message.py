# -*- test-case-name: tests.test_sip_message -*-
"""SIP messages: parsing (RFC 3261 section 7), typed views, serialization.

L{parse_message} turns one complete message (a datagram, or what
L{convergence.sip.framing.StreamFramer} cut from a stream) into a
L{Request} or L{Response}.  Header values are kept raw in L{Headers};
only what every message needs — the top Via, From, To, Call-ID and CSeq —
is parsed up front, to validate the message.  Every other typed view
(``contacts``, ``routes``, ``vias`` …) is parsed on first access and
cached until the headers change (``Headers.version``).  The typed values
are read-only views, shared by every message that carries the same text
(as is a received request's URI): to change a header, set its string, e.g.
``msg.headers.set("Contact", str(addr))``; to change a value, ``copy()``
it first.

A message that breaks the rules raises L{SipParseError}.  Its ``reason``
is fit for a status line and ``status`` is the code to answer with; when
the request carried what a response needs (Via, From, To, Call-ID, CSeq),
``partial`` is that request so the caller can answer it.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, TypeVar

from convergence.sip.headers import INDEXED, VIEWS_OF, Headers, checked_name, split_list
from convergence.sip.uri import (
    AbsoluteUri,
    NameAddr,
    SipUri,
    SipUriError,
    Via,
    parse_uri,
    shared_name_addr,
    shared_uri,
)

__all__ = [
    "REASONS", "Message", "Request", "Response", "SipParseError",
    "make_request", "parse_message",
]

VERSION = "SIP/2.0"
DEFAULT_MAX_FORWARDS = 70

REASONS: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded",
    182: "Queued", 183: "Session Progress", 199: "Early Dialog Terminated",
    200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently",
    302: "Moved Temporarily", 305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Timeout", 410: "Gone", 412: "Conditional Request Failed",
    413: "Request Entity Too Large", 414: "Request-URI Too Long",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme",
    417: "Unknown Resource-Priority", 420: "Bad Extension",
    421: "Extension Required", 422: "Session Interval Too Small",
    423: "Interval Too Brief", 428: "Use Identity Header",
    429: "Provide Referrer Identity", 433: "Anonymity Disallowed",
    436: "Bad Identity-Info", 437: "Unsupported Certificate",
    438: "Invalid Identity Header", 439: "First Hop Lacks Outbound Support",
    440: "Max-Breadth Exceeded", 470: "Consent Needed",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete",
    485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending",
    493: "Undecipherable", 494: "Security Agreement Required",
    500: "Server Internal Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Server Time-out",
    505: "Version Not Supported", 513: "Message Too Large",
    580: "Precondition Failure", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
    607: "Unwanted", 608: "Rejected",
}

_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
# Control characters RFC 3261 25.1 allows nowhere in a header block (HTAB,
# and CR and LF as line ends, aside): found with _NOT_CTL, named with this.
_CTL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: The blank line that ends a header block, after CRLF or bare LF line ends
#: (from its line's LF to the body): the first one is the end.
HEADER_END = re.compile(rb"\n\r?\n")
#: Every byte but those: what bytes.translate deletes to find them.
_NOT_CTL = bytes(b for b in range(256) if not _CTL.match(chr(b)))
# What create_response copies (RFC 3261 8.2.6.2).
_RESPONSE_COPIED = frozenset(("Via", "From", "To", "Call-ID", "CSeq"))
#: What a 100 (Trying) copies: those and Timestamp (RFC 3261 8.2.6.1).
_TRYING_COPIED = _RESPONSE_COPIED | {"Timestamp"}


class SipParseError(ValueError):
    """A message breaks the SIP grammar or rules.

    @ivar reason: a short phrase for the status line ("Missing Call-ID").
    @ivar status: the status code to answer a request with (400 or 505).
    @ivar partial: for a request carrying Via, From, To, Call-ID and CSeq,
        the request (only fit for C{create_response}), else None.
    @ivar request_line_ok: True if the Request-Line parsed.
    """

    def __init__(self, reason: str, partial: Request | None = None,
                 status: int = 400, request_line_ok: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.partial = partial
        self.status = status
        self.request_line_ok = request_line_ok


T = TypeVar("T")


#: The header each cached view is computed from (see L{_view}).
_VIEW_HEADERS: dict[str, str] = {}


def _view(header: str) -> Callable[[Callable[[Message], T]], property]:
    """A property computed from C{header}'s lines once, until they change
    (kept in the headers' C{views}, which an edit of C{header} clears)."""

    def decorate(compute: Callable[[Message], T]) -> property:
        key = compute.__name__
        _VIEW_HEADERS[key] = header
        VIEWS_OF.setdefault(header, []).append(key)

        def getter(self: Message) -> T:
            views = self.headers.views
            try:
                return views[key]  # type: ignore[return-value]
            except KeyError:
                value = views[key] = compute(self)
                return value

        getter.__doc__ = compute.__doc__
        return property(getter)

    return decorate


def _parse_name_addrs(values: list[str], what: str) -> list[NameAddr]:
    try:
        return [shared_name_addr(value) for value in values]
    except SipUriError:
        raise SipParseError(f"Bad {what}") from None


#: CSeq values parsed (the same few come in message after message).
_CSEQS: dict[str, tuple[int, str]] = {}


def _parse_cseq(value: str) -> tuple[int, str]:
    known = _CSEQS.get(value)
    if known is not None:
        return known
    parsed = _parse_cseq_text(value)
    if len(_CSEQS) >= 1024:
        _CSEQS.clear()
    _CSEQS[value] = parsed
    return parsed


def _parse_cseq_text(value: str) -> tuple[int, str]:
    parts = value.split()
    if len(parts) != 2:
        raise SipParseError("Bad CSeq")
    number, method = parts
    if not (number.isascii() and number.isdigit()) or len(number) > 10 \
            or int(number) >= 2 ** 31 or not _TOKEN.match(method):
        raise SipParseError("Bad CSeq")
    return int(number), method


#: Max-Forwards values parsed, by text (70 in nearly every request).
_FORWARDS: dict[str, int] = {}


def _parse_small_int(value: str, what: str, limit: int) -> int:
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise SipParseError(f"Bad {what}")
    number = int(value)
    if number > limit:
        raise SipParseError(f"Bad {what}")
    return number


def _single(headers: Headers, name: str) -> str:
    lines = headers.get_lines(name)
    if not lines:
        raise SipParseError(f"Missing {name}")
    if len(lines) > 1:
        raise SipParseError(f"Multiple {name} headers")
    return lines[0]


class Message:
    """What requests and responses share: headers and a body."""

    version = VERSION

    def __init__(self, headers: Headers | None = None,
                 body: bytes = b"") -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body

    def start_line(self) -> str:
        """The Request-Line or Status-Line, without CRLF."""
        raise NotImplementedError()

    def serialize(self) -> bytes:
        """The message on the wire, Content-Length set to the body's."""
        body = self.body
        length = f"Content-Length: {len(body)}"
        lines = [self.start_line()]
        append = lines.append
        written = False
        for name, value in self.headers._items:
            if name == "Content-Length":  # the first one, with the body's length
                if not written:
                    append(length)
                    written = True
                continue
            append(f"{name}: {value}")
        if not written:
            append(length)
        append("\r\n")  # the blank line, after the last line's CRLF
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + body

    def set_top_via(self, via: Via | str) -> None:
        """Replace the topmost Via value (say, to add ``received``)."""
        lines = self.headers.get_lines("Via")
        if not lines:
            self.headers.add("Via", str(via), first=True)
            return
        values = split_list(lines[0])
        values[0:1] = [str(via)]
        self.headers.set_line("Via", ", ".join(values))

    def set_to_tag(self, tag: str) -> None:
        """Rewrite the To header with ``tag`` (for the UAS side).

        The parsed To view is updated with the tag rather than parsed
        again from the new text."""
        to = self.to
        if to.tag is not None:
            to = to.copy()
            to.tag = tag
            self.headers.set("To", str(to))
            return
        tagged = NameAddr.__new__(NameAddr)
        tagged.uri, tagged.display_name = to.uri, to.display_name
        tagged.params = {**to.params, "tag": tag}
        # The To as received, with the tag appended (RFC 3261 8.2.6.2):
        # header parameters come last in both name-addr and addr-spec.
        line = self.headers.get("To")
        self.headers.set("To", f"{line};tag={tag}" if line is not None else str(tagged))
        self.headers.views["to"] = tagged

    def _copy_into(self, other: Message) -> None:
        other.headers = self.headers.copy()
        other.body = self.body

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Message)
        return (self.start_line() == other.start_line()
                and self.headers == other.headers and self.body == other.body)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.start_line()!r}>"

    @_view("Via")
    def vias(self) -> list[Via]:
        """Every Via entry, topmost first."""
        try:
            return [Via.parse(value) for value in self.headers.get_all("Via")]
        except SipUriError:
            raise SipParseError("Bad Via") from None

    @_view("Via")
    def top_via(self) -> Via:
        """The topmost Via entry (parsing only that one)."""
        first = self.headers.get("Via")
        if first is None:
            raise SipParseError("Missing Via")
        try:
            return Via.parse(split_list(first)[0])
        except (SipUriError, IndexError):
            raise SipParseError("Bad Via") from None

    @_view("From")
    def from_(self) -> NameAddr:
        """The From header."""
        return _parse_name_addrs([_single(self.headers, "From")], "From")[0]

    @_view("To")
    def to(self) -> NameAddr:
        """The To header."""
        return _parse_name_addrs([_single(self.headers, "To")], "To")[0]

    @_view("Call-ID")
    def call_id(self) -> str:
        """The Call-ID."""
        value = _single(self.headers, "Call-ID").strip()
        if not value:
            raise SipParseError("Bad Call-ID")
        return value

    @_view("CSeq")
    def cseq(self) -> tuple[int, str]:
        """``(sequence number, method)``."""
        return _parse_cseq(_single(self.headers, "CSeq"))

    @_view("Max-Forwards")
    def max_forwards(self) -> int | None:
        """Max-Forwards; 70 for a request without one, None for a response."""
        value = self.headers.get("Max-Forwards")
        if value is None:
            return DEFAULT_MAX_FORWARDS if isinstance(self, Request) else None
        return _parse_small_int(value, "Max-Forwards", 255)

    @_view("Contact")
    def contacts(self) -> list[NameAddr]:
        """Every Contact (empty for ``Contact: *``)."""
        values = self.headers.get_all("Contact")
        if "*" in values:
            if len(values) > 1:
                raise SipParseError("Bad Contact")
            return []
        return _parse_name_addrs(values, "Contact")

    @property
    def is_wildcard_contact(self) -> bool:
        """True for ``Contact: *`` (a REGISTER removing every binding)."""
        return self.headers.get_all("Contact") == ["*"]

    @_view("Content-Type")
    def content_type(self) -> str | None:
        """The media type, lower-cased, without parameters (or None)."""
        value = self.headers.get("Content-Type")
        if value is None:
            return None
        return value.partition(";")[0].strip().lower() or None

    @_view("Expires")
    def expires(self) -> int | None:
        """The Expires header in seconds (capped at 2**32-1), or None."""
        value = self.headers.get("Expires")
        if value is None:
            return None
        value = value.strip()
        if not (value.isascii() and value.isdigit()):
            raise SipParseError("Bad Expires")
        if len(value.lstrip("0")) > 10:  # capped (int() refuses 4300+)
            return 2 ** 32 - 1
        return min(int(value), 2 ** 32 - 1)

    @_view("Require")
    def require(self) -> list[str]:
        """Option tags of Require."""
        return self.headers.get_all("Require")

    @_view("Supported")
    def supported(self) -> list[str]:
        """Option tags of Supported."""
        return self.headers.get_all("Supported")

    @_view("Route")
    def routes(self) -> list[NameAddr]:
        """Route entries, in order."""
        return _parse_name_addrs(self.headers.get_all("Route"), "Route")

    @_view("Record-Route")
    def record_routes(self) -> list[NameAddr]:
        """Record-Route entries, in order."""
        return _parse_name_addrs(self.headers.get_all("Record-Route"),
                                 "Record-Route")


#: The views a response copies with its copied headers' lines.
_RESPONSE_VIEWS = frozenset(key for key, header in _VIEW_HEADERS.items()
                            if header in _RESPONSE_COPIED)


class Request(Message):
    """A SIP request.  ``uri`` is a L{SipUri} or, for other schemes, an
    L{AbsoluteUri}."""

    def __init__(self, method: str, uri: SipUri | AbsoluteUri,
                 headers: Headers | None = None, body: bytes = b"") -> None:
        super().__init__(headers, body)
        self.method = method
        self.uri = uri

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {VERSION}"

    def copy(self) -> Request:
        """An independent copy (headers, URI)."""
        other = Request(self.method, self.uri.copy())
        self._copy_into(other)
        return other

    def create_response(self, status: int,
                        reason: str | None = None) -> Response:
        """A response per RFC 3261 8.2.6: Via, From, To, Call-ID and CSeq
        copied as received (plus Timestamp for 100).  The caller adds the
        To tag (L{Message.set_to_tag}) and, for a dialog, Record-Route and
        Contact."""
        copied = _RESPONSE_COPIED if status != 100 else _TRYING_COPIED
        items = [item for item in self.headers._items if item[0] in copied]
        # The copied headers' parsed views hold for the response too.
        views = {key: value for key, value in self.headers.views.items()
                 if key in _RESPONSE_VIEWS}
        response = Response(status, reason, Headers.from_canonical(items, views=views))
        return response


class Response(Message):
    """A SIP response."""

    def __init__(self, status: int, reason: str | None = None,
                 headers: Headers | None = None, body: bytes = b"") -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = REASONS.get(status, "") if reason is None else reason

    def start_line(self) -> str:
        return f"{VERSION} {self.status} {self.reason}"

    def copy(self) -> Response:
        """An independent copy."""
        other = Response(self.status, self.reason)
        self._copy_into(other)
        return other


def make_request(method: str, uri: SipUri | AbsoluteUri | str,
                 from_: NameAddr | str, to: NameAddr | str, call_id: str,
                 cseq: int, via: Via | str | Iterable[Via | str], *,
                 max_forwards: int = DEFAULT_MAX_FORWARDS,
                 contact: NameAddr | str | None = None,
                 headers: Iterable[tuple[str, str]] = (),
                 body: bytes = b"",
                 content_type: str | None = None) -> Request:
    """Build a request with the mandatory headers of RFC 3261 8.1.1.

    ``via`` is one Via or several, topmost first; ``headers`` are extra
    ``(name, value)`` pairs appended in order.
    """
    if isinstance(uri, str):
        uri = parse_uri(uri)
    vias = [via] if isinstance(via, (Via, str)) else list(via)
    items = [("Via", str(value)) for value in vias]
    items += [
        ("Max-Forwards", str(max_forwards)),
        ("To", str(to)),
        ("From", str(from_)),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"),
    ]
    if contact is not None:
        items.append(("Contact", str(contact)))
    if content_type is not None:
        items.append(("Content-Type", content_type))
    request = Request(method, uri, Headers(items), body)
    for name, value in headers:
        request.headers.add(name, value)
    return request


def _split_head(data: bytes) -> tuple[bytes, int]:
    """Find the header block; return it, and where the body starts.

    Leading CRLFs are skipped; a blank line ends the headers, with CRLF or
    bare LF line ends; without one everything is headers.  The block ends
    before the line end of its last line (or before a CR there).
    """
    start = 0
    n = len(data)
    while start < n and data[start] in b"\r\n":
        start += 1
    if start == n:
        raise SipParseError("Empty message")
    blank = HEADER_END.search(data, start)
    if blank is not None:
        end, body_start = blank.span()
    else:
        end = body_start = n
    if end > start and data[end - 1] == 13:  # CR
        end -= 1
    return data[start:end], body_start


def _parse_start_line(line: str) -> tuple[Message, str | None, int]:
    """Build an empty message from its start line; return it, and the
    problem (and its status code) that still lets the request be
    answered."""
    if line[:4].upper() == "SIP/":
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if version.upper() != VERSION:
            raise SipParseError("Version Not Supported", status=505)
        if len(code) != 3 or not (code.isascii() and code.isdigit()) \
                or not "1" <= code[0] <= "6":
            raise SipParseError("Bad Status-Line")
        response = Response.__new__(Response)  # headers and body set by the parser
        response.status, response.reason = int(code), reason
        return response, None, 400
    method, _, rest = line.partition(" ")
    uri_text, space, version = rest.partition(" ")
    if not space or not uri_text or not version or " " in version \
            or not _TOKEN.match(method) \
            or version[:4].upper() != "SIP/":
        raise SipParseError("Bad Request-Line")
    problem = None
    try:
        uri: SipUri | AbsoluteUri = shared_uri(uri_text)
    except SipUriError:
        uri = AbsoluteUri("", uri_text)
        problem = "Bad Request-URI"
    request = Request.__new__(Request)  # headers and body set by the parser
    request.method, request.uri = method, uri
    if version.upper() != VERSION:
        return request, "Version Not Supported", 505
    return request, problem, 400


#: Header lines parsed before, as their C{(canonical name, value)} item:
#: most lines (CSeq, Contact, Max-Forwards, Content-Type …) come again in
#: message after message.  Bounded: started afresh when full, and a line
#: longer than L{_LINE_CACHED_LENGTH} is not kept.
_LINES: dict[str, tuple[str, str]] = {}
_LINE_CACHE_SIZE = 4096
_LINE_CACHED_LENGTH = 200


def _parse_header_lines(lines: list[str], found: dict[str, list[str]] | None = None
                        ) -> tuple[list[tuple[str, str]], str | None]:
    """Unfold and split header lines; return the items and a problem.

    With C{found}, the values of the headers every message needs and the
    typed views read (L{INDEXED}) are also collected there, by name."""
    items: list[tuple[str, str]] = []
    append = items.append
    problem = None
    folded = False
    for line in lines:
        item = _LINES.get(line)
        if item is None:  # not seen before: split and check it
            if not line:
                continue
            first = line[0]
            if first == " " or first == "\t":
                if not items:
                    problem = problem or "Malformed header line"
                    continue
                name, value = items[-1]
                more = line.strip()
                if more:
                    items[-1] = (name, f"{value} {more}" if value else more)
                    folded = True
                continue
            raw_name, colon, value = line.partition(":")
            if not colon:
                problem = problem or "Header line without colon"
                continue
            name = checked_name(raw_name)
            if name is None:
                problem = problem or "Bad header name"
                continue
            item = (name, value.strip())
            if len(line) <= _LINE_CACHED_LENGTH:
                if len(_LINES) >= _LINE_CACHE_SIZE:
                    _LINES.clear()
                _LINES[line] = item
        append(item)
        name = item[0]
        if found is not None and name in INDEXED:
            known = found.get(name)
            if known is None:
                found[name] = [item[1]]
            else:
                known.append(item[1])
    if folded and found is not None:  # values changed after they were collected
        found.clear()
        for name, value in items:
            if name in INDEXED:
                found.setdefault(name, []).append(value)
    return items, problem


def _control_problem(head: str, position: int) -> str:
    """The reason for a control character at C{position} of C{head}
    (lines joined by LF): it names the header, or the start line."""
    kind = "NUL" if head[position] == "\x00" else "Control character"
    start = head.rfind("\n", 0, position) + 1
    while start > 0 and head[start] in " \t":  # a folded line: its header
        start = head.rfind("\n", 0, start - 1) + 1
    if start == 0:
        return f"{kind} in Request-Line"
    end = head.find("\n", start)
    name, colon, _ = head[start:end if end >= 0 else len(head)].partition(":")
    header = checked_name(name) if colon else None
    return f"{kind} in {header} header" if header else "Bad header name"


def _parse_mandatory(found: dict[str, list[str]]) -> dict[str, object]:
    """Parse what every message needs (the typed views' cache entries);
    raise L{SipParseError} if the message cannot be answered."""
    vias = found.get("Via")
    froms = found.get("From")
    tos = found.get("To")
    call_ids = found.get("Call-ID")
    cseqs = found.get("CSeq")
    if not (vias and froms and tos and call_ids and cseqs) or len(froms) > 1 \
            or len(tos) > 1 or len(call_ids) > 1 or len(cseqs) > 1:
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            lines = found.get(name)
            if not lines:
                raise SipParseError(f"Missing {name}")
            if len(lines) > 1 and name != "Via":
                raise SipParseError(f"Multiple {name} headers")
    via = vias[0]  # type: ignore[index]
    if "," in via:
        values = split_list(via)
        via = values[0] if values else ""
    try:
        top_via = Via.parse(via)
    except SipUriError:
        raise SipParseError("Bad Via") from None
    call_id = call_ids[0]  # type: ignore[index]
    if not call_id:
        raise SipParseError("Bad Call-ID")
    return {
        "top_via": top_via,
        "from_": _parse_name_addrs(froms, "From")[0],  # type: ignore[arg-type]
        "to": _parse_name_addrs(tos, "To")[0],  # type: ignore[arg-type]
        "call_id": call_id,
        "cseq": _parse_cseq(cseqs[0]),  # type: ignore[index]
    }


#: The Content-Length lines of a message without a body.
_NO_BODY = ["0"]


def _body(data: bytes, body_start: int, lengths: list[str] | None,
          exact: bool = False) -> tuple[bytes, str | None]:
    """The body as Content-Length says, and a problem if it cannot (with
    C{exact}, also when bytes follow it)."""
    if not lengths:
        return data[body_start:], None
    if lengths == _NO_BODY:  # ACK, BYE, most responses
        if exact and len(data) > body_start:
            return data[body_start:], "Content-Length mismatch"
        return b"", None
    if len(set(lengths)) != 1 or not (lengths[0].isascii()
                                      and lengths[0].isdigit()):
        return data[body_start:], "Bad Content-Length"
    # More than 18 significant digits is longer than any datagram (and
    # int() refuses over 4300).
    if len(lengths[0].lstrip("0")) > 18:
        return data[body_start:], "Content-Length mismatch"
    length = int(lengths[0])
    left = len(data) - body_start
    if left < length or (exact and left > length):
        return data[body_start:], "Content-Length mismatch"
    return data[body_start:body_start + length], None


def parse_message(data: bytes, exact_length: bool = False) -> Request | Response:
    """Parse one complete SIP message (RFC 3261 section 7).

    A Content-Length longer than the data is an error ("Content-Length
    mismatch"); bytes past it are dropped, or with C{exact_length} (a
    WebSocket message, RFC 7118 section 5) are the same error; without
    Content-Length the rest of the data is the body (datagram rule).
    """
    raw, body_start = _split_head(data)
    head = raw.decode("utf-8", "surrogateescape")
    problem = None
    lines = head.split("\r\n")
    ends = len(lines) - 1
    if head.count("\n") != ends or head.count("\r") != ends:  # not all CRLF
        head = head.replace("\r\n", "\n")
        if "\r" in head:
            problem = "Bare CR in header"
        lines = head.split("\n")
    if raw.translate(None, _NOT_CTL):  # a control character (rare)
        control = _CTL.search(head)
        assert control is not None
        problem = problem or _control_problem(head, control.start())
    message, start_problem, status = _parse_start_line(lines[0])
    problem = start_problem or problem
    found: dict[str, list[str]] = {}
    del lines[0]
    items, header_problem = _parse_header_lines(lines, found)
    problem = problem or header_problem
    headers = message.headers = Headers.from_canonical(items, found)
    request = message if isinstance(message, Request) else None
    line_ok = request is not None and start_problem is None

    message.body, body_problem = _body(data, body_start,
                                       found.get("Content-Length"), exact_length)
    problem = problem or body_problem
    try:
        views = headers.views = _parse_mandatory(found)
    except SipParseError as e:
        raise SipParseError(problem or e.reason,
                            request_line_ok=line_ok) from None
    if request is not None and problem is None:
        if views["cseq"][1] != request.method:  # type: ignore
            problem = "CSeq method mismatch"
        else:
            forwards = found.get("Max-Forwards")
            if forwards is None:
                views["max_forwards"] = DEFAULT_MAX_FORWARDS
            else:
                number = _FORWARDS.get(forwards[0])
                if number is None:
                    try:
                        number = _parse_small_int(forwards[0], "Max-Forwards", 255)
                    except SipParseError as e:
                        problem = e.reason
                    else:
                        if len(_FORWARDS) < 1024:
                            _FORWARDS[forwards[0]] = number
                views["max_forwards"] = number
    if problem is not None:
        status = status if problem == start_problem else 400
        raise SipParseError(problem, request, status, line_ok)
    return message
