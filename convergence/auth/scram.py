# -*- test-case-name: tests.test_scram -*-
"""
SCRAM (RFC 5802, RFC 7677): stored credentials and the server side of one
exchange, without I/O.

The server never sees nor stores a password during SCRAM: it keeps the salt,
the iteration count, C{StoredKey} and C{ServerKey}.  An unknown user gets a
fake but stable credential, so the exchange fails only at its last step and
the answers do not reveal which accounts exist.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Mapping

from convergence.auth.errors import SaslError
from convergence.auth.saslprep import SASLprepError, saslprep

__all__ = [
    "MECHANISMS",
    "MIN_ITERATIONS",
    "ScramCredential",
    "ScramError",
    "ScramServerExchange",
    "derive_credential",
    "verify_password",
]

#: SASL mechanism name to hashlib name, in order of preference.
MECHANISMS = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-1": "sha1"}

#: The smallest iteration count accepted (RFC 5802 section 5.1 and RFC 7677).
MIN_ITERATIONS = 4096

_SALT_SIZE = 16
_PRINTABLE = re.compile(r"[\x21-\x2b\x2d-\x7e]+")
_SASLNAME = re.compile(r"(?:[^=,\x00]|=2C|=3D)+")
_ATTRIBUTE = re.compile(r"[A-Za-z]=")
#: RFC 5802 C{cb-name}
_CB_NAME = re.compile(r"[A-Za-z0-9.-]+")
#: Per-process secret behind the fake credentials of unknown users.
_FAKE_SECRET = secrets.token_bytes(32)


class ScramError(SaslError):
    """A SCRAM exchange failed; C{condition} is the RFC 6120 condition."""


@dataclass(frozen=True)
class ScramCredential:
    """What the server stores for one account and one SCRAM hash."""

    hash_name: str
    salt: bytes
    iterations: int
    stored_key: bytes = field(repr=False)
    server_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_hash(self.hash_name)
        size = hashlib.new(self.hash_name).digest_size
        if len(self.stored_key) != size or len(self.server_key) != size:
            raise ValueError(f"keys must be {size} bytes for {self.hash_name}")
        if not self.salt:
            raise ValueError("salt must not be empty")
        if self.iterations < 1:
            raise ValueError("iterations must be positive")


def _check_hash(hash_name: str) -> None:
    if hash_name not in MECHANISMS.values():
        raise ValueError(f"unsupported SCRAM hash {hash_name!r}")


def _hmac(hash_name: str, key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hash_name).digest()


def _keys(
    password: str, hash_name: str, salt: bytes, iterations: int
) -> tuple[bytes, bytes]:
    """Return C{(StoredKey, ServerKey)} for an already prepared password."""
    salted = hashlib.pbkdf2_hmac(hash_name, password.encode("utf-8"), salt, iterations)
    client_key = _hmac(hash_name, salted, b"Client Key")
    stored_key = hashlib.new(hash_name, client_key).digest()
    return stored_key, _hmac(hash_name, salted, b"Server Key")


def derive_credential(
    password: str,
    hash_name: str,
    iterations: int = MIN_ITERATIONS,
    salt: bytes | None = None,
) -> ScramCredential:
    """
    Derive the stored credential for C{password} (SASLprepped first).

    @raise ValueError: unknown hash, too few iterations, or the password does
        not survive SASLprep (L{SASLprepError}).
    """
    _check_hash(hash_name)
    if iterations < MIN_ITERATIONS:
        raise ValueError(f"iterations must be at least {MIN_ITERATIONS}")
    if salt is None:
        salt = secrets.token_bytes(_SALT_SIZE)
    prepared = saslprep(password)
    stored_key, server_key = _keys(prepared, hash_name, salt, iterations)
    return ScramCredential(hash_name, salt, iterations, stored_key, server_key)


def verify_password(password: str, credential: ScramCredential) -> bool:
    """
    Check a clear-text password (SASL PLAIN) against a stored credential.

    CPU heavy by design (PBKDF2): run it in a thread.
    """
    try:
        prepared = saslprep(password, allow_unassigned=True)
    except SASLprepError:
        return False
    stored_key, _ = _keys(
        prepared, credential.hash_name, credential.salt, credential.iterations
    )
    return hmac.compare_digest(stored_key, credential.stored_key)


def fake_credential(username: str, hash_name: str, iterations: int) -> ScramCredential:
    """A stable credential for an unknown user that no proof can match."""

    def derive(label: bytes) -> bytes:
        data = label + b"\x00" + username.encode("utf-8")
        return hmac.new(_FAKE_SECRET, data, hash_name).digest()

    return ScramCredential(
        hash_name,
        derive(b"salt")[:_SALT_SIZE],
        iterations,
        derive(b"stored-key"),
        derive(b"server-key"),
    )


def _text(message: bytes) -> str:
    try:
        return message.decode("utf-8")
    except UnicodeDecodeError:
        raise ScramError("incorrect-encoding", "message is not UTF-8") from None


def _b64decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ScramError("malformed-request", f"{what} is not base64") from None


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _saslname(value: str) -> str | None:
    """Decode a RFC 5802 C{saslname}; C{None} if it is not one."""
    if not _SASLNAME.fullmatch(value):
        return None
    return value.replace("=2C", ",").replace("=3D", "=")


def _check_extensions(attributes: list[str]) -> None:
    for attribute in attributes:
        if not _ATTRIBUTE.match(attribute):
            raise ScramError("malformed-request", "malformed attribute")


class ScramServerExchange:
    """
    The server side of one SCRAM exchange.

    Call L{client_first}, L{server_first} and L{client_final} in that order;
    each failure raises L{ScramError} and ends the exchange.

    @ivar username: the SASLprepped authentication identity, once known.
    @ivar authzid: the requested authorization identity, or C{None}.
    """

    def __init__(
        self,
        hash_name: str,
        nonce: str | None = None,
        fake_iterations: int = MIN_ITERATIONS,
        channel_bindings: Mapping[str, bytes] | None = None,
        plus_offered: bool = False,
    ) -> None:
        """
        @param nonce: the server's nonce part (tests); random by default.
        @param fake_iterations: iteration count shown for unknown users;
            pass the one real credentials use.
        @param channel_bindings: for a C{-PLUS} mechanism, the channel
            binding data by type offered on this connection (RFC 5056);
            C{None} for a mechanism without channel binding.
        @param plus_offered: whether the server offered C{-PLUS} mechanisms
            on this stream (a client flag C{y} then means a downgrade).
        """
        _check_hash(hash_name)
        if nonce is None:
            nonce = secrets.token_urlsafe(24)
        elif not _PRINTABLE.fullmatch(nonce):
            raise ValueError("nonce must be printable ASCII without commas")
        self.hash_name = hash_name
        self._bindings = None if channel_bindings is None else dict(channel_bindings)
        self._plus_offered = plus_offered
        #: the channel binding type the client chose (C{-PLUS} only)
        self.binding_type: str | None = None
        self._cbind_data = b""
        self.username: str | None = None
        self.authzid: str | None = None
        self._server_nonce = nonce
        self._fake_iterations = fake_iterations
        self._state = "client-first"
        self._gs2_header = ""
        self._client_first_bare = ""
        self._client_nonce = ""
        self._server_first = ""
        self._credential: ScramCredential | None = None

    def _expect(self, state: str) -> None:
        if self._state != state:
            self._state = "failed"
            raise ScramError("malformed-request", "unexpected SCRAM message")

    def client_first(self, message: bytes) -> str:
        """Parse client-first-message; return the SASLprepped username."""
        self._expect("client-first")
        try:
            username = self._parse_client_first(_text(message))
        except ScramError:
            self._state = "failed"
            raise
        self.username = username
        self._state = "server-first"
        return username

    def _parse_client_first(self, text: str) -> str:
        parts = text.split(",", 2)
        if len(parts) != 3:
            raise ScramError("malformed-request", "missing GS2 header")
        flag, authzid, bare = parts
        self._check_binding_flag(flag)
        if authzid:
            decoded = _saslname(authzid[2:]) if authzid.startswith("a=") else None
            if decoded is None:
                raise ScramError("invalid-authzid", "malformed authorization identity")
            self.authzid = decoded
        attributes = bare.split(",")
        if attributes[0].startswith("m="):
            raise ScramError("malformed-request", "unsupported mandatory extension")
        if (
            len(attributes) < 2
            or not attributes[0].startswith("n=")
            or not attributes[1].startswith("r=")
        ):
            raise ScramError("malformed-request", "missing username or nonce")
        _check_extensions(attributes[2:])
        username = _saslname(attributes[0][2:])
        if username is None:
            raise ScramError("malformed-request", "malformed username")
        nonce = attributes[1][2:]
        if not _PRINTABLE.fullmatch(nonce):
            raise ScramError("malformed-request", "malformed client nonce")
        try:
            prepared = saslprep(username, allow_unassigned=True)
        except SASLprepError as e:
            raise ScramError("not-authorized", f"username: {e}") from None
        if not prepared:
            raise ScramError("not-authorized", "empty username")
        self._gs2_header = f"{flag},{authzid},"
        self._client_first_bare = bare
        self._client_nonce = nonce
        return prepared

    def _check_binding_flag(self, flag: str) -> None:
        """Apply RFC 5802 section 6 to the GS2 channel binding flag."""
        if flag.startswith("p="):
            name = flag[2:]
            if not _CB_NAME.fullmatch(name):
                raise ScramError("malformed-request", "bad channel binding type")
            if self._bindings is None:
                raise ScramError(
                    "malformed-request", "channel binding needs a -PLUS mechanism")
            if name not in self._bindings:
                raise ScramError(
                    "malformed-request", "unsupported channel binding type")
            self.binding_type = name
            self._cbind_data = self._bindings[name]
            return
        if flag not in ("n", "y"):
            raise ScramError("malformed-request", "bad channel binding flag")
        if self._bindings is not None:
            raise ScramError(
                "malformed-request", "a -PLUS mechanism needs channel binding")
        if flag == "y" and self._plus_offered:
            # The client supports channel binding and thinks the server does
            # not, although it offered it: the offer was stripped on the way.
            raise ScramError("not-authorized", "server does support channel binding")

    def server_first(self, credential: ScramCredential | None) -> bytes:
        """
        Build server-first-message for the user's credential, or C{None} when
        the user is unknown (the exchange then fails at L{client_final}).
        """
        self._expect("server-first")
        assert self.username is not None
        if credential is None:
            credential = fake_credential(
                self.username, self.hash_name, self._fake_iterations
            )
        elif credential.hash_name != self.hash_name:
            self._state = "failed"
            raise ValueError(
                f"{credential.hash_name} credential for a {self.hash_name} exchange"
            )
        self._credential = credential
        self._server_first = (
            f"r={self._client_nonce}{self._server_nonce}"
            f",s={_b64encode(credential.salt)},i={credential.iterations}"
        )
        self._state = "client-final"
        return self._server_first.encode("ascii")

    def client_final(self, message: bytes) -> bytes:
        """Verify client-final-message; return server-final-message."""
        self._expect("client-final")
        try:
            result = self._verify_client_final(_text(message))
        except ScramError:
            self._state = "failed"
            raise
        self._state = "done"
        return result

    def _verify_client_final(self, text: str) -> bytes:
        assert self._credential is not None
        without_proof, _, proof_attribute = text.rpartition(",")
        attributes = without_proof.split(",")
        if (
            not proof_attribute.startswith("p=")
            or len(attributes) < 2
            or not attributes[0].startswith("c=")
            or not attributes[1].startswith("r=")
        ):
            raise ScramError(
                "malformed-request", "missing channel binding, nonce or proof"
            )
        _check_extensions(attributes[2:])
        binding = _b64decode(attributes[0][2:], "channel binding")
        proof = _b64decode(proof_attribute[2:], "proof")
        expected = self._gs2_header.encode("utf-8") + self._cbind_data
        if not hmac.compare_digest(binding, expected):
            raise ScramError("not-authorized", "channel binding mismatch")
        if attributes[1][2:] != self._client_nonce + self._server_nonce:
            raise ScramError("not-authorized", "nonce mismatch")
        credential = self._credential
        if len(proof) != len(credential.stored_key):
            raise ScramError("malformed-request", "proof has the wrong length")
        auth_message = ",".join(
            (self._client_first_bare, self._server_first, without_proof)
        ).encode("utf-8")
        signature = _hmac(self.hash_name, credential.stored_key, auth_message)
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        stored_key = hashlib.new(self.hash_name, client_key).digest()
        if not hmac.compare_digest(stored_key, credential.stored_key):
            raise ScramError("not-authorized", "invalid proof")
        server_signature = _hmac(self.hash_name, credential.server_key, auth_message)
        return b"v=" + _b64encode(server_signature).encode("ascii")
