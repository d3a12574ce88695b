"""Tests for L{convergence.auth.scram}."""

from __future__ import annotations

import base64
import hashlib
import hmac

from twisted.trial.unittest import SynchronousTestCase

from convergence.auth.errors import SaslError
from convergence.auth.scram import (
    MECHANISMS,
    ScramCredential,
    ScramError,
    ScramServerExchange,
    derive_credential,
    verify_password,
)

# RFC 5802 section 5 (SCRAM-SHA-1).
SHA1_SALT = base64.b64decode("QSXCR+Q6sek8bf92")
SHA1_SERVER_NONCE = "3rfcNHYJY1ZVvWVs7j"
SHA1_CLIENT_FIRST = b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
SHA1_SERVER_FIRST = (
    b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
)
SHA1_CLIENT_FINAL = (
    b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
    b"p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
)
SHA1_SERVER_FINAL = b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="

# RFC 7677 section 3 (SCRAM-SHA-256).
SHA256_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
SHA256_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
SHA256_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
SHA256_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
SHA256_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
SHA256_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

SHA1_CREDENTIAL = derive_credential("pencil", "sha1", 4096, SHA1_SALT)
SHA256_CREDENTIAL = derive_credential("pencil", "sha256", 4096, SHA256_SALT)


def sha1_exchange() -> ScramServerExchange:
    """An RFC 5802 exchange that has sent its server-first-message."""
    exchange = ScramServerExchange("sha1", nonce=SHA1_SERVER_NONCE)
    exchange.client_first(SHA1_CLIENT_FIRST)
    exchange.server_first(SHA1_CREDENTIAL)
    return exchange


class MechanismTests(SynchronousTestCase):
    """The mechanism table."""

    def test_preference_order(self) -> None:
        """SCRAM-SHA-256 is preferred to SCRAM-SHA-1."""
        self.assertEqual(list(MECHANISMS), ["SCRAM-SHA-256", "SCRAM-SHA-1"])
        self.assertEqual(MECHANISMS["SCRAM-SHA-1"], "sha1")
        self.assertEqual(MECHANISMS["SCRAM-SHA-256"], "sha256")

    def test_scram_error_is_sasl_error(self) -> None:
        """L{ScramError} carries a condition and is a L{SaslError}."""
        error = ScramError("not-authorized", "bad proof")
        self.assertIsInstance(error, SaslError)
        self.assertEqual(error.condition, "not-authorized")
        self.assertEqual(error.text, "bad proof")

    def test_unknown_condition_refused(self) -> None:
        """Only RFC 6120 conditions can be raised."""
        self.assertRaises(ValueError, ScramError, "bad-thing", "")


class CredentialTests(SynchronousTestCase):
    """L{derive_credential} and L{verify_password}."""

    def test_rfc5802_keys(self) -> None:
        """The RFC 5802 password yields the keys its exchange proves."""
        self.assertEqual(SHA1_CREDENTIAL.hash_name, "sha1")
        self.assertEqual(SHA1_CREDENTIAL.salt, SHA1_SALT)
        self.assertEqual(SHA1_CREDENTIAL.iterations, 4096)
        self.assertEqual(len(SHA1_CREDENTIAL.stored_key), 20)
        self.assertEqual(len(SHA256_CREDENTIAL.server_key), 32)

    def test_random_salt(self) -> None:
        """Without a salt, a fresh 16-byte salt is drawn each time."""
        first = derive_credential("pencil", "sha256")
        second = derive_credential("pencil", "sha256")
        self.assertEqual(len(first.salt), 16)
        self.assertNotEqual(first.salt, second.salt)
        self.assertNotEqual(first.stored_key, second.stored_key)

    def test_too_few_iterations(self) -> None:
        """Fewer than 4096 iterations are refused."""
        self.assertRaises(ValueError, derive_credential, "pencil", "sha1", 4095)

    def test_unknown_hash(self) -> None:
        """Only SHA-1 and SHA-256 are supported."""
        self.assertRaises(ValueError, derive_credential, "pencil", "md5")

    def test_password_is_saslprepped(self) -> None:
        """Passwords equal after SASLprep derive the same keys."""
        prepared = derive_credential("I\u00adX", "sha1", salt=SHA1_SALT)
        plain = derive_credential("IX", "sha1", salt=SHA1_SALT)
        self.assertEqual(prepared, plain)

    def test_prohibited_password(self) -> None:
        """A password that fails SASLprep cannot become a credential."""
        self.assertRaises(ValueError, derive_credential, "a\u0007", "sha1")

    def test_verify_password(self) -> None:
        """The right password verifies, another does not."""
        self.assertTrue(verify_password("pencil", SHA1_CREDENTIAL))
        self.assertTrue(verify_password("pencil", SHA256_CREDENTIAL))
        self.assertFalse(verify_password("pencil2", SHA256_CREDENTIAL))
        self.assertFalse(verify_password("\u0007", SHA256_CREDENTIAL))

    def test_repr_hides_keys(self) -> None:
        """The keys are not shown in a credential's repr."""
        text = repr(SHA1_CREDENTIAL)
        self.assertNotIn("stored_key", text)
        self.assertNotIn("server_key", text)

    def test_key_length_checked(self) -> None:
        """Keys of the wrong size for the hash are refused."""
        self.assertRaises(
            ValueError, ScramCredential, "sha256", b"salt", 4096, b"x" * 20, b"x" * 20
        )


class VectorTests(SynchronousTestCase):
    """The exchanges of RFC 5802 section 5 and RFC 7677 section 3."""

    def test_rfc5802_sha1(self) -> None:
        """SCRAM-SHA-1: the exact server messages of RFC 5802."""
        exchange = ScramServerExchange("sha1", nonce=SHA1_SERVER_NONCE)
        self.assertEqual(exchange.client_first(SHA1_CLIENT_FIRST), "user")
        self.assertIsNone(exchange.authzid)
        self.assertEqual(exchange.server_first(SHA1_CREDENTIAL), SHA1_SERVER_FIRST)
        self.assertEqual(exchange.client_final(SHA1_CLIENT_FINAL), SHA1_SERVER_FINAL)

    def test_rfc7677_sha256(self) -> None:
        """SCRAM-SHA-256: the exact server messages of RFC 7677."""
        exchange = ScramServerExchange("sha256", nonce=SHA256_SERVER_NONCE)
        self.assertEqual(exchange.client_first(SHA256_CLIENT_FIRST), "user")
        self.assertEqual(
            exchange.server_first(SHA256_CREDENTIAL), SHA256_SERVER_FIRST
        )
        self.assertEqual(
            exchange.client_final(SHA256_CLIENT_FINAL), SHA256_SERVER_FINAL
        )

    def test_default_nonce(self) -> None:
        """Without a nonce, a random printable one without commas is added."""
        exchange = ScramServerExchange("sha256")
        exchange.client_first(SHA256_CLIENT_FIRST)
        first = exchange.server_first(SHA256_CREDENTIAL).decode("ascii")
        nonce = first.split(",")[0][2:]
        self.assertTrue(nonce.startswith("rOprNGfwEbeRWgbNEkqO"))
        self.assertGreater(len(nonce), len("rOprNGfwEbeRWgbNEkqO") + 16)
        self.assertTrue(all(0x21 <= ord(c) <= 0x7E for c in nonce))
        other = ScramServerExchange("sha256")
        other.client_first(SHA256_CLIENT_FIRST)
        self.assertNotEqual(other.server_first(SHA256_CREDENTIAL).decode(), first)


class ClientFirstTests(SynchronousTestCase):
    """Parsing client-first-message."""

    def client_first(self, message: bytes) -> ScramServerExchange:
        """Return an exchange that has parsed C{message}."""
        exchange = ScramServerExchange("sha1", nonce="abc")
        exchange.client_first(message)
        return exchange

    def assertRefused(self, message: bytes, condition: str) -> None:
        """Assert C{message} fails as client-first-message with C{condition}."""
        exchange = ScramServerExchange("sha1", nonce="abc")
        error = self.assertRaises(ScramError, exchange.client_first, message)
        self.assertEqual(error.condition, condition)

    def test_escaped_username(self) -> None:
        """C{=2C} and C{=3D} decode to comma and equals sign."""
        exchange = ScramServerExchange("sha1", nonce="abc")
        self.assertEqual(exchange.client_first(b"n,,n=a=2Cb=3Dc,r=xyz"), "a,b=c")
        self.assertEqual(exchange.username, "a,b=c")

    def test_username_saslprepped(self) -> None:
        """The returned username is SASLprepped."""
        exchange = ScramServerExchange("sha1", nonce="abc")
        message = "n,,n=I\u00adX,r=xyz".encode("utf-8")
        self.assertEqual(exchange.client_first(message), "IX")

    def test_authzid(self) -> None:
        """An C{a=} authzid is decoded and kept."""
        exchange = self.client_first(b"n,a=odd=2Cname=3D,n=user,r=xyz")
        self.assertEqual(exchange.authzid, "odd,name=")
        exchange = self.client_first(b"y,a=juliet@example.com,n=user,r=xyz")
        self.assertEqual(exchange.authzid, "juliet@example.com")

    def test_bad_authzid(self) -> None:
        """A malformed authzid fails with invalid-authzid."""
        self.assertRefused(b"n,a=bad=ZZ,n=user,r=xyz", "invalid-authzid")
        self.assertRefused(b"n,x=foo,n=user,r=xyz", "invalid-authzid")

    def test_channel_binding_refused(self) -> None:
        """C{p=} is refused: no -PLUS mechanism is offered."""
        self.assertRefused(b"p=tls-unique,,n=user,r=xyz", "malformed-request")

    def test_bad_gs2_flag(self) -> None:
        """Only C{n}, C{y} and C{p=} are GS2 flags."""
        self.assertRefused(b"x,,n=user,r=xyz", "malformed-request")

    def test_missing_attributes(self) -> None:
        """Username and nonce are required, in that order."""
        self.assertRefused(b"n,,n=user", "malformed-request")
        self.assertRefused(b"n,,r=xyz,n=user", "malformed-request")
        self.assertRefused(b"n,,", "malformed-request")
        self.assertRefused(b"n=user,r=xyz", "malformed-request")

    def test_mandatory_extension(self) -> None:
        """A reserved C{m=} attribute fails the exchange."""
        self.assertRefused(b"n,,m=ext,n=user,r=xyz", "malformed-request")

    def test_bad_username_escape(self) -> None:
        """An C{=} not followed by C{2C} or C{3D} is malformed."""
        self.assertRefused(b"n,,n=us=er,r=xyz", "malformed-request")
        self.assertRefused(b"n,,n=,r=xyz", "malformed-request")

    def test_bad_nonce(self) -> None:
        """The client nonce must be printable ASCII."""
        self.assertRefused("n,,n=user,r=x\u00e9".encode("utf-8"), "malformed-request")
        self.assertRefused(b"n,,n=user,r=", "malformed-request")

    def test_not_utf8(self) -> None:
        """Non-UTF-8 data fails with incorrect-encoding."""
        self.assertRefused(b"n,,n=\xff,r=xyz", "incorrect-encoding")

    def test_prohibited_username(self) -> None:
        """A username that fails SASLprep is not authorized."""
        self.assertRefused(b"n,,n=a\x07b,r=xyz", "not-authorized")

    def test_extensions_ignored(self) -> None:
        """Optional extensions after the nonce are accepted."""
        exchange = self.client_first(b"n,,n=user,r=xyz,x=ext")
        self.assertEqual(exchange.username, "user")


class ClientFinalTests(SynchronousTestCase):
    """Verifying client-final-message."""

    def assertRefused(
        self, exchange: ScramServerExchange, message: bytes, condition: str
    ) -> None:
        """Assert C{message} fails as client-final-message with C{condition}."""
        error = self.assertRaises(ScramError, exchange.client_final, message)
        self.assertEqual(error.condition, condition)

    def test_wrong_proof(self) -> None:
        """A proof for another password is not authorized."""
        exchange = ScramServerExchange("sha1", nonce=SHA1_SERVER_NONCE)
        exchange.client_first(SHA1_CLIENT_FIRST)
        other = derive_credential("pencil2", "sha1", 4096, SHA1_SALT)
        exchange.server_first(other)
        self.assertRefused(exchange, SHA1_CLIENT_FINAL, "not-authorized")

    def test_tampered_proof(self) -> None:
        """A modified proof is not authorized."""
        message = SHA1_CLIENT_FINAL.replace(b"p=v0X8", b"p=v1X8")
        self.assertRefused(sha1_exchange(), message, "not-authorized")

    def test_unknown_user(self) -> None:
        """
        An unknown user gets a plausible, stable server-first-message and is
        refused only at the final step.
        """
        exchange = ScramServerExchange("sha1", nonce=SHA1_SERVER_NONCE)
        exchange.client_first(SHA1_CLIENT_FIRST)
        first = exchange.server_first(None)
        prefix = b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s="
        self.assertTrue(first.startswith(prefix))
        self.assertTrue(first.endswith(b",i=4096"))
        self.assertRefused(exchange, SHA1_CLIENT_FINAL, "not-authorized")
        again = ScramServerExchange("sha1", nonce=SHA1_SERVER_NONCE)
        again.client_first(SHA1_CLIENT_FIRST)
        self.assertEqual(again.server_first(None), first)

    def test_unknown_users_differ(self) -> None:
        """Different unknown users get different fake salts."""
        first = ScramServerExchange("sha1", nonce="n")
        first.client_first(b"n,,n=alice,r=x")
        second = ScramServerExchange("sha1", nonce="n")
        second.client_first(b"n,,n=bob,r=x")
        self.assertNotEqual(
            first.server_first(None).split(b",")[1],
            second.server_first(None).split(b",")[1],
        )

    def test_fake_iterations(self) -> None:
        """Unknown users show the configured iteration count."""
        exchange = ScramServerExchange("sha1", nonce="n", fake_iterations=10000)
        exchange.client_first(b"n,,n=alice,r=x")
        self.assertTrue(exchange.server_first(None).endswith(b",i=10000"))

    def test_tampered_nonce(self) -> None:
        """A nonce other than the combined one is not authorized."""
        message = SHA1_CLIENT_FINAL.replace(b"VvWVs7j", b"VvWVs7k")
        self.assertRefused(sha1_exchange(), message, "not-authorized")

    def test_channel_binding_mismatch(self) -> None:
        """C{c=} must echo the GS2 header exactly."""
        message = SHA1_CLIENT_FINAL.replace(b"c=biws", b"c=eSws")
        self.assertRefused(sha1_exchange(), message, "not-authorized")

    def test_y_flag_full_exchange(self) -> None:
        """A client computing its proof with the C{y} flag authenticates."""
        exchange = ScramServerExchange("sha256", nonce="srv")
        exchange.client_first(b"y,,n=user,r=cli")
        server_first = exchange.server_first(SHA256_CREDENTIAL)
        final = client_final(
            "pencil", SHA256_SALT, b"y,,", b"n=user,r=cli", server_first, "sha256"
        )
        self.assertTrue(exchange.client_final(final).startswith(b"v="))

    def test_bad_base64(self) -> None:
        """Invalid base64 in C{c=} or C{p=} is malformed."""
        message = SHA1_CLIENT_FINAL.replace(b"c=biws", b"c=bi!s")
        self.assertRefused(sha1_exchange(), message, "malformed-request")
        message = SHA1_CLIENT_FINAL.replace(b"HI4Ts=", b"HI4Ts")
        self.assertRefused(sha1_exchange(), message, "malformed-request")

    def test_missing_attributes(self) -> None:
        """Channel binding, nonce and proof are required."""
        nonce = b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j"
        for message in (
            b"c=biws," + nonce,
            nonce + b",p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            b"c=biws,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            b"",
        ):
            self.assertRefused(sha1_exchange(), message, "malformed-request")

    def test_short_proof(self) -> None:
        """A proof of the wrong length is malformed."""
        message = SHA1_CLIENT_FINAL.split(b",p=")[0] + b",p=AAAA"
        self.assertRefused(sha1_exchange(), message, "malformed-request")

    def test_not_utf8(self) -> None:
        """Non-UTF-8 data fails with incorrect-encoding."""
        message = b"c=biws,r=\xff,p=AA=="
        self.assertRefused(sha1_exchange(), message, "incorrect-encoding")


class OrderTests(SynchronousTestCase):
    """Steps out of order fail with malformed-request."""

    def test_final_before_first(self) -> None:
        """client_final before any other step is refused."""
        exchange = ScramServerExchange("sha1", nonce=SHA1_SERVER_NONCE)
        error = self.assertRaises(ScramError, exchange.client_final, SHA1_CLIENT_FINAL)
        self.assertEqual(error.condition, "malformed-request")

    def test_server_first_before_client_first(self) -> None:
        """server_first needs a parsed client-first-message."""
        exchange = ScramServerExchange("sha1", nonce=SHA1_SERVER_NONCE)
        error = self.assertRaises(ScramError, exchange.server_first, SHA1_CREDENTIAL)
        self.assertEqual(error.condition, "malformed-request")

    def test_client_first_twice(self) -> None:
        """A second client-first-message is refused."""
        exchange = ScramServerExchange("sha1", nonce=SHA1_SERVER_NONCE)
        exchange.client_first(SHA1_CLIENT_FIRST)
        error = self.assertRaises(ScramError, exchange.client_first, SHA1_CLIENT_FIRST)
        self.assertEqual(error.condition, "malformed-request")

    def test_nothing_after_success(self) -> None:
        """A finished exchange accepts nothing more."""
        exchange = sha1_exchange()
        exchange.client_final(SHA1_CLIENT_FINAL)
        error = self.assertRaises(ScramError, exchange.client_final, SHA1_CLIENT_FINAL)
        self.assertEqual(error.condition, "malformed-request")

    def test_nothing_after_failure(self) -> None:
        """After a failure, even a correct message is refused."""
        exchange = sha1_exchange()
        self.assertRaises(ScramError, exchange.client_final, b"garbage")
        error = self.assertRaises(ScramError, exchange.client_final, SHA1_CLIENT_FINAL)
        self.assertEqual(error.condition, "malformed-request")

    def test_credential_hash_mismatch(self) -> None:
        """A SHA-1 credential cannot serve a SHA-256 exchange."""
        exchange = ScramServerExchange("sha256", nonce="abc")
        exchange.client_first(SHA256_CLIENT_FIRST)
        self.assertRaises(ValueError, exchange.server_first, SHA1_CREDENTIAL)


def client_final(
    password: str,
    salt: bytes,
    gs2_header: bytes,
    client_first_bare: bytes,
    server_first: bytes,
    hash_name: str,
) -> bytes:
    """Compute a client-final-message as an RFC 5802 client does."""
    nonce = server_first.split(b",")[0]
    iterations = int(server_first.split(b",i=")[1])
    salted = hashlib.pbkdf2_hmac(hash_name, password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hash_name).digest()
    stored_key = hashlib.new(hash_name, client_key).digest()
    without_proof = b"c=" + base64.b64encode(gs2_header) + b"," + nonce
    auth_message = b",".join((client_first_bare, server_first, without_proof))
    signature = hmac.new(stored_key, auth_message, hash_name).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    return without_proof + b",p=" + base64.b64encode(proof)
