"""
SCRAM-SHA-256-PLUS over real TLS on loopback: a raw client (Python's
C{ssl}) does STARTTLS or direct TLS, computes the channel binding from its
own side of the connection (RFC 5929), reads the XEP-0440 feature and
authenticates with binding; the server only accepts when its channel
binding data equals the client's.  For C{tls-exporter} (RFC 9266) the
client is pyOpenSSL, whose exporter is independent of the server's
(L{convergence.tls_exporter}).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import socket
import ssl
import struct
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from OpenSSL import SSL
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from convergence.config import load_config
from convergence.service import build

HEADER = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
          b" xmlns:stream='http://etherx.jabber.org/streams' to='localhost'"
          b" version='1.0'>")
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"


def read_until(sock, needles: tuple[bytes, ...], limit: float = 10.0) -> bytes:
    sock.settimeout(limit)
    data = b""
    while not any(n in data for n in needles):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def end_point(cert_der: bytes) -> bytes:
    """RFC 5929 4.1, from the client's side: the peer certificate's hash."""
    cert = x509.load_der_x509_certificate(cert_der)
    algorithm = cert.signature_hash_algorithm
    if algorithm is None or isinstance(algorithm, (hashes.MD5, hashes.SHA1)):
        return hashlib.sha256(cert_der).digest()
    return hashlib.new(algorithm.name, cert_der).digest()


def element(data: bytes, name: str) -> bytes:
    match = re.search(rb"<(?:\w+:)?" + name.encode() + rb"[^>]*>([^<]*)<", data)
    assert match, data
    return match.group(1)


class ScramPlusClient:
    """A blocking client over a TLS socket (thread only)."""

    def __init__(self, port: int, cafile: str, direct: bool,
                 max_version: ssl.TLSVersion | None = None) -> None:
        context = ssl.create_default_context(cafile=cafile)
        if max_version is not None:
            context.maximum_version = max_version
        raw = socket.create_connection(("127.0.0.1", port), 10)
        if direct:
            self.sock = context.wrap_socket(raw, server_hostname="localhost")
        else:
            raw.sendall(HEADER)
            read_until(raw, (b"</stream:features>",))
            raw.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            assert b"<proceed" in read_until(raw, (b"<proceed", b"<failure"))
            self.sock = context.wrap_socket(raw, server_hostname="localhost")
        self.sock.sendall(HEADER)
        self.features = read_until(self.sock, (b"</stream:features>",))

    def binding(self, name: str) -> bytes:
        if name == "tls-exporter":
            return self.sock.export_keying_material(b"EXPORTER-Channel-Binding", 32, b"")
        if name == "tls-server-end-point":
            return end_point(self.sock.getpeercert(binary_form=True))
        return self.sock.get_channel_binding(name)

    def authenticate(self, mechanism: str, flag: str, cbind_data: bytes,
                     password: str = "wonderland") -> bytes:
        """Run SCRAM; the server's last answer (success or failure)."""
        hash_name = "sha256" if "SHA-256" in mechanism else "sha1"
        gs2 = f"{flag},,".encode()
        bare = b"n=alice,r=" + secrets.token_urlsafe(18).encode()
        first = base64.b64encode(gs2 + bare).decode()
        self.sock.sendall(
            f"<auth xmlns='{SASL}' mechanism='{mechanism}'>{first}</auth>".encode())
        data = read_until(self.sock, (b"</challenge>", b"</failure>"))
        if b"<challenge" not in data:
            return data
        server_first = base64.b64decode(element(data, "challenge"))
        attrs = dict(a.split(b"=", 1) for a in server_first.split(b","))
        salt, iterations = base64.b64decode(attrs[b"s"]), int(attrs[b"i"])
        without_proof = (b"c=" + base64.b64encode(gs2 + cbind_data)
                         + b",r=" + attrs[b"r"])
        auth = b",".join((bare, server_first, without_proof))
        salted = hashlib.pbkdf2_hmac(hash_name, password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hash_name).digest()
        signature = hmac.new(hashlib.new(hash_name, client_key).digest(), auth,
                             hash_name).digest()
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature)))
        final = base64.b64encode(without_proof + b",p=" + proof).decode()
        self.sock.sendall(f"<response xmlns='{SASL}'>{final}</response>".encode())
        data = read_until(self.sock, (b"</success>", b"</failure>", b"<success/>"))
        if b"<success" in data:
            server_key = hmac.new(salted, b"Server Key", hash_name).digest()
            expected = b"v=" + base64.b64encode(
                hmac.new(server_key, auth, hash_name).digest())
            assert base64.b64decode(element(data, "success")) == expected, data
        return data

    def close(self) -> None:
        self.sock.close()


class _Blocking:
    """A pyOpenSSL connection whose socket keeps its kernel read timeout
    (L{read_until} would make it non-blocking)."""

    def __init__(self, connection: SSL.Connection) -> None:
        self.connection = connection

    def settimeout(self, limit: float) -> None:
        pass

    def __getattr__(self, name: str):
        return getattr(self.connection, name)


class PyOpenSSLClient(ScramPlusClient):
    """The same client with pyOpenSSL's TLS (direct TLS), which exports
    keying material itself."""

    def __init__(self, port: int, cafile: str, direct: bool,
                 max_version: ssl.TLSVersion | None = None) -> None:
        context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        context.load_verify_locations(cafile)
        context.set_verify(SSL.VERIFY_PEER)
        if max_version is ssl.TLSVersion.TLSv1_2:
            context.set_max_proto_version(SSL.TLS1_2_VERSION)
        raw = socket.create_connection(("127.0.0.1", port), 10)
        # pyOpenSSL wants a blocking socket: the kernel bounds each read.
        raw.settimeout(None)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 10, 0))
        self.sock = _Blocking(SSL.Connection(context, raw))
        self.sock.set_tlsext_host_name(b"localhost")
        self.sock.set_connect_state()
        self.sock.do_handshake()
        self.sock.sendall(HEADER)
        self.features = read_until(self.sock, (b"</stream:features>",))

    def version(self) -> str:
        return self.sock.get_protocol_version_name()

    def close(self) -> None:
        self.sock.close()


class ScramPlusTlsTests(TestCase):
    timeout = 120

    def setUp(self) -> None:
        data = Path(self.mktemp())
        self.server = build(load_config(overrides={"data_dir": str(data)}), reactor)
        self.server.accounts.add("alice@localhost", "wonderland")
        self.starttls = reactor.listenTCP(0, self.server.c2s_factory(),
                                          interface="127.0.0.1")
        self.direct = reactor.listenTCP(0, self.server.c2s_tls_factory(),
                                        interface="127.0.0.1")
        self.addCleanup(self.starttls.stopListening)
        self.addCleanup(self.direct.stopListening)
        self.addCleanup(self.server.close)
        self.cafile = str(self.server.config.certificate_path)

    def session(self, direct: bool, mechanism: str, cb_type: str | None,
                max_version: ssl.TLSVersion | None = None,
                tamper: bool = False, flag: str | None = None,
                client_class: type = ScramPlusClient) -> tuple[bytes, bytes, str]:
        port = (self.direct if direct else self.starttls).getHost().port
        client = client_class(port, self.cafile, direct, max_version)
        try:
            data = client.binding(cb_type) if cb_type else b""
            if tamper:
                data = bytes([data[0] ^ 1]) + data[1:]
            if flag is None:
                flag = f"p={cb_type}" if cb_type else "n"
            answer = client.authenticate(mechanism, flag, data)
            version = (client.version() if isinstance(client, PyOpenSSLClient)
                       else client.sock.version())
            return client.features, answer, version or ""
        finally:
            client.close()

    def assertOffers(self, features: bytes, types: list[str]) -> None:
        self.assertIn(b"<mechanism>SCRAM-SHA-256-PLUS</mechanism>", features)
        self.assertIn(b"<mechanism>SCRAM-SHA-1-PLUS</mechanism>", features)
        self.assertIn(b"<mechanism>SCRAM-SHA-256</mechanism>", features)
        cb = re.search(rb"<sasl-channel-binding xmlns=\"urn:xmpp:sasl-cb:0\">(.*?)"
                       rb"</sasl-channel-binding>", features)
        self.assertIsNotNone(cb, features)
        offered = re.findall(rb"<channel-binding type=\"([^\"]+)\"/>", cb.group(1))
        self.assertEqual([t.decode() for t in offered], types)

    async def test_starttls_tls13_end_point(self) -> None:
        features, answer, version = await deferToThread(
            self.session, False, "SCRAM-SHA-256-PLUS", "tls-server-end-point")
        self.assertEqual(version, "TLSv1.3")
        self.assertOffers(features, ["tls-exporter", "tls-server-end-point"])
        self.assertIn(b"<success", answer)

    async def test_direct_tls_end_point_sha1(self) -> None:
        features, answer, _ = await deferToThread(
            self.session, True, "SCRAM-SHA-1-PLUS", "tls-server-end-point")
        self.assertOffers(features, ["tls-exporter", "tls-server-end-point"])
        self.assertIn(b"<success", answer)

    async def test_starttls_tls12_unique(self) -> None:
        """TLS 1.2 adds tls-unique: the client's and the server's
        Finished-based data agree."""
        features, answer, version = await deferToThread(
            self.session, False, "SCRAM-SHA-256-PLUS", "tls-unique",
            ssl.TLSVersion.TLSv1_2)
        self.assertEqual(version, "TLSv1.2")
        self.assertOffers(features, ["tls-server-end-point", "tls-unique"])
        self.assertIn(b"<success", answer)

    async def test_tls13_exporter(self) -> None:
        """TLS 1.3: tls-exporter is offered first, and the server's
        exported bytes equal pyOpenSSL's on the other end."""
        for mechanism in ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"):
            features, answer, version = await deferToThread(
                self.session, True, mechanism, "tls-exporter",
                client_class=PyOpenSSLClient)
            self.assertEqual(version, "TLSv1.3")
            self.assertOffers(features, ["tls-exporter", "tls-server-end-point"])
            self.assertIn(b"<success", answer, mechanism)

    async def test_tls13_exporter_wrong_data(self) -> None:
        _, answer, _ = await deferToThread(
            self.session, True, "SCRAM-SHA-256-PLUS", "tls-exporter", tamper=True,
            client_class=PyOpenSSLClient)
        self.assertIn(b"<not-authorized/>", answer)

    async def test_exporter_refused_on_tls12(self) -> None:
        """Not offered on TLS 1.2 (only safe there with the extended master
        secret), so asking for it is refused."""
        features, answer, version = await deferToThread(
            self.session, True, "SCRAM-SHA-256-PLUS", "tls-exporter",
            ssl.TLSVersion.TLSv1_2, client_class=PyOpenSSLClient)
        self.assertEqual(version, "TLSv1.2")
        self.assertOffers(features, ["tls-server-end-point", "tls-unique"])
        self.assertIn(b"<malformed-request/>", answer)

    async def test_tls_unique_refused_on_tls13(self) -> None:
        _, answer, _ = await deferToThread(
            self.session, False, "SCRAM-SHA-256-PLUS", "tls-unique")
        self.assertIn(b"<malformed-request/>", answer)

    async def test_wrong_binding_data(self) -> None:
        _, answer, _ = await deferToThread(
            self.session, True, "SCRAM-SHA-256-PLUS", "tls-server-end-point",
            tamper=True)
        self.assertIn(b"<not-authorized/>", answer)

    async def test_downgrade_detected(self) -> None:
        """y on SCRAM-SHA-256 while -PLUS was offered: refused."""
        _, answer, _ = await deferToThread(
            self.session, False, "SCRAM-SHA-256", None, flag="y")
        self.assertIn(b"<not-authorized/>", answer)

    async def test_plain_scram_still_works(self) -> None:
        _, answer, _ = await deferToThread(
            self.session, False, "SCRAM-SHA-256", None)
        self.assertIn(b"<success", answer)
