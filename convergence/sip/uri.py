# -*- test-case-name: tests.test_sip_uri -*-
"""SIP addresses: URIs (RFC 3261 19.1), name-addr values and Via entries.

* L{SipUri} holds a ``sip:``/``sips:`` URI with every escape
  resolved; ``str()`` escapes again, so parse and serialize round-trip in
  meaning (``sip:%61lice@x`` comes back as ``sip:alice@x``).  Equality is
  the comparison of RFC 3261 19.1.4.
* L{AbsoluteUri} is any other ``scheme:opaque`` URI (``tel:``, …),
  kept verbatim: enough for the UA core to answer 416.
* L{NameAddr} is the value of From, To, Contact, Route,
  Record-Route, Refer-To …: display name, URI and header parameters.
* L{Via} is one entry of a Via header field.

Header parameter values are kept as written; a quoted value keeps its
quotes, so it serializes unchanged.  Everything is parsed with string
methods and linear character-class patterns: no backtracking traps.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable
from urllib.parse import quote, unquote

__all__ = [
    "AbsoluteUri", "NameAddr", "SipUri", "SipUriError", "Via",
    "parse_params", "parse_uri", "shared_name_addr", "shared_uri",
]


class SipUriError(ValueError):
    """A URI, name-addr or Via value does not follow the grammar."""


# Characters never allowed in a URI as written, and '%' not followed by
# two hex digits.  Non-ASCII characters are tolerated.
_INVALID = re.compile(r'[\x00-\x20\x7f<>"]|%(?![0-9A-Fa-f]{2})')
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*\Z")
_HOSTNAME = re.compile(r"[A-Za-z0-9\-._]+\Z")
# RFC 3261 25.1 token.
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
# Anything that cannot appear in an unquoted generic-param value.
_BAD_VALUE = re.compile(r'[\x00-\x20\x7f;,"<>=]')

# Characters str() leaves unescaped, beyond quote()'s "A-Za-z0-9_.-~".
_USER_SAFE = "!*'()&=+$,;?/"
_PASSWORD_SAFE = "!*'()&=+$,"
_PARAM_SAFE = "!*'()[]/:&+$"
_HEADER_SAFE = "!*'()[]/?:+$"

# URI parameters that must match if either URI has them (RFC 3261 19.1.4).
_MUST_MATCH = ("user", "ttl", "method", "maddr", "transport")
_MISSING = object()


def _unescape(text: str) -> str:
    """Resolve %XX escapes; bytes that are not UTF-8 survive as surrogates."""
    if "%" not in text:
        return text
    return unquote(text, errors="surrogateescape")


# Text no _escape() changes, whatever its ``safe``: the unreserved set.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.\-~]*\Z")


def _escape(text: str, safe: str) -> str:
    """Escape every character outside ``safe`` and the unreserved set."""
    if _UNRESERVED.match(text):
        return text
    return quote(text, safe=safe, errors="surrogateescape")


def _fold(value: str | None) -> str | None:
    """Case-fold a parameter value for comparison."""
    return value.lower() if value is not None else None


@functools.lru_cache(maxsize=4096)
def _split_hostport(text: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` (IPv6 references in brackets); lower-case host.

    Cached: the same few hosts come in every message (an error is raised
    again each time, never cached)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipUriError(f"unterminated IPv6 reference: {text!r}")
        host = text[:end + 1]
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise SipUriError(f"bad IPv6 reference: {text!r}") from None
        rest = text[end + 1:]
        if rest and rest[0] != ":":
            raise SipUriError(f"bad host: {text!r}")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text = text.partition(":")
        if not _HOSTNAME.match(host):
            raise SipUriError(f"bad host: {text!r}")
        if not colon:
            port_text = None
    port = None
    if port_text is not None:
        if not (port_text.isascii() and port_text.isdigit()) \
                or len(port_text) > 5 or int(port_text) > 65535:
            raise SipUriError(f"bad port: {text!r}")
        port = int(port_text)
    return host.lower(), port


def _format_hostport(host: str, port: int | None) -> str:
    return host if port is None else f"{host}:{port}"


def _skip_ws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    return i


def _read_quoted(text: str, i: int) -> tuple[str, int]:
    """Read the quoted-string at ``text[i]``; return its content and end."""
    out = []
    j = i + 1
    end = text.find('"', j)
    while True:
        if end < 0:
            raise SipUriError(f"unterminated quoted string: {text!r}")
        backslash = text.find("\\", j, end)
        if backslash < 0:
            out.append(text[j:end])
            return "".join(out), end + 1
        out.append(text[j:backslash])
        out.append(text[backslash + 1])
        j = backslash + 2
        if j > end:     # the quote was escaped: look further (linear)
            end = text.find('"', j)


#: Lower-case parameter names every message carries (tokens already, so
#: L{parse_params} skips their name check).
_COMMON_PARAMS = frozenset(("branch", "tag", "received", "rport", "transport",
                            "expires", "q", "maddr", "ttl", "user", "method"))


def _param(params: dict[str, str | None], name: str,
           value: str | None) -> None:
    if not _TOKEN.match(name):
        raise SipUriError(f"bad parameter name: {name!r}")
    if value is not None and (not value or _BAD_VALUE.search(value)):
        raise SipUriError(f"bad value for parameter {name!r}: {value!r}")
    params[name.lower()] = value


def parse_params(text: str, start: int = 0) -> dict[str, str | None]:
    """Parse ``*( SEMI generic-param )`` from ``text[start:]``.

    Names are lower-cased; a parameter without ``=`` maps to None; a
    quoted value keeps its quotes.
    """
    params: dict[str, str | None] = {}
    rest = text[start:]
    if '"' not in rest:
        rest = rest.strip()
        if not rest:
            return params
        if rest[0] != ";":
            raise SipUriError(f"expected ';' before parameters: {text!r}")
        for part in rest[1:].split(";"):
            name, eq, value = part.partition("=")
            name = name.strip()
            if eq:
                value = value.strip()
                if name in _COMMON_PARAMS and value and not _BAD_VALUE.search(value):
                    params[name] = value  # _param's checks, name known good
                    continue
                _param(params, name, value)
            else:
                _param(params, name, None)
        return params
    n = len(text)
    i = _skip_ws(text, start)
    while i < n:
        if text[i] != ";":
            raise SipUriError(f"expected ';' before parameters: {text!r}")
        j = i + 1
        while j < n and text[j] not in "=;":
            j += 1
        name = text[i + 1:j].strip()
        if j < n and text[j] == "=":
            k = _skip_ws(text, j + 1)
            if k < n and text[k] == '"':
                _, end = _read_quoted(text, k)
                params[name.lower()] = text[k:end]
                if not _TOKEN.match(name):
                    raise SipUriError(f"bad parameter name: {name!r}")
                i = _skip_ws(text, end)
                continue
            end = text.find(";", k)
            end = n if end < 0 else end
            _param(params, name, text[k:end].strip())
            i = end
        else:
            _param(params, name, None)
            i = j
    return params


def format_params(params: dict[str, str | None]) -> str:
    """Serialize header parameters as ``;name=value`` pairs."""
    return "".join(f";{name}" if value is None else f";{name}={value}"
                   for name, value in params.items())


@dataclass(eq=False)
class AbsoluteUri:
    """A URI of a scheme other than sip/sips, kept as written.

    @ivar scheme: lower-cased scheme name (``tel``, ``mailto``, …); empty
        only for the unparseable Request-URI of a
        L{convergence.sip.message.SipParseError}'s partial request.
    @ivar opaque: everything after the first colon (all of it if there
        is no scheme).
    """

    scheme: str
    opaque: str

    @property
    def user(self) -> str | None:
        """The number of a ``tel:`` URI (before any parameter), else None."""
        if self.scheme != "tel":
            return None
        return self.opaque.partition(";")[0]

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}" if self.scheme else self.opaque

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AbsoluteUri):
            return NotImplemented
        return (self.scheme.lower() == other.scheme.lower()
                and self.opaque == other.opaque)

    def __hash__(self) -> int:
        return hash((self.scheme.lower(), self.opaque))

    def copy(self) -> AbsoluteUri:
        """An equal, independent copy."""
        return AbsoluteUri(self.scheme, self.opaque)


@dataclass(eq=False)
class SipUri:
    """A ``sip:`` or ``sips:`` URI with escapes resolved.

    ``params`` and ``headers`` keep their order; parameter names are
    lower-cased, a parameter without a value (``;lr``) maps to None.
    Equality follows RFC 3261 19.1.4; the hash only covers the parts that
    must always match, so do not mutate a URI used as a dict key.
    """

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scheme = self.scheme.lower()
        self.host = self.host.lower()

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a sip/sips URI; raise L{SipUriError} for anything else."""
        uri = parse_uri(text)
        if not isinstance(uri, SipUri):
            raise SipUriError(f"not a SIP URI: {text!r}")
        return uri

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower-cased, or None."""
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def secure(self) -> bool:
        """True for ``sips:``."""
        return self.scheme == "sips"

    def with_(self, **changes: object) -> SipUri:
        """A copy with some fields replaced (dicts copied, not shared)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(SipUri)}
        fields["params"] = dict(self.params)
        fields["headers"] = dict(self.headers)
        fields.update(changes)
        return SipUri(**fields)  # type: ignore[arg-type]

    def copy(self) -> SipUri:
        """An equal, independent copy."""
        uri = SipUri.__new__(SipUri)
        uri.scheme, uri.user, uri.password = self.scheme, self.user, self.password
        uri.host, uri.port = self.host, self.port
        uri.params, uri.headers = dict(self.params), dict(self.headers)
        return uri

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(_escape(self.user, _USER_SAFE))
            if self.password is not None:
                parts += (":", _escape(self.password, _PASSWORD_SAFE))
            parts.append("@")
        parts.append(_format_hostport(self.host, self.port))
        for name, value in self.params.items():
            parts += (";", _escape(name, _PARAM_SAFE))
            if value is not None:
                parts += ("=", _escape(value, _PARAM_SAFE))
        if self.headers:
            parts.append("?")
            parts.append("&".join(
                f"{_escape(name, _HEADER_SAFE)}={_escape(value, _HEADER_SAFE)}"
                for name, value in self.headers.items()))
        return "".join(parts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SipUri):
            return NotImplemented
        if (self.scheme, self.user, self.password, self.host.lower(),
                self.port) != (other.scheme, other.user, other.password,
                               other.host.lower(), other.port):
            return False
        mine, theirs = self.params, other.params
        for name in _MUST_MATCH:
            a = mine.get(name, _MISSING)
            b = theirs.get(name, _MISSING)
            if a is _MISSING and b is _MISSING:
                continue
            if a is _MISSING or b is _MISSING or _fold(a) != _fold(b):
                return False
        for name in mine.keys() & theirs.keys():
            if _fold(mine[name]) != _fold(theirs[name]):
                return False
        return ({k.lower(): v.lower() for k, v in self.headers.items()}
                == {k.lower(): v.lower() for k, v in other.headers.items()})

    def __hash__(self) -> int:
        return hash((self.scheme, self.user, self.password,
                     self.host.lower(), self.port))


#: entries of each parse cache (shared_uri, shared_name_addr, Via heads)
#: before it is emptied and filled anew
PARSED_CACHE_SIZE = 4096


def parse_uri(text: str) -> SipUri | AbsoluteUri:
    """Parse any URI: a L{SipUri} for sip/sips, else an L{AbsoluteUri}.

    The result is the caller's own: a copy of the parse L{shared_uri}
    keeps (a server sees the same few URIs in message after message)."""
    return shared_uri(text).copy()


def _read_only(self: Any, name: str, value: object = None) -> None:
    raise AttributeError(
        f"{type(self).__name__[len('_Shared'):]} of a received message is read-only "
        f"(shared with other messages): copy() it to change {name!r}")


class _SharedSipUri(SipUri):
    """A parsed L{SipUri} that every message carrying its text shares:
    read-only, so handing it out needs no copy (L{shared_uri})."""

    __setattr__ = _read_only
    __delattr__ = _read_only


class _SharedAbsoluteUri(AbsoluteUri):
    """A parsed L{AbsoluteUri} shared like L{_SharedSipUri}."""

    __setattr__ = _read_only
    __delattr__ = _read_only


def _frozen(uri: SipUri | AbsoluteUri) -> SipUri | AbsoluteUri:
    """A read-only twin of C{uri} (its dicts as read-only mappings)."""
    if isinstance(uri, SipUri):
        shared: SipUri | AbsoluteUri = object.__new__(_SharedSipUri)
        shared.__dict__.update(
            scheme=uri.scheme, user=uri.user, password=uri.password, host=uri.host,
            port=uri.port, params=MappingProxyType(dict(uri.params)),
            headers=MappingProxyType(dict(uri.headers)))
    else:
        shared = object.__new__(_SharedAbsoluteUri)
        shared.__dict__.update(scheme=uri.scheme, opaque=uri.opaque)
    return shared


#: shared_uri's values by text.
_SHARED: dict[str, SipUri | AbsoluteUri] = {}


def shared_uri(text: str) -> SipUri | AbsoluteUri:
    """L{parse_uri}, but the result is read-only and shared by every caller
    that parses the same text (a message's Request-URI and typed views):
    C{copy()} it to change it."""
    known = _SHARED.get(text)
    if known is not None:
        return known
    uri = _frozen(_parse_uri(text))
    if len(_SHARED) >= PARSED_CACHE_SIZE:
        _SHARED.clear()
    _SHARED[text] = uri
    return uri


def _parse_uri(text: str) -> SipUri | AbsoluteUri:
    """L{parse_uri} without the cache."""
    colon = text.find(":")
    if colon <= 0:
        raise SipUriError(f"no scheme: {text!r}")
    scheme = text[:colon].lower()
    rest = text[colon + 1:]
    if _INVALID.search(rest):
        raise SipUriError(f"invalid character or escape: {text!r}")
    if scheme == "sip" or scheme == "sips":
        return _parse_sip(scheme, rest, text)
    if not _SCHEME.match(scheme) or not rest:
        raise SipUriError(f"bad URI: {text!r}")
    return AbsoluteUri(scheme, rest)


def _parse_sip(scheme: str, rest: str, text: str) -> SipUri:
    user = password = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1:]
        user, colon, password = userinfo.partition(":")
        if not user:
            raise SipUriError(f"empty user: {text!r}")
        user = _unescape(user)
        password = _unescape(password) if colon else None
    headers: dict[str, str] = {}
    rest, question, header_text = rest.partition("?")
    if question:
        for pair in header_text.split("&"):
            name, eq, value = pair.partition("=")
            if not name or not eq:
                raise SipUriError(f"bad URI header: {text!r}")
            headers[_unescape(name)] = _unescape(value)
    hostport, semi, param_text = rest.partition(";")
    host, port = _split_hostport(hostport)
    params: dict[str, str | None] = {}
    if semi:
        for pair in param_text.split(";"):
            name, eq, value = pair.partition("=")
            if not name:
                raise SipUriError(f"empty URI parameter: {text!r}")
            params[_unescape(name).lower()] = _unescape(value) if eq else None
    uri = SipUri.__new__(SipUri)
    uri.scheme, uri.user, uri.password = scheme, user, password
    uri.host, uri.port, uri.params, uri.headers = host, port, params, headers
    return uri


_DISPLAY_NAME = re.compile(r"[A-Za-z0-9\-.!%*_+`'~ \t\x80-\U0010ffff]+\Z")


@dataclass(eq=False)
class NameAddr:
    """``[display-name] <uri> *(;param)`` — From, To, Contact, Route …

    @ivar display_name: unquoted display name, or None.
    @ivar params: header parameters (``tag``, ``expires``, ``q`` …), names
        lower-cased, quoted values with their quotes.
    """

    uri: SipUri | AbsoluteUri
    display_name: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        """Parse a name-addr or addr-spec with header parameters.

        Without angle brackets everything after the first ``;`` is a
        header parameter (RFC 3261 20.10).  ``*`` is not a name-addr.
        The result is the caller's own: a copy of the parse
        L{shared_name_addr} keeps (the From and To of a dialog come in
        every request).
        """
        if cls is NameAddr:
            return shared_name_addr(text).copy()
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: str,
               parse: Callable[[str], SipUri | AbsoluteUri] = parse_uri) -> NameAddr:
        """L{parse} without the cache; C{parse} parses the URI."""
        text = text.strip()
        if text.startswith('"'):
            display, i = _read_quoted(text, 0)
            i = _skip_ws(text, i)
            if i >= len(text) or text[i] != "<":
                raise SipUriError(f"expected '<' after display name: {text!r}")
            lt = i
        else:
            lt = text.find("<")
            display = None
            if lt > 0:
                display = text[:lt].strip()
                if display and not _DISPLAY_NAME.match(display):
                    raise SipUriError(f"bad display name: {text!r}")
                display = display or None
        if lt >= 0:
            gt = text.find(">", lt)
            if gt < 0:
                raise SipUriError(f"missing '>': {text!r}")
            uri = parse(text[lt + 1:gt])
            params = parse_params(text, gt + 1)
        else:
            if text == "*":
                raise SipUriError("'*' is not a name-addr")
            spec, _, _ = text.partition(";")
            uri = parse(spec)
            params = parse_params(text, len(spec))
        addr = cls.__new__(cls)
        addr.uri, addr.display_name, addr.params = uri, display, params
        return addr

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter, or None."""
        return self.params.get("tag")

    @tag.setter
    def tag(self, value: str | None) -> None:
        if value is None:
            self.params.pop("tag", None)
        else:
            self.params["tag"] = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NameAddr):
            return NotImplemented
        return (self.uri == other.uri and self.display_name == other.display_name
                and self.params == other.params)

    __hash__ = None  # type: ignore[assignment]

    def copy(self) -> NameAddr:
        """An equal, independent copy."""
        addr = NameAddr.__new__(NameAddr)
        addr.uri, addr.display_name = self.uri.copy(), self.display_name
        addr.params = dict(self.params)
        return addr

    def __str__(self) -> str:
        uri = f"<{self.uri}>{format_params(self.params)}"
        if self.display_name is None:
            return uri
        name = self.display_name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{name}" {uri}'


class _SharedNameAddr(NameAddr):
    """A parsed L{NameAddr} shared by every message carrying its text:
    read-only (L{shared_name_addr})."""

    __setattr__ = _read_only
    __delattr__ = _read_only


#: shared_name_addr's values by text.
_SHARED_ADDRS: dict[str, NameAddr] = {}

#: A tag value that ends the text (what L{parse_params} accepts there).
_LAST_TAG = re.compile(r'[^\x00-\x20\x7f;,"<>=]+\Z')


def shared_name_addr(text: str) -> NameAddr:
    """L{NameAddr.parse}, but the result (and its URI) is read-only and
    shared by every caller that parses the same text: the From, To and
    Contact views of a message.  C{copy()} it to change it."""
    known = _SHARED_ADDRS.get(text)
    if known is not None:
        return known
    at = text.rfind(";tag=")
    if at > 0:
        tag = text[at + 5:]
        if tag.isalnum() or _LAST_TAG.match(tag):
            # A tag is new in every dialog: kept by text, these values
            # would fill the cache (and the collector's old generation)
            # with entries of one call each.  The text before it is kept.
            base = _SHARED_ADDRS.get(text[:at]) or shared_name_addr(text[:at])
            addr = object.__new__(_SharedNameAddr)
            fields = addr.__dict__
            fields["uri"] = base.uri
            fields["display_name"] = base.display_name
            if base.params:
                params = dict(base.params)
                params["tag"] = tag
            else:
                params = {"tag": tag}
            fields["params"] = MappingProxyType(params)
            return addr
    parsed = NameAddr._parse(text, shared_uri)
    addr = object.__new__(_SharedNameAddr)
    addr.__dict__.update(uri=parsed.uri, display_name=parsed.display_name,
                         params=MappingProxyType(parsed.params))
    if len(_SHARED_ADDRS) >= PARSED_CACHE_SIZE:
        _SHARED_ADDRS.clear()
    _SHARED_ADDRS[text] = addr
    return addr


_DEFAULT_PORTS = {"TLS": 5061, "WSS": 5061, "SCTP-TLS": 5061}


#: Via.parse: sent-protocol and sent-by texts and their parse.
_VIA_HEADS: dict[str, tuple[str, str, str, int | None]] = {}


@dataclass
class Via:
    """One Via entry: ``SIP/2.0/UDP host:port;branch=z9hG4bK…``.

    @ivar transport: upper-cased (UDP, TCP, TLS, WS, WSS, SCTP).
    @ivar params: ``branch``, ``received``, ``rport`` (None when present
        without a value), ``maddr``, ``ttl`` …, in order.
    """

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse one via-parm; LWS around the slashes is allowed.

        The part before the parameters (sent-protocol and sent-by) is the
        same in every request from one peer, so its parse is kept (up to
        L{PARSED_CACHE_SIZE} of them); the parameters, with their
        per-request branch, are parsed each time."""
        semi = text.find(";")
        head = text if semi < 0 else text[:semi]
        known = _VIA_HEADS.get(head)
        if known is None:
            known = cls._parse_head(text, head)
        via = cls.__new__(cls)
        via.protocol, via.transport, via.host, via.port = known
        via.params = parse_params(text, semi) if semi >= 0 else {}
        return via

    @classmethod
    def _parse_head(cls, text: str, head: str) -> tuple[str, str, str, int | None]:
        """Parse and remember C{head}, the via-parm C{text} up to its
        first semicolon."""
        via = cls._parse_uncached(head)
        if via.params:  # cannot be: there is no semicolon
            raise SipUriError(f"bad Via: {text!r}")
        known = (via.protocol, via.transport, via.host, via.port)
        if len(_VIA_HEADS) >= PARSED_CACHE_SIZE:
            _VIA_HEADS.clear()
        _VIA_HEADS[head] = known
        return known

    @classmethod
    def _parse_uncached(cls, text: str) -> Via:
        """L{parse} without the cache."""
        first = text.find("/")
        second = text.find("/", first + 1)
        if first < 0 or second < 0:
            raise SipUriError(f"bad Via sent-protocol: {text!r}")
        name = text[:first].strip()
        version = text[first + 1:second].strip()
        rest = text[second + 1:].lstrip(" \t")
        end = 0
        n = len(rest)
        while end < n and rest[end] not in " \t":
            end += 1
        transport = rest[:end]
        if not (_TOKEN.match(name) and _TOKEN.match(version)
                and _TOKEN.match(transport)) or end == n:
            raise SipUriError(f"bad Via sent-protocol: {text!r}")
        semi = rest.find(";", end)
        semi = n if semi < 0 else semi
        host, port = _split_hostport(rest[end:semi].strip())
        via = cls.__new__(cls)
        via.protocol = f"{name.upper()}/{version}"
        via.transport = transport.upper()
        via.host, via.port = host, port
        via.params = parse_params(rest, semi)
        return via

    @property
    def branch(self) -> str | None:
        """The ``branch`` parameter, or None."""
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        """The ``received`` parameter, or None."""
        return self.params.get("received")

    @property
    def sent_by(self) -> tuple[str, int]:
        """``(host, port)``; the port defaults to 5060, or 5061 for TLS."""
        port = self.port
        if port is None:
            port = _DEFAULT_PORTS.get(self.transport, 5060)
        return self.host, port

    def copy(self) -> Via:
        """An equal, independent copy."""
        return Via(self.transport, self.host, self.port, dict(self.params),
                   self.protocol)

    def __str__(self) -> str:
        return (f"{self.protocol}/{self.transport} "
                f"{_format_hostport(self.host, self.port)}"
                f"{format_params(self.params)}")
