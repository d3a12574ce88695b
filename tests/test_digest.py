"""Tests for L{convergence.auth.digest}."""

from __future__ import annotations

import hashlib

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from convergence.auth.digest import (
    DigestChallenger,
    DigestParseError,
    DigestResult,
    digest_ha1,
    digest_response,
    parse_credentials,
)

# RFC 7616 section 3.9.1.
RFC_USER = "Mufasa"
RFC_REALM = "http-auth@example.org"
RFC_PASSWORD = "Circle of Life"
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC_MD5_RESPONSE = "8ca523f5e9506fed4657c9700eebdbec"
RFC_SHA256_RESPONSE = (
    "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
)

REALM = "example.com"
USER = "alice"
PASSWORD = "s3cret words"
URI = "sip:example.com"


def h(algorithm: str, text: str) -> str:
    """The hex hash of C{text}, computed here independently of the module."""
    name = {"MD5": "md5", "SHA-256": "sha256"}[algorithm]
    return hashlib.new(name, text.encode("utf-8")).hexdigest()


def client_authorization(
    challenge: str,
    method: str = "REGISTER",
    username: str = USER,
    password: str = PASSWORD,
    uri: str = URI,
    nc: str | None = "00000001",
    cnonce: str = "0a4f113b",
    realm: str | None = None,
    algorithm: str | None = None,
) -> str:
    """
    What a phone sends after C{challenge}: the response computed from the
    RFC 7616 formulas directly (C{nc=None}: RFC 2069, no qop).
    """
    _, params = parse_credentials(challenge)
    nonce = params["nonce"]
    algorithm = algorithm or params.get("algorithm", "MD5")
    realm = params["realm"] if realm is None else realm
    base = algorithm.removesuffix("-sess")
    ha1 = h(base, f"{username}:{realm}:{password}")
    if algorithm.endswith("-sess"):
        ha1 = h(base, f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(base, f"{method}:{uri}")
    fields = [
        f'username="{username}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
        f"algorithm={algorithm}",
    ]
    if nc is None:
        response = h(base, f"{ha1}:{nonce}:{ha2}")
    else:
        response = h(base, f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        fields += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
    fields.append(f'response="{response}"')
    return "Digest " + ", ".join(fields)


class VectorTests(SynchronousTestCase):
    """The published example values."""

    def test_rfc7616_md5(self) -> None:
        """The MD5 response of RFC 7616 section 3.9.1."""
        ha1 = digest_ha1("MD5", RFC_USER, RFC_REALM, RFC_PASSWORD)
        response = digest_response(
            "MD5", ha1, RFC_NONCE, "GET", "/dir/index.html",
            "auth", "00000001", RFC_CNONCE,
        )
        self.assertEqual(response, RFC_MD5_RESPONSE)

    def test_rfc7616_sha256(self) -> None:
        """The SHA-256 response of RFC 7616 section 3.9.1."""
        ha1 = digest_ha1("SHA-256", RFC_USER, RFC_REALM, RFC_PASSWORD)
        response = digest_response(
            "SHA-256", ha1, RFC_NONCE, "GET", "/dir/index.html",
            "auth", "00000001", RFC_CNONCE,
        )
        self.assertEqual(response, RFC_SHA256_RESPONSE)

    def test_rfc2617(self) -> None:
        """The MD5 example of RFC 2617 section 3.5."""
        ha1 = digest_ha1("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life")
        response = digest_response(
            "MD5", ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "GET",
            "/dir/index.html", "auth", "00000001", "0a4f113b",
        )
        self.assertEqual(response, "6629fae49393a05397450978507c4ef1")

    def test_ha1_independent(self) -> None:
        """HA1 is H(username:realm:password) in lowercase hex."""
        self.assertEqual(
            digest_ha1("SHA-256", USER, REALM, PASSWORD),
            hashlib.sha256(b"alice:example.com:s3cret words").hexdigest(),
        )
        self.assertRaises(ValueError, digest_ha1, "SHA-1", USER, REALM, PASSWORD)

    def test_response_errors(self) -> None:
        """Unsupported qop, a qop without nc, and -sess without cnonce fail."""
        ha1 = digest_ha1("MD5", USER, REALM, PASSWORD)
        self.assertRaises(
            ValueError, digest_response, "MD5", ha1, "n", "GET", "/",
            "auth-int", "00000001", "c",
        )
        self.assertRaises(
            ValueError, digest_response, "MD5", ha1, "n", "GET", "/", "auth"
        )
        self.assertRaises(
            ValueError, digest_response, "MD5-sess", ha1, "n", "GET", "/"
        )


class ParseTests(SynchronousTestCase):
    """L{parse_credentials}."""

    def test_rfc7616_header(self) -> None:
        """The RFC 7616 example Authorization header parses."""
        scheme, params = parse_credentials(
            'Digest username="Mufasa",\r\n realm="http-auth@example.org",'
            ' uri="/dir/index.html", algorithm=SHA-256,'
            f' nonce="{RFC_NONCE}", nc=00000001, cnonce="{RFC_CNONCE}",'
            f' qop=auth, response="{RFC_SHA256_RESPONSE}",'
            f' opaque="{RFC_OPAQUE}"'
        )
        self.assertEqual(scheme, "Digest")
        self.assertEqual(params["algorithm"], "SHA-256")
        self.assertEqual(params["nc"], "00000001")
        self.assertEqual(params["opaque"], RFC_OPAQUE)
        self.assertEqual(params["uri"], "/dir/index.html")

    def test_escapes_case_and_spacing(self) -> None:
        """Names are case-insensitive; quoted strings unescape; empty items skip."""
        _, params = parse_credentials(
            'digest  UserName = "a\\"b\\\\c" ,, Realm=example.com ,'
        )
        self.assertEqual(params, {"username": 'a"b\\c', "realm": "example.com"})

    def test_malformed(self) -> None:
        """Broken values raise L{DigestParseError}."""
        for value in (
            "",
            "Digest",
            'Digest username="alice',
            "Digest username",
            "Digest username=",
            'Digest username="a" realm="b"',
            'Digest username="a", username="b"',
            '"Digest" username="a"',
            'Digest=x username="a"',
            'Digest username="a\r\nb"',
        ):
            self.assertRaises(DigestParseError, parse_credentials, value)


class ChallengerTests(SynchronousTestCase):
    """L{DigestChallenger} with a fake clock and a one-user realm."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.challenger = DigestChallenger(REALM, self.clock.seconds)
        self.ha1 = {
            algorithm: h(algorithm, f"{USER}:{REALM}:{PASSWORD}")
            for algorithm in ("MD5", "SHA-256")
        }
        self.lookups: list[tuple[str, str]] = []

    def lookup(self, username: str, algorithm: str) -> str | None:
        """The stored HA1 of the one account."""
        self.lookups.append((username, algorithm))
        return self.ha1[algorithm] if username == USER else None

    def challenge(self, algorithm: str = "SHA-256") -> str:
        """The challenge value offering C{algorithm}."""
        for value in self.challenger.challenges():
            if parse_credentials(value)[1]["algorithm"] == algorithm:
                return value
        raise AssertionError(f"no {algorithm} challenge")

    def verify(self, authorization: str, method: str = "REGISTER") -> DigestResult:
        """Verify C{authorization} for C{method}."""
        return self.challenger.verify(method, authorization, self.lookup)

    def test_challenges(self) -> None:
        """One challenge per algorithm, SHA-256 first, qop=auth, same nonce."""
        values = self.challenger.challenges()
        parsed = [parse_credentials(value) for value in values]
        self.assertEqual([s for s, _ in parsed], ["Digest", "Digest"])
        self.assertEqual([p["algorithm"] for _, p in parsed], ["SHA-256", "MD5"])
        for _, params in parsed:
            self.assertEqual(params["realm"], REALM)
            self.assertEqual(params["qop"], "auth")
            self.assertNotIn("stale", params)
            self.assertNotIn("opaque", params)
        self.assertEqual(parsed[0][1]["nonce"], parsed[1][1]["nonce"])
        self.assertIn('qop="auth"', values[0])

    def test_challenge_order(self) -> None:
        """C{order} reorders the offered algorithms; unoffered ones are left
        out and offered ones it does not name follow."""
        def algorithms(values: list[str]) -> list[str]:
            return [parse_credentials(v)[1]["algorithm"] for v in values]

        self.assertEqual(algorithms(self.challenger.challenges(order=("MD5", "SHA-256"))),
                         ["MD5", "SHA-256"])
        self.assertEqual(algorithms(self.challenger.challenges(order=("MD5",))),
                         ["MD5", "SHA-256"])
        md5_only = DigestChallenger(REALM, self.clock.seconds, algorithms=("MD5",))
        self.assertEqual(algorithms(md5_only.challenges(order=("SHA-256", "MD5"))), ["MD5"])

    def test_nonces_differ(self) -> None:
        """Every challenge has a fresh nonce."""
        nonces = {
            parse_credentials(self.challenger.challenges()[0])[1]["nonce"]
            for _ in range(20)
        }
        self.assertEqual(len(nonces), 20)

    def test_stale_challenge(self) -> None:
        """C{stale=True} adds C{stale=true}; an opaque is sent when configured."""
        challenger = DigestChallenger(
            REALM, self.clock.seconds, opaque="x\"y", algorithms=("MD5",)
        )
        values = challenger.challenges(stale=True)
        self.assertEqual(len(values), 1)
        params = parse_credentials(values[0])[1]
        self.assertEqual(params["stale"], "true")
        self.assertEqual(params["opaque"], 'x"y')
        self.assertEqual(params["algorithm"], "MD5")

    def test_round_trip(self) -> None:
        """Independently computed SHA-256 and MD5 responses verify."""
        for algorithm in ("SHA-256", "MD5"):
            result = self.verify(client_authorization(self.challenge(algorithm)))
            self.assertEqual(result, DigestResult(True, USER, algorithm))
        self.assertEqual(self.lookups, [(USER, "SHA-256"), (USER, "MD5")])

    def test_sess(self) -> None:
        """The -sess variants verify and look up the base algorithm's HA1."""
        value = client_authorization(self.challenge(), algorithm="SHA-256-sess")
        result = self.verify(value)
        self.assertTrue(result.ok)
        self.assertEqual(result.algorithm, "SHA-256-sess")
        self.assertEqual(self.lookups, [(USER, "SHA-256")])

    def test_no_algorithm_is_md5(self) -> None:
        """A response without C{algorithm} is MD5 (RFC 2617)."""
        value = client_authorization(self.challenge("MD5"))
        value = value.replace("algorithm=MD5, ", "")
        self.assertEqual(self.verify(value), DigestResult(True, USER, "MD5"))

    def test_rfc2069(self) -> None:
        """A response without qop (old phones) verifies, unless qop is required."""
        value = client_authorization(self.challenge("MD5"), nc=None)
        self.assertTrue(self.verify(value).ok)
        self.assertTrue(self.verify(value).ok)
        strict = DigestChallenger(REALM, self.clock.seconds, require_qop=True)
        result = strict.verify("REGISTER", value, self.lookup)
        self.assertFalse(result.ok)
        self.assertEqual(result.reason, "no qop")

    def test_method_bound(self) -> None:
        """A response for REGISTER does not authenticate an INVITE."""
        value = client_authorization(self.challenge(), method="REGISTER")
        result = self.verify(value, method="INVITE")
        self.assertFalse(result.ok)
        self.assertEqual(result.reason, "wrong response")

    def test_nonce_reuse_with_new_count(self) -> None:
        """A nonce serves several requests while nc or cnonce changes."""
        challenge = self.challenge()
        for nc, cnonce in (("00000001", "a"), ("00000002", "a"), ("00000001", "b")):
            value = client_authorization(challenge, nc=nc, cnonce=cnonce)
            self.assertTrue(self.verify(value).ok)

    def test_replay(self) -> None:
        """The same nonce, nc and cnonce twice: the second fails as stale."""
        value = client_authorization(self.challenge())
        self.assertTrue(self.verify(value).ok)
        result = self.verify(value)
        self.assertFalse(result.ok)
        self.assertTrue(result.stale)
        self.assertEqual(result.reason, "replayed nonce count")

    def test_replay_record_expires(self) -> None:
        """Uses of expired nonces are forgotten."""
        self.assertTrue(self.verify(client_authorization(self.challenge())).ok)
        self.clock.advance(301)
        self.assertTrue(self.verify(client_authorization(self.challenge())).ok)
        self.assertEqual(len(self.challenger._seen), 1)

    def test_replay_record_full(self) -> None:
        """A full replay record answers stale rather than forgetting uses."""
        challenger = DigestChallenger(
            REALM, self.clock.seconds, max_replay_entries=1
        )
        first = client_authorization(challenger.challenges()[0])
        second = client_authorization(challenger.challenges()[0], cnonce="other")
        self.assertTrue(challenger.verify("REGISTER", first, self.lookup).ok)
        result = challenger.verify("REGISTER", second, self.lookup)
        self.assertEqual((result.ok, result.stale), (False, True))
        self.assertEqual(result.reason, "replay record full")

    def test_many_uses_of_one_nonce(self) -> None:
        """Past the few uses kept in a tuple, every use is still remembered."""
        challenge = self.challenge()
        values = [client_authorization(challenge, nc=f"{n:08x}") for n in range(1, 21)]
        for value in values:
            self.assertTrue(self.verify(value).ok)
        for value in values:
            self.assertEqual(self.verify(value).reason, "replayed nonce count")

    def test_full_record_swept_once_a_second(self) -> None:
        """A full record with nothing expired is not swept on every request."""
        challenger = DigestChallenger(REALM, self.clock.seconds, max_replay_entries=1)
        self.assertTrue(challenger.verify(
            "REGISTER", client_authorization(challenger.challenges()[0]), self.lookup).ok)
        sweeps: list[float] = []
        sweep = challenger._purge
        self.patch(challenger, "_purge", lambda now: (sweeps.append(now), sweep(now)))
        self.clock.advance(1)
        for cnonce in ("b", "c", "d"):
            value = client_authorization(challenger.challenges()[0], cnonce=cnonce)
            self.assertEqual(challenger.verify("REGISTER", value, self.lookup).reason,
                             "replay record full")
        self.assertEqual(len(sweeps), 1)
        self.flushLoggedErrors()

    def test_expired_nonce(self) -> None:
        """A right response with an old nonce is stale; the next challenge says so."""
        challenge = self.challenge()
        self.clock.advance(299)
        self.assertTrue(self.verify(client_authorization(challenge)).ok)
        self.clock.advance(2)
        result = self.verify(client_authorization(challenge, nc="00000002"))
        self.assertEqual(
            result, DigestResult(False, USER, "SHA-256", True, "nonce expired")
        )
        self.assertIn("stale=true", self.challenger.challenges(result.stale)[0])

    def test_expired_nonce_wrong_password(self) -> None:
        """An old nonce with a wrong password is not stale."""
        challenge = self.challenge()
        self.clock.advance(400)
        result = self.verify(client_authorization(challenge, password="guess"))
        self.assertFalse(result.ok)
        self.assertFalse(result.stale)

    def test_forged_nonce(self) -> None:
        """Nonces not signed by this challenger fail, and are not stale."""
        other = DigestChallenger(REALM, self.clock.seconds)
        foreign = client_authorization(other.challenges()[0])
        challenge = self.challenge()
        nonce = parse_credentials(challenge)[1]["nonce"]
        flipped = nonce[:-2] + ("AA" if nonce[-2:] != "AA" else "BB")
        tampered = client_authorization(challenge.replace(nonce, flipped))
        garbage = client_authorization(challenge.replace(nonce, "abc!"))
        for value in (foreign, tampered, garbage):
            result = self.verify(value)
            self.assertFalse(result.ok)
            self.assertFalse(result.stale)
            self.assertEqual(result.reason, "nonce not issued here")

    def test_nonce_bound_to_realm(self) -> None:
        """A nonce from another realm's challenger with the same secret fails."""
        secret = b"k" * 32
        mine = DigestChallenger(REALM, self.clock.seconds, secret=secret)
        theirs = DigestChallenger("example.net", self.clock.seconds, secret=secret)
        challenge = theirs.challenges()[0].replace("example.net", REALM)
        result = mine.verify("REGISTER", client_authorization(challenge), self.lookup)
        self.assertEqual(result.reason, "nonce not issued here")
        same = client_authorization(
            DigestChallenger(REALM, self.clock.seconds, secret=secret).challenges()[0]
        )
        self.assertTrue(mine.verify("REGISTER", same, self.lookup).ok)

    def test_wrong_realm(self) -> None:
        """Credentials for another realm fail without a lookup."""
        value = client_authorization(self.challenge(), realm="example.net")
        result = self.verify(value)
        self.assertFalse(result.ok)
        self.assertEqual(result.reason, "realm 'example.net'")
        self.assertEqual(self.lookups, [])

    def test_wrong_password(self) -> None:
        """A response from a wrong password fails."""
        result = self.verify(client_authorization(self.challenge(), password="x"))
        self.assertEqual(
            result, DigestResult(False, USER, "SHA-256", False, "wrong response")
        )

    def test_unknown_user(self) -> None:
        """An unknown user fails like a wrong password, with its own log reason."""
        result = self.verify(client_authorization(self.challenge(), username="eve"))
        self.assertFalse(result.ok)
        self.assertEqual(result.username, "eve")
        self.assertEqual(result.reason, "no digest credentials for this user")

    def test_algorithm_not_offered(self) -> None:
        """An algorithm the challenger does not accept fails."""
        sha_only = DigestChallenger(REALM, self.clock.seconds, algorithms=("SHA-256",))
        value = client_authorization(sha_only.challenges()[0], algorithm="MD5")
        result = sha_only.verify("REGISTER", value, self.lookup)
        self.assertFalse(result.ok)
        self.assertEqual(result.reason, "algorithm 'MD5'")
        unknown = client_authorization(self.challenge()).replace(
            "algorithm=SHA-256", "algorithm=SHA-512"
        )
        self.assertEqual(self.verify(unknown).reason, "algorithm 'SHA-512'")

    def test_request_uri(self) -> None:
        """When the request URI is given, the uri parameter must match it."""
        value = client_authorization(self.challenge())
        ok = self.challenger.verify("REGISTER", value, self.lookup, URI)
        self.assertTrue(ok.ok)
        value = client_authorization(self.challenge())
        other = self.challenger.verify(
            "REGISTER", value, self.lookup, "sip:other.example.com"
        )
        self.assertFalse(other.ok)

    def test_opaque_must_match(self) -> None:
        """A configured opaque must come back unchanged."""
        challenger = DigestChallenger(REALM, self.clock.seconds, opaque="op")
        value = client_authorization(challenger.challenges()[0])
        self.assertTrue(
            challenger.verify("REGISTER", value + ', opaque="op"', self.lookup).ok
        )
        result = challenger.verify(
            "REGISTER",
            client_authorization(challenger.challenges()[0]) + ', opaque="no"',
            self.lookup,
        )
        self.assertEqual(result.reason, "opaque changed")

    def test_malformed(self) -> None:
        """Unparsable or incomplete headers fail without a lookup."""
        good = client_authorization(self.challenge())
        for value, reason in (
            ("Digest username=", "malformed"),
            ("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "malformed"),
            ('Basic realm="example.com"', "scheme 'Basic'"),
            (good.replace("Digest", "Basic"), "scheme 'Basic'"),
            (good.replace('response="', 'rsp="'), "no response"),
            (good.replace("qop=auth", "qop=auth-int"), "qop 'auth-int'"),
            (good.replace("nc=00000001", "nc=1"), "qop=auth needs nc"),
            (good.replace('response="', 'response="zz'), "response is not hex"),
        ):
            result = self.verify(value)
            self.assertFalse(result.ok, value)
            self.assertTrue(result.reason.startswith(reason), result.reason)
        self.assertEqual(self.lookups, [])

    def test_quoted_params_tolerated(self) -> None:
        """Clients that quote algorithm, qop and nc still verify."""
        value = client_authorization(self.challenge())
        value = (
            value.replace("algorithm=SHA-256", 'algorithm="sha-256"')
            .replace("qop=auth", 'qop="auth"')
            .replace("nc=00000001", 'nc="00000001"')
        )
        self.assertTrue(self.verify(value).ok)

    def test_bad_configuration(self) -> None:
        """Unknown algorithms, none at all, or a non-positive lifetime are refused."""
        self.assertRaises(
            ValueError, DigestChallenger, REALM, self.clock.seconds, algorithms=()
        )
        self.assertRaises(
            ValueError, DigestChallenger, REALM, self.clock.seconds,
            algorithms=("SHA-1",),
        )
        self.assertRaises(
            ValueError, DigestChallenger, REALM, self.clock.seconds, nonce_lifetime=0
        )
