"""
SCRAM-*-PLUS channel binding in L{convergence.auth.scram} (RFC 5802
section 6), against a client written here from the RFC's formulas.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from twisted.trial.unittest import SynchronousTestCase

from convergence.auth.scram import ScramError, ScramServerExchange, derive_credential

CREDENTIAL = derive_credential("pencil", "sha256", 4096, b"0123456789abcdef")
BINDINGS = {"tls-server-end-point": b"\x01" * 32, "tls-unique": b"\x02" * 12}


def run(
    flag: str,
    cbind_data: bytes = b"",
    bindings: dict[str, bytes] | None = BINDINGS,
    plus_offered: bool = True,
    password: str = "pencil",
) -> bytes:
    """One exchange with GS2 flag C{flag}; the server-final-message."""
    server = ScramServerExchange(
        "sha256", channel_bindings=bindings, plus_offered=plus_offered)
    gs2 = f"{flag},,".encode()
    bare = b"n=user,r=clientnonce"
    server.client_first(gs2 + bare)
    server_first = server.server_first(CREDENTIAL)
    nonce = dict(a.split(b"=", 1) for a in server_first.split(b","))[b"r"]
    without_proof = b"c=" + base64.b64encode(gs2 + cbind_data) + b",r=" + nonce
    auth = b",".join((bare, server_first, without_proof))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), CREDENTIAL.salt, 4096)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored = hashlib.sha256(client_key).digest()
    signature = hmac.new(stored, auth, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    final = server.client_final(without_proof + b",p=" + base64.b64encode(proof))
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    expected = hmac.new(server_key, auth, "sha256").digest()
    assert final == b"v=" + base64.b64encode(expected), final
    return final


class ChannelBindingTests(SynchronousTestCase):
    def assertFails(self, condition: str, *args, **kwargs) -> None:
        with self.assertRaises(ScramError) as caught:
            run(*args, **kwargs)
        self.assertEqual(caught.exception.condition, condition)

    def test_each_offered_type_binds(self) -> None:
        for name, data in BINDINGS.items():
            run(f"p={name}", data)

    def test_binding_type_recorded(self) -> None:
        server = ScramServerExchange("sha256", channel_bindings=BINDINGS)
        server.client_first(b"p=tls-unique,,n=user,r=abc")
        self.assertEqual(server.binding_type, "tls-unique")

    def test_wrong_cbind_data(self) -> None:
        self.assertFails("not-authorized", "p=tls-server-end-point", b"\x03" * 32)

    def test_other_types_data(self) -> None:
        self.assertFails("not-authorized", "p=tls-server-end-point",
                         BINDINGS["tls-unique"])

    def test_missing_cbind_data(self) -> None:
        """c= with the GS2 header alone, as a non-binding client sends."""
        self.assertFails("not-authorized", "p=tls-server-end-point", b"")

    def test_unoffered_type(self) -> None:
        self.assertFails("malformed-request", "p=tls-exporter", b"\x00" * 32)

    def test_bad_type_name(self) -> None:
        self.assertFails("malformed-request", "p=tls_unique!", b"")

    def test_p_on_non_plus(self) -> None:
        self.assertFails("malformed-request", "p=tls-unique",
                         BINDINGS["tls-unique"], bindings=None)

    def test_n_on_plus(self) -> None:
        self.assertFails("malformed-request", "n")

    def test_y_on_plus(self) -> None:
        self.assertFails("malformed-request", "y")

    def test_y_when_plus_offered_is_a_downgrade(self) -> None:
        self.assertFails("not-authorized", "y", bindings=None, plus_offered=True)

    def test_y_when_plus_not_offered(self) -> None:
        run("y", bindings=None, plus_offered=False)

    def test_n_without_plus(self) -> None:
        run("n", bindings=None, plus_offered=True)
        run("n", bindings=None, plus_offered=False)

    def test_wrong_password_with_binding(self) -> None:
        self.assertFails("not-authorized", "p=tls-unique", BINDINGS["tls-unique"],
                         password="wrong")

    def test_empty_bindings_refuse_every_type(self) -> None:
        """A -PLUS exchange on a connection without any binding type."""
        self.assertFails("malformed-request", "p=tls-unique", b"", bindings={})
