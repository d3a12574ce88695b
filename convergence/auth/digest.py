# -*- test-case-name: tests.test_digest -*-
"""
HTTP Digest authentication for SIP (RFC 3261 section 22, RFC 7616,
RFC 8760), server side, without I/O.

The server stores only C{HA1 = H(username ":" realm ":" password)} per
algorithm (see L{digest_ha1}).  Nonces are stateless: each one carries the
time it was issued and an HMAC over it, so a challenge costs no memory and
any node sharing the secret can verify it.  The only state is a bounded
record of the C{(nonce, cnonce, nc)} triples already accepted, which makes
an exact replay of a C{qop=auth} response fail; it is forgotten when the
nonce expires.

Requests without C{qop} (RFC 2069, still sent by some old phones) are
accepted for compatibility; their response covers only the method and the
URI, so they can be replayed while the nonce is fresh.  Pass
C{require_qop=True} to refuse them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
from dataclasses import dataclass
from typing import Callable

from twisted.logger import Logger

__all__ = [
    "ALGORITHMS",
    "DigestChallenger",
    "DigestParseError",
    "DigestResult",
    "digest_ha1",
    "digest_response",
    "parse_credentials",
]

log = Logger()

#: RFC 8760 algorithm name to hashlib name, most preferred first.
ALGORITHMS: dict[str, str] = {"SHA-256": "sha256", "MD5": "md5"}

_SESS = "-sess"
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN_RE = re.compile(_TOKEN)
_LWS = re.compile(r"[ \t\r\n]*")
_NC = re.compile(r"[0-9a-fA-F]{8}")
_HEX = re.compile(r"[0-9a-fA-F]+")
_NONCE_LABEL = b"convergence digest nonce\x00"
_STAMP = struct.Struct(">Q")
_RANDOM_SIZE = 12
_MAC_SIZE = 16
_NONCE_SIZE = _STAMP.size + _RANDOM_SIZE + _MAC_SIZE
#: Nonces dated this many seconds in the future still count (clock steps).
_SKEW = 2.0


class DigestParseError(ValueError):
    """An C{Authorization} header value is not Digest credentials."""


def _hash(algorithm: str, text: str) -> str:
    """Hex digest of C{text} (UTF-8) with an RFC 8760 base algorithm.

    Bytes that were not UTF-8 on the wire (surrogate escapes, as the SIP
    parser decodes them) are hashed as received; other lone surrogates
    cannot match any client, so they are hashed as they come.
    """
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogatepass")
    return hashlib.new(ALGORITHMS[algorithm], data).hexdigest()


def _base(algorithm: str) -> str:
    """The base algorithm of C{algorithm} (C{"SHA-256-sess"} -> C{"SHA-256"})."""
    base = algorithm[: -len(_SESS)] if algorithm.endswith(_SESS) else algorithm
    if base not in ALGORITHMS:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return base


def digest_ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """
    C{H(username ":" realm ":" password)} in lowercase hex, the value stored
    per account and algorithm.  The password is used as given (UTF-8), as a
    phone computes it.

    @param algorithm: C{"MD5"} or C{"SHA-256"}.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return _hash(algorithm, f"{username}:{realm}:{password}")


def digest_response(
    algorithm: str,
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """
    The C{response} value of RFC 7616 section 3.4.1 (C{qop="auth"}) or of
    RFC 2069 (C{qop=None}), in lowercase hex.

    @param algorithm: C{"MD5"}, C{"SHA-256"} or their C{-sess} variants.
    @param ha1: the stored C{H(username:realm:password)} in hex.
    @raise ValueError: unsupported algorithm or qop, or missing C{nc}/C{cnonce}.
    """
    base = _base(algorithm)
    ha1 = ha1.lower()
    if algorithm.endswith(_SESS):
        if cnonce is None:
            raise ValueError(f"{algorithm} needs a cnonce")
        ha1 = _hash(base, f"{ha1}:{nonce}:{cnonce}")
    ha2 = _hash(base, f"{method}:{uri}")
    if qop is None:
        return _hash(base, f"{ha1}:{nonce}:{ha2}")
    if qop != "auth":
        raise ValueError(f"unsupported qop {qop!r}")
    if nc is None or cnonce is None:
        raise ValueError("qop=auth needs nc and cnonce")
    return _hash(base, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def _quoted(text: str, start: int) -> tuple[str, int]:
    """Parse the quoted-string at C{text[start]} (a C{"}); return value, end."""
    end = text.find('"', start + 1)
    if end > 0:
        plain = text[start + 1:end]
        if "\\" not in plain and "\r" not in plain and "\n" not in plain:
            return plain, end + 1  # the common case: nothing escaped
    value = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == '"':
            return "".join(value), i + 1
        if char == "\\":
            i += 1
            if i == len(text):
                break
            char = text[i]
        elif char in "\r\n":
            raise DigestParseError("line break inside a quoted string")
        value.append(char)
        i += 1
    raise DigestParseError("unterminated quoted string")


def parse_credentials(header_value: str) -> tuple[str, dict[str, str]]:
    """
    Parse an C{Authorization} or C{Proxy-Authorization} header value.

    @return: the scheme (as sent) and the auth-params, names lowercased,
        quoted values unescaped.  Tokens and quoted strings are accepted for
        every parameter, as clients differ.
    @raise DigestParseError: the value is not C{scheme auth-param, ...}, or
        a parameter is repeated.
    """
    text = header_value.strip(" \t\r\n")
    match = _TOKEN_RE.match(text)
    if match is None:
        raise DigestParseError("no authentication scheme")
    scheme = match.group()
    i = match.end()
    if i < len(text) and text[i] not in " \t\r\n":
        raise DigestParseError("no space after the authentication scheme")
    params: dict[str, str] = {}
    expect_comma = False
    while True:
        i = _LWS.match(text, i).end()
        if i == len(text):
            break
        if text[i] == ",":
            expect_comma = False
            i += 1
            continue
        if expect_comma:
            raise DigestParseError(f"expected a comma at {i}")
        match = _TOKEN_RE.match(text, i)
        if match is None:
            raise DigestParseError(f"expected a parameter name at {i}")
        name = match.group().lower()
        i = _LWS.match(text, match.end()).end()
        if i == len(text) or text[i] != "=":
            raise DigestParseError(f"parameter {name!r} has no value")
        i = _LWS.match(text, i + 1).end()
        if i < len(text) and text[i] == '"':
            value, i = _quoted(text, i)
        else:
            match = _TOKEN_RE.match(text, i)
            if match is None:
                raise DigestParseError(f"parameter {name!r} has no value")
            value, i = match.group(), match.end()
        if name in params:
            raise DigestParseError(f"parameter {name!r} repeated")
        params[name] = value
        expect_comma = True
    if not params:
        raise DigestParseError("no parameters")
    return scheme, params


#: The last header value parsed by L{_parsed} and its result.
_last_parsed: tuple[str, tuple[str, dict[str, str]] | DigestParseError] = ("", DigestParseError(""))


def _parsed(header_value: str) -> tuple[str, dict[str, str]]:
    """
    L{parse_credentials}, remembering the last value: L{ha1_key} and then
    L{DigestChallenger.verify} read the same header, so it is parsed once.
    The parameters are shared: callers only read them.
    """
    global _last_parsed
    value, result = _last_parsed
    if value != header_value:
        try:
            result = parse_credentials(header_value)
        except DigestParseError as e:
            result = e
        _last_parsed = (header_value, result)
    if isinstance(result, DigestParseError):
        raise result
    return result


#: Uses of one nonce kept in a tuple before they go into a set.
_TUPLE_USES = 8


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class DigestResult:
    """
    The outcome of L{DigestChallenger.verify}.

    @ivar ok: the credentials are valid; C{username} is authenticated.
    @ivar username: the username the client claimed (even when not C{ok},
        for logs), or C{None} if the header could not be parsed.
    @ivar algorithm: the algorithm the client used, canonical spelling.
    @ivar stale: the response was right but its nonce has expired (or was
        replayed): challenge again with C{stale=true} so the client retries
        without asking its user.
    @ivar reason: why verification failed, for logs only (never send it:
        it tells unknown users from wrong passwords); C{""} when C{ok}.
    """

    ok: bool
    username: str | None = None
    algorithm: str | None = None
    stale: bool = False
    reason: str = ""


class DigestChallenger:
    """
    Issue Digest challenges for one realm and verify the answers.

    One instance per realm (a served domain); cheap to keep for the process.
    """

    def __init__(
        self,
        realm: str,
        now: Callable[[], float],
        secret: bytes | None = None,
        nonce_lifetime: float = 300.0,
        algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
        opaque: str | None = None,
        require_qop: bool = False,
        max_replay_entries: int = 100_000,
    ) -> None:
        """
        @param realm: the realm, the domain whose accounts answer.
        @param now: the current time in seconds (e.g. C{reactor.seconds}).
        @param secret: the nonce signing key; random per instance if
            C{None}.  Give every node of a cluster the same one.
        @param nonce_lifetime: seconds a nonce is accepted after it is issued.
        @param algorithms: offered and accepted algorithms, most preferred
            first (C{-sess} variants of these are accepted too).
        @param opaque: an C{opaque} value to send; if set, a response that
            returns a different one fails.
        @param require_qop: refuse RFC 2069 responses without C{qop}.
        @param max_replay_entries: bound on the replay record; when full,
            new C{qop} responses are answered C{stale} until nonces expire.
        """
        if not algorithms:
            raise ValueError("at least one algorithm is needed")
        for algorithm in algorithms:
            if algorithm not in ALGORITHMS:
                raise ValueError(f"unsupported digest algorithm {algorithm!r}")
        if nonce_lifetime <= 0:
            raise ValueError("nonce_lifetime must be positive")
        self.realm = realm
        self.algorithms = tuple(algorithms)
        self.nonce_lifetime = nonce_lifetime
        self.opaque = opaque
        self.require_qop = require_qop
        self._now = now
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._max_replay_entries = max_replay_entries
        self._seen: dict[str, tuple[float, tuple[tuple[str, str], ...] | set[tuple[str, str]]]] = {}
        self._seen_count = 0
        self._last_purge = now()
        self._dummy_ha1 = {
            name: secrets.token_hex(hashlib.new(hash_name).digest_size)
            for name, hash_name in ALGORITHMS.items()
        }

    # Nonces

    def _mac(self, payload: bytes) -> bytes:
        message = _NONCE_LABEL + self.realm.encode("utf-8") + b"\x00" + payload
        return hmac.new(self._secret, message, "sha256").digest()[:_MAC_SIZE]

    def make_nonce(self) -> str:
        """A fresh signed nonce carrying the current time."""
        stamp = _STAMP.pack(max(0, int(self._now() * 1000)))
        payload = stamp + secrets.token_bytes(_RANDOM_SIZE)
        nonce = payload + self._mac(payload)
        return base64.urlsafe_b64encode(nonce).rstrip(b"=").decode("ascii")

    def _nonce_time(self, nonce: str) -> float | None:
        """The issue time of a nonce we signed, or C{None} if we did not."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) != _NONCE_SIZE:
            return None
        payload, mac = raw[:-_MAC_SIZE], raw[-_MAC_SIZE:]
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        return _STAMP.unpack(payload[: _STAMP.size])[0] / 1000

    # Challenges

    def challenges(self, stale: bool = False,
                   order: tuple[str, ...] | None = None) -> list[str]:
        """
        The C{WWW-Authenticate} (or C{Proxy-Authenticate}) values to send,
        one per algorithm, most preferred first (RFC 8760 section 2.4),
        sharing one nonce.

        @param stale: add C{stale=true} (after a L{DigestResult} with
            C{stale}).
        @param order: the offered algorithms in this order instead (those
            not offered are left out; the rest follow).
        """
        nonce = self.make_nonce()
        values = []
        algorithms = self.algorithms
        if order is not None:
            algorithms = tuple(a for a in order if a in self.algorithms) + tuple(
                a for a in self.algorithms if a not in order)
        for algorithm in algorithms:
            params = [
                f"realm={_quote(self.realm)}",
                f"nonce={_quote(nonce)}",
            ]
            if self.opaque is not None:
                params.append(f"opaque={_quote(self.opaque)}")
            if stale:
                params.append("stale=true")
            params += [f"algorithm={algorithm}", 'qop="auth"']
            values.append("Digest " + ", ".join(params))
        return values

    # Verification

    def verify(
        self,
        method: str,
        header_value: str,
        lookup_ha1: Callable[[str, str], str | None],
        request_uri: str | None = None,
    ) -> DigestResult:
        """
        Verify an C{Authorization}/C{Proxy-Authorization} header value.

        @param method: the request method (C{"REGISTER"}); for SIP, C{ACK}
            and C{CANCEL} reuse the INVITE's credentials with their own
            method (RFC 3261 section 22.1).
        @param lookup_ha1: C{(username, algorithm) -> HA1 hex or None}, the
            stored HA1 of C{username} in this realm for C{"MD5"} or
            C{"SHA-256"} (the base algorithm, also for C{-sess}).
        @param request_uri: if given, the C{uri} parameter must equal it.
        """
        try:
            scheme, params = _parsed(header_value)
        except DigestParseError as e:
            return DigestResult(False, reason=f"malformed: {e}")
        username = params.get("username")
        if scheme.lower() != "digest":
            return DigestResult(False, username, reason=f"scheme {scheme!r}")
        for name in ("username", "realm", "nonce", "uri", "response"):
            if name not in params:
                return DigestResult(False, username, reason=f"no {name}")
        algorithm = params.get("algorithm", "MD5")
        canonical = _canonical_algorithm(algorithm)
        if canonical is None or _base(canonical) not in self.algorithms:
            return DigestResult(False, username, reason=f"algorithm {algorithm!r}")

        def fail(reason: str, stale: bool = False) -> DigestResult:
            return DigestResult(False, username, canonical, stale, reason)

        if params["realm"] != self.realm:
            return fail(f"realm {params['realm']!r}")
        if request_uri is not None and params["uri"] != request_uri:
            return fail(f"uri {params['uri']!r} is not the request URI")
        if self.opaque is not None and params.get("opaque", self.opaque) != self.opaque:
            return fail("opaque changed")
        qop = params.get("qop")
        nc = params.get("nc")
        cnonce = params.get("cnonce")
        if qop is None:
            if self.require_qop:
                return fail("no qop")
            if canonical.endswith(_SESS):
                return fail(f"{canonical} without qop")
        elif qop != "auth":
            return fail(f"qop {qop!r}")
        elif nc is None or cnonce is None or not _NC.fullmatch(nc) or not cnonce:
            return fail("qop=auth needs nc (8 hex digits) and cnonce")
        response = params["response"]
        if not _HEX.fullmatch(response):
            return fail("response is not hex")

        nonce = params["nonce"]
        issued = self._nonce_time(nonce)
        if issued is None:
            return fail("nonce not issued here")
        ha1 = lookup_ha1(username, _base(canonical))  # type: ignore[arg-type]
        known = ha1 is not None and _HEX.fullmatch(ha1) is not None
        expected = digest_response(
            canonical,
            ha1 if known else self._dummy_ha1[_base(canonical)],  # type: ignore[arg-type]
            nonce,
            method,
            params["uri"],
            qop,
            nc,
            cnonce,
        )
        matches = hmac.compare_digest(expected, response.lower())
        if not known:
            return fail("no digest credentials for this user")
        if not matches:
            return fail("wrong response")
        now = self._now()
        age = now - issued
        if age > self.nonce_lifetime or age < -_SKEW:
            return fail("nonce expired", stale=True)
        if qop is not None:
            replay = self._record(nonce, issued, (cnonce, nc.lower()), now)  # type: ignore[union-attr]
            if replay is not None:
                return fail(replay, stale=True)
        return DigestResult(True, username, canonical)

    def _record(
        self, nonce: str, issued: float, use: tuple[str, str], now: float
    ) -> str | None:
        """Remember a C{(cnonce, nc)} use of a nonce; say why not if refused."""
        if now - self._last_purge >= self.nonce_lifetime:
            self._purge(now)
        entry = self._seen.get(nonce)
        if entry is not None and use in entry[1]:
            return "replayed nonce count"
        if self._seen_count >= self._max_replay_entries:
            # full: sweep, but at most once a second (a sweep that frees
            # nothing would otherwise walk the whole record per request)
            if now - self._last_purge >= 1.0:
                self._purge(now)
            if self._seen_count >= self._max_replay_entries:
                log.warn(
                    "digest replay record for {realm} is full", realm=self.realm
                )
                return "replay record full"
        # The uses of a nonce: a tuple while few (strings in tuples, so the
        # garbage collector stops walking a nonce's entry after one look),
        # a set past _TUPLE_USES.
        expires = issued + self.nonce_lifetime
        if entry is None:
            self._seen[nonce] = (expires, (use,))
        elif isinstance(entry[1], tuple) and len(entry[1]) < _TUPLE_USES:
            self._seen[nonce] = (expires, entry[1] + (use,))
        else:
            uses = entry[1] if isinstance(entry[1], set) else set(entry[1])
            uses.add(use)
            self._seen[nonce] = (expires, uses)
        self._seen_count += 1
        return None

    def _purge(self, now: float) -> None:
        """Forget the uses of expired nonces."""
        self._last_purge = now
        for nonce, (expires, uses) in list(self._seen.items()):
            if expires < now:
                del self._seen[nonce]
                self._seen_count -= len(uses)


def ha1_key(header_value: str) -> tuple[str, str] | None:
    """
    The C{(username, base algorithm)} whose HA1 L{DigestChallenger.verify}
    will look up for this header value (C{None}: it will look up nothing),
    so that the HA1 can be fetched ahead, off the reactor thread.
    """
    try:
        scheme, params = _parsed(header_value)
    except DigestParseError:
        return None
    canonical = _canonical_algorithm(params.get("algorithm", "MD5"))
    username = params.get("username")
    if scheme.lower() != "digest" or canonical is None or username is None:
        return None
    return username, _base(canonical)


def _canonical_algorithm(name: str) -> str | None:
    """Map a client's algorithm token to its canonical spelling, or C{None}."""
    upper = name.upper()
    for base in ALGORITHMS:
        if upper == base:
            return base
        if upper == base + "-SESS":
            return base + _SESS
    return None
