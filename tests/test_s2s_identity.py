"""Peer certificates: chain verification and RFC 6120 13.7.1.2 identities."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from OpenSSL import crypto
from twisted.trial.unittest import SynchronousTestCase

from convergence.tls import generate_self_signed
from convergence.xmpp.s2s.identity import (
    chain_verifies,
    matches_domain,
    trust_store,
    xmpp_addrs,
)
from tests.testca import TestCA


def load(path: Path) -> crypto.X509:
    return crypto.X509.from_cryptography(x509.load_pem_x509_certificate(path.read_bytes()))


class Handshake:
    """What a finished TLS handshake tells of the peer (its chain)."""

    def __init__(self, cert: crypto.X509 | None) -> None:
        self.cert = cert

    def get_peer_certificate(self) -> crypto.X509 | None:
        return self.cert

    def get_peer_cert_chain(self) -> list[crypto.X509]:
        return [self.cert] if self.cert is not None else []


class IdentityTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.ca = TestCA(Path(self.mktemp()))

    def test_dns_id(self) -> None:
        cert = load(self.ca.issue("a", dns=("a.test",))[0])
        self.assertTrue(matches_domain(cert, "a.test"))
        self.assertFalse(matches_domain(cert, "b.test"))
        self.assertFalse(matches_domain(cert, "x.a.test"))

    def test_wildcard_dns_id(self) -> None:
        cert = load(self.ca.issue("w", dns=("*.a.test",))[0])
        self.assertTrue(matches_domain(cert, "conference.a.test"))
        self.assertFalse(matches_domain(cert, "a.test"))

    def test_srv_id(self) -> None:
        cert = load(self.ca.issue("s", srv=("_xmpp-server.s.test",))[0])
        self.assertTrue(matches_domain(cert, "s.test"))
        self.assertFalse(matches_domain(cert, "t.test"))
        client_only = load(self.ca.issue("c", srv=("_xmpp-client.c.test",))[0])
        self.assertFalse(matches_domain(client_only, "c.test"))

    def test_xmpp_addr(self) -> None:
        path = self.ca.issue("x", xmpp=("x.test",))[0]
        self.assertEqual(xmpp_addrs(x509.load_pem_x509_certificate(path.read_bytes())),
                         ["x.test"])
        self.assertTrue(matches_domain(load(path), "x.test"))
        self.assertFalse(matches_domain(load(path), "y.test"))

    def test_chain(self) -> None:
        """Issued by the trusted CA: verifies; expired, self-signed or no
        certificate at all: does not."""
        store = trust_store(str(self.ca.ca_file))
        good = load(self.ca.issue("a", dns=("a.test",))[0])
        self.assertTrue(chain_verifies(Handshake(good), store))
        expired = load(self.ca.issue("e", dns=("e.test",), expired=True)[0])
        self.assertFalse(chain_verifies(Handshake(expired), store))
        self_signed = crypto.X509.from_cryptography(
            x509.load_pem_x509_certificate(generate_self_signed(["a.test"])))
        self.assertFalse(chain_verifies(Handshake(self_signed), store))
        self.assertFalse(chain_verifies(Handshake(None), store))
        other_ca = TestCA(Path(self.mktemp()))
        self.assertFalse(chain_verifies(Handshake(good), trust_store(str(other_ca.ca_file))))
