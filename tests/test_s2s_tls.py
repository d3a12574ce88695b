"""
Server streams over real TLS on loopback, in one process: direct TLS
(XEP-0368, ALPN xmpp-server) with SASL EXTERNAL, and an outgoing policy
that requires a valid certificate giving up on a peer without one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lxml import etree
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from convergence.config import _from_mapping
from convergence.service import build
from convergence.xmpp.router import StanzaEvent
from tests.test_s2s_twistd import free_port
from tests.testca import TestCA

#: seconds a test waits for an answer over the network
LIMIT = 15.0


def ping(from_: str, to: str, id_: str) -> etree._Element:
    return etree.fromstring(
        f"<iq xmlns='jabber:client' from='{from_}' to='{to}' type='get' id='{id_}'>"
        "<ping xmlns='urn:xmpp:ping'/></iq>".encode())


class RealTlsTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.work = Path(self.mktemp()).resolve()
        self.ca = TestCA(self.work / "ca")

    def server(self, domain: str, address: str, s2s: dict[str, Any],
               issued: bool = True, listen: dict[str, int] | None = None) -> Any:
        raw: dict[str, Any] = {"domains": [domain], "interface": address,
                               "data_dir": str(self.work / domain), "s2s": s2s}
        if issued:
            cert, key = self.ca.issue(domain, dns=(domain,))
            raw["tls"] = {"certificate": str(cert), "private_key": str(key)}
            s2s.setdefault("ca_file", str(self.ca.ca_file))
        server = build(_from_mapping(raw), reactor)
        self.addCleanup(server.close)
        for port, direct in (listen or {}).items():
            listening = reactor.listenTCP(port, server.s2s.factory(direct_tls=direct),
                                          interface=address)
            self.addCleanup(listening.stopListening)
        return server

    def answers(self, server: Any) -> list[etree._Element]:
        """iq results and errors that reach the server's own domain."""
        got: list[etree._Element] = []

        def take(event: StanzaEvent) -> bool:
            got.append(event.stanza)
            return True

        server.xmpp.bus.hook("iq/host", take, 100)
        return got

    async def wait_for(self, got: list, what: str) -> None:
        for _ in range(int(LIMIT / 0.05)):
            if got:
                return
            d: Deferred = Deferred()
            reactor.callLater(0.05, d.callback, None)
            await d
        self.fail(f"no {what} within {LIMIT} s")

    async def test_direct_tls_with_sasl_external(self) -> None:
        b_tls, a_tls = free_port("127.0.0.2"), free_port("127.0.0.1")
        b = self.server("b.test", "127.0.0.2",
                        {"hosts": {"a.test": f"tls:127.0.0.1:{a_tls}"},
                         "server_login": {"require_valid_certificate": True,
                                          "dialback": False}},
                        listen={b_tls: True})
        a = self.server("a.test", "127.0.0.1",
                        {"hosts": {"b.test": f"tls:127.0.0.2:{b_tls}"},
                         "login_to_other_server": {"require_valid_certificate": True}},
                        listen={a_tls: True})
        got = self.answers(a)
        a.xmpp.router.route(ping("a.test", "b.test", "d1"))
        await self.wait_for(got, "ping answer")
        self.assertEqual([(e.get("type"), e.get("id")) for e in got], [("result", "d1")])
        stream = a.s2s.links[("a.test", "b.test")].stream
        self.assertTrue(stream.direct_tls and stream.sasl_done and stream.peer_verified)
        self.assertEqual(stream.transport.getHandle().get_alpn_proto_negotiated(),
                         b"xmpp-server")
        (inbound,) = b.s2s.inbound
        self.assertTrue(inbound.direct_tls)
        self.assertEqual(inbound.authenticated, {("a.test", "b.test")})

    async def test_invalid_peer_certificate_refused(self) -> None:
        """login_to_other_server.require_valid_certificate: a peer with a
        self-signed certificate is given up; the stanza bounces."""
        c_port = free_port("127.0.0.3")
        self.server("c.test", "127.0.0.3", {}, issued=False, listen={c_port: False})
        a = self.server("a.test", "127.0.0.1",
                        {"hosts": {"c.test": f"127.0.0.3:{c_port}"},
                         "login_to_other_server": {"require_valid_certificate": True}})
        got = self.answers(a)
        a.xmpp.router.route(ping("a.test", "c.test", "c1"))
        await self.wait_for(got, "bounce")
        (error,) = got
        self.assertEqual(error.get("type"), "error")
        self.assertIsNotNone(error.find(
            ".//{urn:ietf:params:xml:ns:xmpp-stanzas}remote-server-not-found"))
