"""
XEP-0368 direct TLS: the real server's direct TLS port on loopback, a real
client library (slixmpp, in a subprocess) logging in over it with ALPN and
certificate verification, and raw TLS sockets checking what the stream
offers.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from convergence.config import load_config
from convergence.service import build
from convergence.xmpp.features.caps import ver
from convergence.xmpp.features.disco import server_info

SCENARIO = Path(__file__).with_name("slixmpp_direct_tls.py")
HEADER = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
          b" xmlns:stream='http://etherx.jabber.org/streams' to='localhost'"
          b" version='1.0'>")


def read_until(sock: socket.socket, needle: bytes, limit: float = 10.0) -> bytes:
    sock.settimeout(limit)
    data = b""
    while needle not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


class DirectTlsTests(TestCase):
    timeout = 120

    def setUp(self) -> None:
        data = Path(self.mktemp())
        self.server = build(load_config(overrides={"data_dir": str(data)}), reactor)
        self.server.accounts.add("alice@localhost", "wonderland")
        self.port = reactor.listenTCP(0, self.server.c2s_tls_factory(),
                                      interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.addCleanup(self.server.close)
        self.cafile = str(self.server.config.certificate_path)
        self.features: dict[str, frozenset[str] | None] = {}
        self.server.xmpp.bus.hook("caps/updated", self._caps_updated)

    def _caps_updated(self, stream) -> None:
        self.features[str(stream.jid)] = stream.client_features

    async def run_scenario(self, mechanism: str) -> dict:
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            [str(SCENARIO), str(self.port.getHost().port), self.cafile, mechanism],
            env=dict(os.environ),
        )
        self.assertEqual(code, 0, err.decode(errors="replace")[-3000:])
        return json.loads(out.decode().strip().splitlines()[-1])

    def check(self, result: dict, mechanism: str) -> None:
        self.assertTrue(result["started"], result)
        self.assertTrue(result["tls"])
        self.assertEqual(result["alpn"], "xmpp-client")
        self.assertEqual(result["mechanism"], mechanism)
        self.assertEqual(result["jid"], "alice@localhost/direct")
        self.assertFalse(result["starttls_offered"])
        self.assertTrue(result["ping"])
        # slixmpp verified the server's caps against its caps node
        self.assertEqual(result["server_ver"], ver(server_info(self.server.xmpp)))
        # the server asked slixmpp for its caps node#ver, verified the hash
        # and set the stream's client_features
        [node] = result["disco_asked"]
        self.assertEqual(node, f"{result['caps_node']}#{result['own_ver']}")
        features = self.features.get("alice@localhost/direct")
        self.assertIsNotNone(features)
        self.assertIn("http://jabber.org/protocol/caps", features)
        self.assertIn("urn:xmpp:ping", features)
        self.assertIn(("sha-1", result["own_ver"]), self.server.xmpp.caps.cache)

    async def test_plain_over_direct_tls(self) -> None:
        """slixmpp logs in over direct TLS with PLAIN, which a required-TLS
        policy allows on a stream that is TLS from the first byte."""
        self.assertTrue(self.server.config.xmpp.require_tls)
        self.check(await self.run_scenario("PLAIN"), "PLAIN")

    async def test_scram_over_direct_tls(self) -> None:
        """slixmpp logs in over direct TLS with SCRAM-SHA-256."""
        self.check(await self.run_scenario("SCRAM-SHA-256"), "SCRAM-SHA-256")

    def raw(self, alpn: list[str] | None, then: bytes = b"") -> tuple[str | None, bytes]:
        """A raw TLS socket: handshake (verifying the certificate), stream
        header, features; then C{then} and what the server answers."""
        context = ssl.create_default_context(cafile=self.cafile)
        if alpn is not None:
            context.set_alpn_protocols(alpn)
        port = self.port.getHost().port
        with context.wrap_socket(socket.create_connection(("127.0.0.1", port), 10),
                                 server_hostname="localhost") as tls:
            tls.sendall(HEADER)
            data = read_until(tls, b"</stream:features>")
            if then:
                tls.sendall(then)
                data += read_until(tls, b"</stream:stream>")
            return tls.selected_alpn_protocol(), data

    async def test_raw_tls_stream(self) -> None:
        """TLS from the first byte: ALPN xmpp-client is selected, the
        features offer SASL with PLAIN and no STARTTLS; a client without
        ALPN (or asking another protocol) still gets the stream; a
        STARTTLS request on it fails and closes the stream."""
        alpn, data = await deferToThread(self.raw, ["xmpp-client"])
        self.assertEqual(alpn, "xmpp-client")
        self.assertNotIn(b"starttls", data)
        self.assertIn(b"<mechanism>PLAIN</mechanism>", data)
        self.assertIn(b"<mechanism>SCRAM-SHA-256</mechanism>", data)
        alpn, data = await deferToThread(self.raw, None)
        self.assertIsNone(alpn)
        self.assertIn(b"<mechanism>PLAIN</mechanism>", data)
        alpn, data = await deferToThread(self.raw, ["h2"])
        self.assertIsNone(alpn)
        self.assertIn(b"<mechanism>PLAIN</mechanism>", data)
        _, data = await deferToThread(
            self.raw, ["xmpp-client"], b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        self.assertIn(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", data)

    async def test_plaintext_on_the_tls_port_is_refused(self) -> None:
        """Plain XML on the direct TLS port is not a TLS handshake: the
        connection closes without a stream."""
        def plaintext() -> bytes:
            port = self.port.getHost().port
            with socket.create_connection(("127.0.0.1", port), 10) as sock:
                sock.sendall(HEADER)
                return read_until(sock, b"</stream:features>")

        data = await deferToThread(plaintext)
        self.assertNotIn(b"stream:features", data)
        self.assertNotIn(b"<stream:stream", data)


class DirectTlsServiceTests(TestCase):
    """make_service listens with the direct TLS factory on c2s_tls_port."""

    def tls_listeners(self, **overrides) -> list:
        from twisted.application import internet

        from convergence.service import make_service

        config = load_config(overrides={"data_dir": str(Path(self.mktemp())), **overrides})
        top = make_service(config, reactor)
        self.addCleanup(top.server.close)
        return [s for s in top if isinstance(s, internet.TCPServer)
                and getattr(s.args[1], "direct_tls", None) is not None]

    def test_listener_on_the_default_port(self) -> None:
        """By default 5223 gets a factory whose streams start TLS at once,
        with the context offering ALPN xmpp-client."""
        [listener] = self.tls_listeners()
        self.assertEqual(listener.args[0], 5223)
        self.assertEqual(listener.kwargs["interface"], "127.0.0.1")

    def test_zero_disables(self) -> None:
        """c2s_tls_port 0: no direct TLS listener."""
        self.assertEqual(self.tls_listeners(c2s_tls_port=0), [])
