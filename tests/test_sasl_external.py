"""
SASL EXTERNAL with TLS client certificates (RFC 6120 13.8.4, XEP-0178)
over real TLS on loopback: a CA made here, client certificates naming
JIDs by XmppAddr, a raw Python C{ssl} client on the direct TLS port and
after STARTTLS, and slixmpp (an independent client) with its certificate.
"""

from __future__ import annotations

import base64
import datetime
import re
import socket
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase, TestCase

from convergence.config import ConfigError, load_config
from convergence.service import build
from convergence.xmpp.s2s.identity import XMPP_ADDR
from convergence.xmpp.sasl_external import certificate_jids
from tests.test_scram_plus_tls import HEADER, SASL, read_until

BIND = "urn:ietf:params:xml:ns:xmpp-bind"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _utf8(text: str) -> bytes:
    data = text.encode()
    return bytes([0x0C, len(data)]) + data


class Authority:
    """A CA that issues client certificates naming JIDs."""

    def __init__(self, root: Path, name: str = "Test CA") -> None:
        self.root = root
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256()))
        self.path = root / f"{name.replace(' ', '-')}.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, file_name: str, jids: list[str]) -> tuple[str, str]:
        """A client certificate and its key as PEM files."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        names = [x509.OtherName(XMPP_ADDR, _utf8(jid)) for jid in jids]
        builder = (
            x509.CertificateBuilder().subject_name(_name(file_name))
            .issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1)))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path, key_path = self.root / f"{file_name}.crt", self.root / f"{file_name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        return str(cert_path), str(key_path)


def login(port: int, server_ca: str, client: tuple[str, str] | None, *, direct: bool = True,
          authzid: str | None = "", initial: bool = True) -> tuple[bytes, bytes, bytes]:
    """Features, the answer to EXTERNAL (or b"" when not offered) and the
    bind result (b"" unless it succeeded). Blocking: run in a thread."""
    context = ssl.create_default_context(cafile=server_ca)
    if client is not None:
        context.load_cert_chain(*client)
    raw = socket.create_connection(("127.0.0.1", port), 10)
    if not direct:
        raw.sendall(HEADER)
        read_until(raw, (b"</stream:features>",))
        raw.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        read_until(raw, (b"<proceed",))
    sock = context.wrap_socket(raw, server_hostname="localhost")
    try:
        sock.sendall(HEADER)
        features = read_until(sock, (b"</stream:features>",))
        if b"<mechanism>EXTERNAL</mechanism>" not in features:
            return features, b"", b""
        encoded = "=" if not authzid else base64.b64encode(authzid.encode()).decode()
        if initial:
            sock.sendall(f"<auth xmlns='{SASL}' mechanism='EXTERNAL'>{encoded}</auth>".encode())
        else:
            sock.sendall(f"<auth xmlns='{SASL}' mechanism='EXTERNAL'/>".encode())
            read_until(sock, (b"</challenge>", b"<challenge"))
            sock.sendall(f"<response xmlns='{SASL}'>{encoded}</response>".encode())
        answer = read_until(sock, (b"</failure>", b"<success", b"</success>"))
        if b"<success" not in answer:
            return features, answer, b""
        sock.sendall(HEADER)
        read_until(sock, (b"</stream:features>",))
        sock.sendall(f"<iq type='set' id='b1'><bind xmlns='{BIND}'/></iq>".encode())
        return features, answer, read_until(sock, (b"</iq>",))
    finally:
        sock.close()


def slixmpp_login(port: int, server_ca: str, client: tuple[str, str]) -> str:
    """slixmpp (an independent client) logs in with EXTERNAL after
    STARTTLS; the mechanism it used and its bound JID. Blocking: a thread."""
    import asyncio

    import slixmpp

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    xmpp = slixmpp.ClientXMPP("alice@localhost", "")
    xmpp.certfile, xmpp.keyfile = client
    xmpp.ca_certs = server_ca
    xmpp["feature_mechanisms"].use_mech = "EXTERNAL"
    outcome = loop.create_future()

    def started(_event) -> None:
        mech = xmpp["feature_mechanisms"].mech
        outcome.set_result(f"{mech.name if mech else None} {xmpp.boundjid}")
        xmpp.disconnect()

    xmpp.add_event_handler("session_start", started)
    xmpp.add_event_handler("failed_auth", lambda _e: outcome.done()
                           or outcome.set_result("failed"))
    try:
        xmpp.connect("127.0.0.1", port)
        return loop.run_until_complete(asyncio.wait_for(outcome, 20))
    finally:
        xmpp.disconnect()
        loop.run_until_complete(asyncio.sleep(0.2))
        loop.close()


def bound_jid(result: bytes) -> str:
    match = re.search(rb"<jid>([^<]+)</jid>", result)
    assert match, result
    return match.group(1).decode()


class ExternalLoginTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        root = Path(self.mktemp())
        root.mkdir(parents=True)
        self.ca = Authority(root)
        self.other_ca = Authority(root, "Other CA")
        (root / "c.toml").write_text(f'[tls]\nclient_ca = "{self.ca.path}"\n')
        self.server = build(load_config(root / "c.toml", {"data_dir": str(root / "d")}),
                            reactor)
        self.addCleanup(self.server.close)
        for user in ("alice", "carol"):
            self.server.accounts.add(f"{user}@localhost", "secret")
        self.direct = reactor.listenTCP(0, self.server.c2s_tls_factory(), interface="127.0.0.1")
        self.starttls = reactor.listenTCP(0, self.server.c2s_factory(), interface="127.0.0.1")
        self.addCleanup(self.direct.stopListening)
        self.addCleanup(self.starttls.stopListening)
        self.server_ca = str(self.server.config.certificate_path)
        self.alice = self.ca.issue("alice", ["alice@localhost"])

    def run_login(self, client, **kwargs):
        port = (self.direct if kwargs.get("direct", True) else self.starttls).getHost().port
        return deferToThread(login, port, self.server_ca, client, **kwargs)

    async def test_certificate_logs_in(self) -> None:
        """One JID in the certificate, no authzid: logged in and bound as it."""
        features, answer, bound = await self.run_login(self.alice)
        self.assertIn(b"<mechanism>EXTERNAL</mechanism>", features)
        self.assertIn(b"<mechanism>SCRAM-SHA-256</mechanism>", features)
        self.assertIn(b"<success", answer)
        self.assertTrue(bound_jid(bound).startswith("alice@localhost/"))

    async def test_after_starttls_and_without_initial_response(self) -> None:
        _, answer, bound = await self.run_login(self.alice, direct=False, initial=False)
        self.assertIn(b"<success", answer)
        self.assertTrue(bound_jid(bound).startswith("alice@localhost/"))

    async def test_authzid(self) -> None:
        _, answer, _ = await self.run_login(self.alice, authzid="alice@localhost")
        self.assertIn(b"<success", answer)
        _, answer, _ = await self.run_login(self.alice, authzid="carol@localhost")
        self.assertIn(b"<invalid-authzid/>", answer)

    async def test_several_jids_need_an_authzid(self) -> None:
        both = self.ca.issue("both", ["alice@localhost", "carol@localhost"])
        _, answer, _ = await self.run_login(both)
        self.assertIn(b"<invalid-authzid/>", answer)
        _, answer, bound = await self.run_login(both, authzid="carol@localhost")
        self.assertIn(b"<success", answer)
        self.assertTrue(bound_jid(bound).startswith("carol@localhost/"))

    async def test_unknown_account(self) -> None:
        dave = self.ca.issue("dave", ["dave@localhost"])
        _, answer, _ = await self.run_login(dave)
        self.assertIn(b"<not-authorized/>", answer)

    async def test_not_offered_without_a_jid_here(self) -> None:
        """No client certificate, or one naming no JID of this domain: no
        EXTERNAL; passwords still work."""
        for client in (None, self.ca.issue("elsewhere", ["alice@example.org"]),
                       self.ca.issue("nobody", [])):
            features, answer, _ = await self.run_login(client)
            self.assertNotIn(b"EXTERNAL", features)
            self.assertIn(b"<mechanism>SCRAM-SHA-256</mechanism>", features)
            self.assertEqual(answer, b"")

    async def test_certificate_of_another_ca_refused(self) -> None:
        """The stdlib TLS layer verifies every certificate it asks for: one
        that does not chain to tls.client_ca fails the handshake."""
        stranger = self.other_ca.issue("stranger", ["alice@localhost"])
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            await self.run_login(stranger)


    async def test_slixmpp_logs_in_with_its_certificate(self) -> None:
        result = await deferToThread(slixmpp_login, self.starttls.getHost().port,
                                     self.server_ca, self.alice)
        mechanism, jid = result.split(" ", 1)
        self.assertEqual(mechanism, "EXTERNAL")
        self.assertTrue(jid.startswith("alice@localhost/"), jid)


class NoClientCaTests(TestCase):
    timeout = 30

    async def test_not_asked_for_without_client_ca(self) -> None:
        root = Path(self.mktemp())
        root.mkdir(parents=True)
        ca = Authority(root)
        server = build(load_config(overrides={"data_dir": str(root / "d")}), reactor)
        self.addCleanup(server.close)
        server.accounts.add("alice@localhost", "secret")
        port = reactor.listenTCP(0, server.c2s_tls_factory(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        features, answer, _ = await deferToThread(
            login, port.getHost().port, str(server.config.certificate_path),
            ca.issue("alice", ["alice@localhost"]))
        self.assertNotIn(b"EXTERNAL", features)
        self.assertEqual(answer, b"")


class ConfigTests(SynchronousTestCase):
    def test_missing_bundle(self) -> None:
        root = Path(self.mktemp())
        root.mkdir()
        (root / "c.toml").write_text('[tls]\nclient_ca = "/nonexistent/ca.pem"\n')
        with self.assertRaises(ConfigError) as caught:
            load_config(root / "c.toml", {"data_dir": str(root / "d")})
        self.assertIn("tls.client_ca", str(caught.exception))

    def test_not_a_bundle(self) -> None:
        root = Path(self.mktemp())
        root.mkdir()
        (root / "ca.pem").write_text("not a certificate\n")
        (root / "c.toml").write_text(f'[tls]\nclient_ca = "{root / "ca.pem"}"\n')
        config = load_config(root / "c.toml", {"data_dir": str(root / "d")})
        with self.assertRaises(ConfigError) as caught:
            build(config, reactor)
        self.assertIn("tls.client_ca", str(caught.exception))


class CertificateJidsTests(SynchronousTestCase):
    def test_bare_jids_of_the_domain_only(self) -> None:
        root = Path(self.mktemp())
        root.mkdir()
        cert_path, _ = Authority(root).issue("mixed", [
            "alice@localhost", "alice@localhost", "localhost", "bob@localhost/phone",
            "carol@example.org", "not a jid@@", "dave@localhost"])
        der = x509.load_pem_x509_certificate(Path(cert_path).read_bytes()).public_bytes(
            serialization.Encoding.DER)
        self.assertEqual([str(j) for j in certificate_jids(der, "localhost")],
                         ["alice@localhost", "dave@localhost"])
        self.assertEqual(certificate_jids(None, "localhost"), [])
        self.assertEqual(certificate_jids(b"garbage", "localhost"), [])
