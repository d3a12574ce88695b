"""Property-based tests (hypothesis) for Digest, SCRAM and SASLprep parsing."""

from __future__ import annotations

import base64
import hashlib
import hmac

from hypothesis import example, given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from convergence.auth.digest import (
    DigestChallenger,
    DigestParseError,
    DigestResult,
    digest_ha1,
    digest_response,
    ha1_key,
    parse_credentials,
)
from convergence.auth.saslprep import SASLprepError, saslprep
from convergence.auth.scram import (
    ScramError,
    ScramServerExchange,
    derive_credential,
)

_TOKEN = st.from_regex(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}", fullmatch=True)
# Quoted-string content: anything but a line break.
_QUOTABLE = st.text(st.characters(blacklist_characters="\r\n"), max_size=16)
# A realm or opaque from the configuration: text without surrogates.
_CONFIGURED = st.text(st.characters(blacklist_categories=("Cs",),
                                    blacklist_characters="\r\n"),
                      max_size=16)
# The SIP parser decodes bytes that are not UTF-8 as surrogate escapes
# (U+DC80-U+DCFF).
_nasty = st.sampled_from(["\x00", "\x01", "\x7f", "\r", "\n", "\t", " ", ",",
                          "=", '"', "\\", "é", "\ud800", "\udcff",
                          "9" * 5000])


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def _mutated(draw: st.DrawFn, valid: str) -> str:
    """``valid`` with characters flipped, cut, deleted or inserted."""
    text = valid
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["cut", "delete", "insert", "flip"]))
        if kind == "cut":
            text = text[:where]
        elif kind == "delete":
            text = text[:where] + text[where + 1:]
        elif kind == "insert":
            text = text[:where] + draw(_nasty) + text[where:]
        elif where < len(text):
            text = (text[:where] + chr(ord(text[where]) ^ draw(
                st.integers(1, 127))) + text[where + 1:])
    return text


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _authorization(challenger: DigestChallenger, nonce: str) -> str:
    """A valid qop=auth Authorization value for alice."""
    ha1 = digest_ha1("SHA-256", "alice", "example.com", "secret")
    response = digest_response("SHA-256", ha1, nonce, "REGISTER",
                               "sip:example.com", "auth", "00000001", "c1")
    return (f'Digest username="alice", realm="example.com", nonce="{nonce}",'
            f' uri="sip:example.com", response="{response}",'
            f' algorithm=SHA-256, qop=auth, nc=00000001, cnonce="c1"')


def _lookup(username: str, algorithm: str) -> str | None:
    if username != "alice":
        return None
    return digest_ha1(algorithm, "alice", "example.com", "secret")


_CHALLENGER = DigestChallenger("example.com", _Clock(), secret=b"k" * 32)
_NONCE = _CHALLENGER.make_nonce()
_VALID_AUTHORIZATION = _authorization(_CHALLENGER, _NONCE)


class DigestPropertyTests(SynchronousTestCase):
    """Authorization / WWW-Authenticate parameter parsing."""

    @given(st.text(max_size=80) | _mutated(_VALID_AUTHORIZATION))
    @example('Digest a="\\')
    @example(_VALID_AUTHORIZATION.replace("sip:example", "sip:\udcffexample"))
    @example(_VALID_AUTHORIZATION.replace('"c1"', '"\ud800"'))
    def test_arbitrary_credentials(self, text: str) -> None:
        """parse_credentials raises DigestParseError at worst; verify and
        ha1_key never raise."""
        try:
            parse_credentials(text)
        except DigestParseError:
            pass
        challenger = DigestChallenger("example.com", _Clock(),
                                      secret=b"k" * 32)
        result = challenger.verify("REGISTER", text, _lookup)
        self.assertIsInstance(result, DigestResult)
        ha1_key(text)

    @given(_TOKEN, st.dictionaries(_TOKEN.map(str.lower),
                                   _QUOTABLE | _TOKEN, min_size=1,
                                   max_size=5),
           st.lists(st.booleans(), min_size=5, max_size=5),
           st.sampled_from([", ", ",", " ,\t", ",\r\n "]))
    def test_round_trip(self, scheme: str, params: dict[str, str],
                        quoting: list[bool], separator: str) -> None:
        """Parameters written quoted (escaped) or as tokens parse back."""
        fields = []
        for (name, value), quoted in zip(params.items(), quoting):
            plain = quoted is False and value and all(
                c.isascii() and (c.isalnum() or c in "!#$%&'*+-.^_`|~")
                for c in value)
            fields.append(f"{name}={value if plain else _quote(value)}")
        header = f"{scheme} " + separator.join(fields)
        self.assertEqual(parse_credentials(header), (scheme, params))

    @given(_CONFIGURED, st.none() | _CONFIGURED, st.booleans())
    def test_challenges_parse(self, realm: str, opaque: str | None,
                              stale: bool) -> None:
        """Every WWW-Authenticate value we send parses back to its realm,
        nonce, opaque, stale flag, algorithm and qop."""
        challenger = DigestChallenger(realm, _Clock(), opaque=opaque)
        values = challenger.challenges(stale=stale)
        parsed = [parse_credentials(value) for value in values]
        self.assertEqual({scheme for scheme, _ in parsed}, {"Digest"})
        self.assertEqual([p["algorithm"] for _, p in parsed],
                         list(challenger.algorithms))
        for _, params in parsed:
            self.assertEqual(params["realm"], realm)
            self.assertEqual(params.get("opaque"), opaque)
            self.assertEqual(params.get("stale"), "true" if stale else None)
            self.assertEqual(params["qop"], "auth")
            self.assertEqual(params["nonce"], parsed[0][1]["nonce"])
            self.assertIsNotNone(challenger._nonce_time(params["nonce"]))


# -- SCRAM -------------------------------------------------------------------

_SERVER_NONCE = "srvnonce"
_CREDENTIAL = derive_credential("pencil", "sha256", salt=b"salt" * 4)
_NONCE_TEXT = st.from_regex(r"[\x21-\x2b\x2d-\x7e]{1,16}", fullmatch=True)


def _saslname(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def _client_final(client_first_bare: str, server_first: bytes,
                  password: str, gs2: str = "n,,") -> bytes:
    """The client-final-message a correct client sends (RFC 5802)."""
    text = server_first.decode()
    nonce = text.split(",")[0][2:]
    salt = base64.b64decode(text.split(",")[1][2:])
    iterations = int(text.split(",")[2][2:])
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode(),
                                 salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored = hashlib.sha256(client_key).digest()
    without_proof = (f"c={base64.b64encode(gs2.encode()).decode()},"
                     f"r={nonce}")
    auth = ",".join((client_first_bare, text, without_proof)).encode()
    signature = hmac.new(stored, auth, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


_VALID_FIRST = "n,,n=user,r=clientnonce"


def _exchange() -> tuple[ScramServerExchange, bytes]:
    exchange = ScramServerExchange("sha256", nonce=_SERVER_NONCE)
    exchange.client_first(_VALID_FIRST.encode())
    return exchange, exchange.server_first(_CREDENTIAL)


_, _SERVER_FIRST = _exchange()
_VALID_FINAL = _client_final(_VALID_FIRST[3:], _SERVER_FIRST,
                             "pencil").decode()


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


class ScramPropertyTests(SynchronousTestCase):
    """client-first and client-final message parsing."""

    @given(st.binary(max_size=80) | _mutated(_VALID_FIRST).map(_utf8))
    @example(b"n,a=,n=u,r=x")
    def test_client_first_arbitrary(self, message: bytes) -> None:
        """client-first raises ScramError at worst."""
        exchange = ScramServerExchange("sha256", nonce=_SERVER_NONCE)
        try:
            username = exchange.client_first(message)
        except ScramError:
            return
        self.assertEqual(saslprep(username, allow_unassigned=True), username)
        exchange.server_first(None)

    @given(st.binary(max_size=120) | _mutated(_VALID_FINAL).map(_utf8))
    def test_client_final_arbitrary(self, message: bytes) -> None:
        """client-final raises ScramError at worst; only the exact right
        proof succeeds."""
        exchange, _ = _exchange()
        try:
            final = exchange.client_final(message)
        except ScramError:
            return
        self.assertTrue(final.startswith(b"v="))

    @given(st.text(min_size=1, max_size=12), st.none() | st.text(max_size=8),
           _NONCE_TEXT)
    @example("a,b=c", "x=2C", "n")
    def test_client_first_names(self, user: str, authzid: str | None,
                                nonce: str) -> None:
        """Encoded user names and authzids decode to what was sent."""
        gs2 = f"n,{'' if authzid is None else 'a=' + _saslname(authzid)},"
        message = f"{gs2}n={_saslname(user)},r={nonce}"
        exchange = ScramServerExchange("sha256", nonce=_SERVER_NONCE)
        try:
            prepared = saslprep(user, allow_unassigned=True)
        except SASLprepError:
            prepared = None
        if (prepared is None or not prepared or "\x00" in user
                or (authzid is not None and ("\x00" in authzid
                                             or not authzid))):
            with self.assertRaises(ScramError):
                exchange.client_first(_utf8(message))
            return
        self.assertEqual(exchange.client_first(_utf8(message)), prepared)
        self.assertEqual(exchange.authzid, authzid)

    @given(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E)
                   | st.characters(), min_size=1, max_size=10))
    def test_full_exchange(self, password: str) -> None:
        """A correct client proof for any storable password is accepted."""
        try:
            credential = derive_credential(password, "sha256",
                                           salt=b"salt" * 4)
        except SASLprepError:
            return
        bare = "n=user,r=cn"
        exchange = ScramServerExchange("sha256", nonce=_SERVER_NONCE)
        exchange.client_first(("n,," + bare).encode())
        server_first = exchange.server_first(credential)
        final = exchange.client_final(
            _client_final(bare, server_first, password))
        self.assertTrue(final.startswith(b"v="))


# -- SASLprep ----------------------------------------------------------------

_saslprep_text = st.text(st.one_of(
    st.characters(),
    st.sampled_from("\u00a0\u00ad\u1806\u200b\u2000\ufb01\u2168\u0627"
                    "\u05d0\u0301\u00c5\u212b\ufeff\u3000\ufe0f"),
), max_size=16)


class SaslprepPropertyTests(SynchronousTestCase):
    """SASLprep: only SASLprepError; idempotence."""

    @given(_saslprep_text)
    @example("I\u00adX")
    @example("\u2168")
    def test_idempotent(self, text: str) -> None:
        """saslprep raises SASLprepError at worst, its output prepares to
        itself, and a stored string prepares the same as a query."""
        for allow in (False, True):
            try:
                prepared = saslprep(text, allow_unassigned=allow)
            except SASLprepError:
                continue
            self.assertEqual(saslprep(prepared, allow_unassigned=allow),
                             prepared)
            if not allow:
                self.assertEqual(saslprep(text, allow_unassigned=True),
                                 prepared)
