"""Tests for L{convergence.xmpp.channel_binding} (RFC 5929, XEP-0440)."""

from __future__ import annotations

import datetime
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from convergence.xmpp.channel_binding import (
    NS_SASL_CB,
    channel_bindings,
    end_point_hash,
    feature_element,
)
from tests.xmpphelpers import HEADER, Client, make_server


def certificate(algorithm, key=None) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, algorithm))
    return cert.public_bytes(serialization.Encoding.DER)


class EndPointTests(SynchronousTestCase):
    def test_signature_hash_used(self) -> None:
        for algorithm, name in ((hashes.SHA256(), "sha256"), (hashes.SHA384(), "sha384"),
                                (hashes.SHA512(), "sha512")):
            der = certificate(algorithm)
            self.assertEqual(end_point_hash(der), hashlib.new(name, der).digest())

    def test_sha1_upgraded_to_sha256(self) -> None:
        """OpenSSL no longer signs with SHA-1: an RSA/SHA-256 certificate
        relabelled sha1WithRSAEncryption (the signature is not checked)."""
        der = certificate(hashes.SHA256(), rsa.generate_private_key(65537, 2048))
        sha256_rsa = bytes.fromhex("2a864886f70d01010b")  # 1.2.840.113549.1.1.11
        sha1_rsa = bytes.fromhex("2a864886f70d010105")  # 1.2.840.113549.1.1.5
        self.assertEqual(der.count(sha256_rsa), 2)
        der = der.replace(sha256_rsa, sha1_rsa)
        cert = x509.load_der_x509_certificate(der)
        self.assertIsInstance(cert.signature_hash_algorithm, hashes.SHA1)
        self.assertEqual(end_point_hash(der), hashlib.sha256(der).digest())

    def test_no_signature_hash(self) -> None:
        der = certificate(None, ed25519.Ed25519PrivateKey.generate())
        self.assertEqual(end_point_hash(der), hashlib.sha256(der).digest())


class BindingsTests(SynchronousTestCase):
    def test_no_tls_no_bindings(self) -> None:
        """Plain TCP, or a WebSocket frame transport: nothing to bind to."""
        self.assertEqual(channel_bindings(StringTransport()), {})
        self.assertEqual(channel_bindings(None), {})

    def test_feature_element(self) -> None:
        element = feature_element(["tls-server-end-point", "tls-unique"])
        self.assertEqual(element.tag, f"{{{NS_SASL_CB}}}sasl-channel-binding")
        self.assertEqual([c.get("type") for c in element],
                         ["tls-server-end-point", "tls-unique"])
        self.assertEqual({c.tag for c in element},
                         {f"{{{NS_SASL_CB}}}channel-binding"})


class OfferTests(SynchronousTestCase):
    """What a stream without TLS bindings offers (as WebSocket streams
    counted as secure are)."""

    def features(self, secure: bool) -> list:
        server, _ = make_server(self.mktemp())
        client = Client(server)
        client.stream.secure = secure
        client.send(HEADER)
        return client.read()

    def test_no_plus_without_tls(self) -> None:
        for secure in (False, True):
            features = self.features(secure)[-1]
            names = [m.text for m in features.iter(
                "{urn:ietf:params:xml:ns:xmpp-sasl}mechanism")]
            self.assertIn("SCRAM-SHA-256", names)
            self.assertFalse([n for n in names if n.endswith("-PLUS")], names)
            self.assertIsNone(features.find(f"{{{NS_SASL_CB}}}sasl-channel-binding"))


class LazyBindingTests(SynchronousTestCase):
    """Offering types computes nothing; the data is computed when an
    exchange names a type, and the certificate is hashed once."""

    def test_types_without_data(self) -> None:
        from types import SimpleNamespace

        from convergence.xmpp import channel_binding
        from tests.test_tls_exporter import handshake

        server, client = handshake(self)
        server.context.end_point_certificate = certificate(hashes.SHA256())
        transport = SimpleNamespace(_tls=server, handshake_done=True)
        calls: list[str] = []
        real_exporter, real_hash = channel_binding.exporter_binding, channel_binding.end_point_hash
        self.patch(channel_binding, "exporter_binding",
                   lambda tls: calls.append("exporter") or real_exporter(tls))
        self.patch(channel_binding, "end_point_hash",
                   lambda der: calls.append("hash") or real_hash(der))
        self.assertEqual(channel_binding.binding_types(transport),
                         ["tls-exporter", "tls-server-end-point"])
        self.assertEqual(calls, [])
        first = channel_bindings(transport)
        second = channel_bindings(transport)
        self.assertEqual(first, second)
        self.assertEqual(first["tls-exporter"],
                         client.export_keying_material(b"EXPORTER-Channel-Binding", 32, b""))
        self.assertEqual(calls, ["exporter", "hash", "exporter"])
        self.assertEqual(channel_binding.binding_types(SimpleNamespace(_tls=server,
                                                                       handshake_done=False)), [])
