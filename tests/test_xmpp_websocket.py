"""
XMPP over WebSocket (RFC 7395) on the HTTP listener of a real server, over
loopback sockets, with a raw autobahn client: the handshake (subprotocol),
framing, login, routing to a TCP client, malformed messages, stream
management resumption, the per-address limit, XEP-0156 host-meta.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from lxml import etree
from twisted.internet import defer, protocol, reactor, task
from twisted.trial.unittest import TestCase

from convergence.config import load_config
from convergence.service import build
from tests import wshelpers
from tests.wshelpers import CLOSE, FRAMING, OPEN, connect, login

SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
STREAMS = "http://etherx.jabber.org/streams"
ERRORS = "urn:ietf:params:xml:ns:xmpp-streams"
SM = "urn:xmpp:sm:3"


class _Raw(protocol.Protocol):
    """Collects the bytes of a raw HTTP exchange."""

    def __init__(self) -> None:
        self.data = b""
        self.done: defer.Deferred = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if b"\r\n\r\n" in self.data and not self.done.called:
            self.done.callback(self.data)

    def connectionLost(self, reason=None) -> None:
        if not self.done.called:
            self.done.callback(self.data)


async def raw_http(port: int, request: bytes) -> bytes:
    """Send C{request}, return the response head (bounded wait)."""
    creator = protocol.ClientCreator(reactor, _Raw)
    proto = await creator.connectTCP("127.0.0.1", port)
    proto.transport.write(request)
    proto.done.addTimeout(10, reactor)
    data = await proto.done
    proto.transport.loseConnection()
    return data


def upgrade(protocols: str | None, path: str = "/xmpp-websocket") -> bytes:
    head = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n")
    if protocols is not None:
        head += f"Sec-WebSocket-Protocol: {protocols}\r\n"
    return (head + "\r\n").encode()


class WsCase(TestCase):
    """A real server with its HTTP listener and a c2s port on loopback."""

    timeout = 60

    def build(self, **xmpp) -> None:
        data = Path(self.mktemp())
        # listen.https_port set so that the HTTPS twin of the site is built
        # (the tests listen on port 0 themselves)
        config = load_config(overrides={"data_dir": str(data), "https_port": 1})
        config = replace(config, xmpp=replace(config.xmpp, auth_failure_delay=0.0,
                                              **xmpp))
        self.server = build(config, reactor)
        for jid, password in (("alice@localhost", "wonderland"),
                              ("bob@localhost", "builder")):
            self.server.accounts.add(jid, password)
        self.http = reactor.listenTCP(0, self.server.http, interface="127.0.0.1")
        self.port = self.http.getHost().port
        self.server.container.factories["http"].base_url = f"http://127.0.0.1:{self.port}"
        self.c2s = reactor.listenTCP(0, self.server.c2s_factory(), interface="127.0.0.1")
        self.addCleanup(self.c2s.stopListening)
        self.addCleanup(self.http.stopListening)
        self.addCleanup(self.server.close)
        self.addCleanup(lambda: defer.ensureDeferred(self._close_clients()))
        self.clients: list[wshelpers.RawWs] = []

    async def _close_clients(self) -> None:
        for ws in self.clients:
            if not ws.closed.called:
                ws.dropConnection(abort=True)
                await ws.wait_closed()
        # the server side notices too (bounded)
        for _ in range(200):
            if not self.server.xmpp.connections:
                break
            await task.deferLater(reactor, 0.01, lambda: None)

    async def connect(self, **kw) -> wshelpers.RawWs:
        ws = await connect(self.port, **kw)
        self.clients.append(ws)
        return ws

    async def login(self, user: str, password: str, resource: str = "ws"):
        ws, seen = await login(self.port, user, password, resource)
        self.clients.append(ws)
        return ws, seen

    async def get(self, path: str) -> tuple[bytes, bytes]:
        """GET C{path}: the response head and body."""
        creator = protocol.ClientCreator(reactor, _Raw)
        proto = await creator.connectTCP("127.0.0.1", self.port)
        proto.transport.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Connection: close\r\n\r\n".encode())
        lost: defer.Deferred = defer.Deferred()
        proto.connectionLost = lambda reason=None: lost.callback(None)
        lost.addTimeout(10, reactor)
        await lost
        head, _, body = proto.data.partition(b"\r\n\r\n")
        return head, body


class XmppWebSocketTests(WsCase):
    def setUp(self) -> None:
        self.build()

    # Handshake
    async def test_subprotocol_is_answered(self) -> None:
        head = await raw_http(self.port, upgrade("xmpp"))
        self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
        self.assertIn(b"sec-websocket-protocol: xmpp", head.lower())

    async def test_missing_subprotocol_refused(self) -> None:
        head = await raw_http(self.port, upgrade(None))
        self.assertTrue(head.startswith(b"HTTP/1.1 400"), head)
        self.assertNotIn(b"sec-websocket-protocol", head.lower())

    async def test_wrong_subprotocol_refused(self) -> None:
        head = await raw_http(self.port, upgrade("sip, mqtt"))
        self.assertTrue(head.startswith(b"HTTP/1.1 400"), head)

    async def test_plain_get_is_not_a_websocket(self) -> None:
        head = await raw_http(self.port, b"GET /xmpp-websocket HTTP/1.1\r\n"
                                         b"Host: 127.0.0.1\r\n\r\n")
        self.assertFalse(head.startswith(b"HTTP/1.1 101"), head)
        self.assertTrue(head.startswith(b"HTTP/1.1 426"), head)

    async def test_per_address_limit(self) -> None:
        self.server.xmpp.config = replace(self.server.xmpp.config,
                                          max_connections_per_ip=1)
        ws = await self.connect()
        ws.send(OPEN)
        await ws.element()
        head = await raw_http(self.port, upgrade("xmpp"))
        self.assertTrue(head.startswith(b"HTTP/1.1 503"), head)

    async def test_forwarded_for_from_a_trusted_proxy(self) -> None:
        """Behind a proxy on loopback, per-address accounting and the log
        use the client's address from X-Forwarded-For."""
        ws = await self.connect(headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.5"})
        ws.send(OPEN)
        await ws.element()
        [stream] = list(self.server.xmpp.connections)
        self.assertEqual(stream.peer_ip(), "203.0.113.5")
        self.assertEqual(self.server.xmpp._per_ip.count("203.0.113.5"), 1)
        self.assertTrue(stream.secure)  # the proxy's connection is on loopback

    # Framing and negotiation
    async def test_open_features_without_starttls(self) -> None:
        ws = await self.connect()
        ws.send(OPEN)
        opened = await ws.element()
        self.assertEqual(opened.tag, f"{{{FRAMING}}}open")
        self.assertEqual(opened.get("from"), "localhost")
        self.assertEqual(opened.get("version"), "1.0")
        self.assertTrue(opened.get("id"))
        features = await ws.element()
        self.assertEqual(features.tag, f"{{{STREAMS}}}features")
        self.assertIsNone(features.find("{urn:ietf:params:xml:ns:xmpp-tls}starttls"))
        mechs = [m.text for m in features.iter(f"{{{SASL}}}mechanism")]
        # loopback counts as secure by default: PLAIN is offered
        self.assertIn("SCRAM-SHA-256", mechs)
        self.assertIn("PLAIN", mechs)

    async def test_login_and_message_to_tcp_client(self) -> None:
        ws, seen = await self.login("alice", "wonderland")
        self.assertEqual(seen[2].tag, f"{{{SASL}}}success")
        jid = seen[5].findtext(".//{urn:ietf:params:xml:ns:xmpp-bind}jid")
        self.assertEqual(jid, "alice@localhost/ws")
        # a second WebSocket user gets alice's message, routed by the
        # same service layer
        bob, _ = await self.login("bob", "builder", "web")
        ws.send("<message xmlns='jabber:client' to='bob@localhost/web' type='chat'"
                " id='m1'><body>hello over ws</body></message>")
        message = await bob.element()
        self.assertEqual(message.get("from"), "alice@localhost/ws")
        self.assertEqual(message.findtext("{jabber:client}body"), "hello over ws")
        self.assertEqual(message.nsmap.get(None), "jabber:client")

    async def test_iq_ping_and_close_handshake(self) -> None:
        ws, _ = await self.login("alice", "wonderland")
        ws.send("<iq xmlns='jabber:client' type='get' id='p1' to='localhost'>"
                "<ping xmlns='urn:xmpp:ping'/></iq>")
        pong = await ws.element()
        self.assertEqual((pong.get("type"), pong.get("id")), ("result", "p1"))
        ws.send(CLOSE)
        closing = await ws.element()
        self.assertEqual(closing.tag, f"{{{FRAMING}}}close")
        self.assertEqual(await ws.wait_closed(), 1000)
        self.assertEqual(len(self.server.xmpp.connections), 0)

    async def test_shutdown_and_http_drain(self) -> None:
        """The upgraded connection leaves the HTTP site (its drain does not
        wait for it); the XMPP shutdown ends the stream per RFC 7395."""
        ws, _ = await self.login("alice", "wonderland")
        self.assertEqual(self.server.http.channels, set())
        drained = self.server.http.drain(grace=5)
        self.assertTrue(drained.called)
        self.server.xmpp.shutdown()
        error = await ws.element()
        self.assertIsNotNone(error.find(f"{{{ERRORS}}}system-shutdown"))
        self.assertEqual((await ws.element()).tag, f"{{{FRAMING}}}close")
        self.assertEqual(await ws.wait_closed(), 1000)

    async def test_bad_password(self) -> None:
        ws = await self.connect()
        ws.send(OPEN)
        await ws.element()
        await ws.element()
        ws.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>AGFsaWNlAHdyb25n</auth>")
        failure = await ws.element()
        self.assertEqual(failure.tag, f"{{{SASL}}}failure")
        self.assertIsNotNone(failure.find(f"{{{SASL}}}not-authorized"))

    # Malformed input (RFC 7395 3.3.3, RFC 6455)
    async def assert_stream_error(self, ws, condition: str, code: int = 1000) -> None:
        error = await ws.element()
        self.assertEqual(error.tag, f"{{{STREAMS}}}error")
        self.assertIsNotNone(error.find(f"{{{ERRORS}}}{condition}"),
                             etree.tostring(error))
        closing = await ws.element()
        self.assertEqual(closing.tag, f"{{{FRAMING}}}close")
        ws.send(CLOSE)
        self.assertEqual(await ws.wait_closed(), code)

    async def test_binary_message(self) -> None:
        ws, _ = await self.login("alice", "wonderland")
        ws.sendMessage(b"<presence xmlns='jabber:client'/>", True)
        await self.assert_stream_error(ws, "bad-format", 1003)

    async def test_bad_xml(self) -> None:
        ws, _ = await self.login("alice", "wonderland")
        ws.send("<message xmlns='jabber:client'><body>x</bdy></message>")
        await self.assert_stream_error(ws, "not-well-formed")

    async def test_two_elements_in_one_message(self) -> None:
        ws, _ = await self.login("alice", "wonderland")
        await self.login("bob", "builder", "web")
        ws.send("<message xmlns='jabber:client' to='bob@localhost/web'><body>1</body>"
                "</message><message xmlns='jabber:client' to='bob@localhost/web'>"
                "<body>2</body></message>")
        await self.assert_stream_error(ws, "bad-format")

    async def test_partial_element(self) -> None:
        ws, _ = await self.login("alice", "wonderland")
        ws.send("<message xmlns='jabber:client' to='bob@localhost'><body>")
        await self.assert_stream_error(ws, "not-well-formed")

    async def test_stream_header_instead_of_open(self) -> None:
        ws = await self.connect()
        ws.send("<stream:stream xmlns='jabber:client' "
                "xmlns:stream='http://etherx.jabber.org/streams' to='localhost'"
                " version='1.0'>")
        opened = await ws.element()  # RFC 7395 3.3.3: <open/> before the error
        self.assertEqual(opened.tag, f"{{{FRAMING}}}open")
        await self.assert_stream_error(ws, "not-well-formed")

    async def test_stanza_before_open(self) -> None:
        ws = await self.connect()
        ws.send("<message xmlns='jabber:client' to='bob@localhost'/>")
        await ws.element()
        await self.assert_stream_error(ws, "invalid-namespace")

    async def test_oversized_stanza(self) -> None:
        ws, _ = await self.login("alice", "wonderland")
        size = self.server.xmpp.config.max_stanza_size
        ws.send("<message xmlns='jabber:client' to='bob@localhost'><body>"
                + "x" * (size + 10) + "</body></message>")
        await self.assert_stream_error(ws, "policy-violation")

    async def test_dtd_refused(self) -> None:
        ws, _ = await self.login("alice", "wonderland")
        ws.send("<!DOCTYPE x [<!ENTITY a 'b'>]><message xmlns='jabber:client'/>")
        await self.assert_stream_error(ws, "restricted-xml")

    # XEP-0198 over WebSocket
    async def test_stream_management_resume(self) -> None:
        ws, _ = await self.login("alice", "wonderland")
        ws.send(f"<enable xmlns='{SM}' resume='true'/>")
        enabled = await ws.element()
        self.assertEqual(enabled.tag, f"{{{SM}}}enabled")
        previd = enabled.get("id")
        ws.send("<presence xmlns='jabber:client'/>")
        await ws.element()  # own presence echoed back
        ws.dropConnection(abort=True)  # the connection dies, no <close/>
        await ws.wait_closed()
        bob, _ = await self.login("bob", "builder", "web")
        bob.send("<message xmlns='jabber:client' to='alice@localhost/ws' type='chat'>"
                 "<body>while you were away</body></message>")
        # alice comes back on a new WebSocket and resumes
        again = await self.connect()
        again.send(OPEN)
        await again.element()
        await again.element()
        again.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>"
                   "AGFsaWNlAHdvbmRlcmxhbmQ=</auth>")
        await again.element()
        again.send(OPEN)
        await again.element()
        features = await again.element()
        self.assertIsNotNone(features.find(f"{{{SM}}}sm"))
        again.send(f"<resume xmlns='{SM}' previd='{previd}' h='0'/>")
        resumed = await again.element()
        self.assertEqual(resumed.tag, f"{{{SM}}}resumed", etree.tostring(resumed))
        bodies = []
        while True:
            element = await again.element()
            if element.tag == "{jabber:client}message":
                bodies.append(element.findtext("{jabber:client}body"))
                break
        self.assertEqual(bodies, ["while you were away"])
        again.send("<iq xmlns='jabber:client' type='get' id='p2' to='localhost'>"
                   "<ping xmlns='urn:xmpp:ping'/></iq>")
        while True:
            element = await again.element()
            if element.get("id") == "p2":
                break
        self.assertEqual(element.get("type"), "result")

    async def test_csi_carbons_and_mam_over_websocket(self) -> None:
        """Nonzas and the IM features work as over TCP: CSI, carbons, MAM."""
        ws, _ = await self.login("alice", "wonderland")
        other, _ = await self.login("alice", "wonderland", "second")
        bob, _ = await self.login("bob", "builder", "web")
        for client in (ws, other):
            client.send("<iq xmlns='jabber:client' type='set' id='c1'>"
                        "<enable xmlns='urn:xmpp:carbons:2'/></iq>")
            self.assertEqual((await client.element()).get("type"), "result")
        other.send("<presence xmlns='jabber:client'/>")
        ws.send("<inactive xmlns='urn:xmpp:csi:0'/>")  # a nonza, no stream error
        ws.send("<message xmlns='jabber:client' to='bob@localhost/web' type='chat'"
                " id='m2'><body>archived and carbon-copied</body></message>")
        got = await bob.element()
        self.assertEqual(got.findtext("{jabber:client}body"), "archived and carbon-copied")
        # the other resource gets the carbon copy of what ws sent
        while True:
            element = await other.element()
            if element.find("{urn:xmpp:carbons:2}sent") is not None:
                break
        forwarded = element.find(".//{jabber:client}message")
        self.assertEqual(forwarded.get("from"), "alice@localhost/ws")
        ws.send("<active xmlns='urn:xmpp:csi:0'/>")
        ws.send("<iq xmlns='jabber:client' type='set' id='q1'>"
                "<query xmlns='urn:xmpp:mam:2' queryid='f1'/></iq>")
        bodies = []
        while True:
            element = await ws.element()
            result = element.find("{urn:xmpp:mam:2}result")
            if result is not None:
                bodies.append(result.findtext(".//{jabber:client}body"))
            if element.get("id") == "q1":
                break
        self.assertEqual(element.get("type"), "result", etree.tostring(element))
        self.assertIn("archived and carbon-copied", bodies)

    # XEP-0156
    async def test_host_meta_xrd(self) -> None:
        head, body = await self.get("/.well-known/host-meta")
        self.assertIn(b"200", head.split(b"\r\n")[0])
        self.assertIn(b"application/xrd+xml", head.lower())
        self.assertIn(b"access-control-allow-origin: *", head.lower())
        root = etree.fromstring(body)
        links = [(link.get("rel"), link.get("href"))
                 for link in root.iter("{http://docs.oasis-open.org/ns/xri/xrd-1.0}Link")]
        self.assertEqual(links, [("urn:xmpp:alt-connections:websocket",
                                  f"ws://127.0.0.1:{self.port}/xmpp-websocket")])

    async def test_host_meta_json(self) -> None:
        head, body = await self.get("/.well-known/host-meta.json")
        self.assertIn(b"application/json", head.lower())
        self.assertEqual(json.loads(body), {"links": [{
            "rel": "urn:xmpp:alt-connections:websocket",
            "href": f"ws://127.0.0.1:{self.port}/xmpp-websocket"}]})


class ConfiguredWebSocketTests(WsCase):
    """Configuration: another path, a public URL, off, remote policy."""

    async def test_path_and_public_url(self) -> None:
        self.build(websocket_path="/ws", websocket_url="wss://chat.example.com/ws")
        head = await raw_http(self.port, upgrade("xmpp", "/ws"))
        self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
        head = await raw_http(self.port, upgrade("xmpp"))
        self.assertTrue(head.startswith(b"HTTP/1.1 404"), head)
        _, body = await self.get("/.well-known/host-meta.json")
        self.assertEqual(json.loads(body)["links"][0]["href"], "wss://chat.example.com/ws")

    async def test_off(self) -> None:
        self.build(websocket=False)
        head = await raw_http(self.port, upgrade("xmpp"))
        self.assertTrue(head.startswith(b"HTTP/1.1 404"), head)
        head, _ = await self.get("/.well-known/host-meta")
        self.assertIn(b"404", head.split(b"\r\n")[0])

    async def test_read_rate_pauses_the_socket(self) -> None:
        """xmpp.max_read_rate holds a WebSocket back as it does a TCP stream:
        the socket is paused, what was read is still processed."""
        self.build(max_read_rate=1000, read_burst=4096)
        ws, _ = await login(self.port, "alice", "wonderland")
        self.clients.append(ws)
        [stream] = list(self.server.xmpp.connections)
        for n in range(3):
            ws.send(f"<iq xmlns='jabber:client' type='get' id='r{n}' to='localhost'>"
                    "<ping xmlns='urn:xmpp:ping'/></iq>")
            ws.send("<message xmlns='jabber:client' to='alice@localhost/ws'><body>"
                    + "x" * 2000 + "</body></message>")
        for _ in range(200):
            if stream.read_rate.paused:
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        self.assertTrue(stream.read_rate.paused)
        ids = set()
        while len(ids) < 3:
            element = await ws.element()
            if element.get("id"):
                ids.add(element.get("id"))
        self.assertEqual(ids, {"r0", "r1", "r2"})

    async def test_forwarded_for_from_an_untrusted_peer_is_ignored(self) -> None:
        self.build(websocket_trusted_proxies=("192.0.2.0/24",))
        ws = await self.connect(headers={"X-Forwarded-For": "203.0.113.5"})
        ws.send(OPEN)
        await ws.element()
        [stream] = list(self.server.xmpp.connections)
        self.assertEqual(stream.peer_ip(), "127.0.0.1")

    async def test_not_secure_hides_plain(self) -> None:
        self.build(websocket_secure="never", require_tls=False)
        ws = await self.connect()
        ws.send(OPEN)
        await ws.element()
        features = await ws.element()
        mechs = [m.text for m in features.iter(f"{{{SASL}}}mechanism")]
        self.assertNotIn("PLAIN", mechs)
        self.assertIn("SCRAM-SHA-1", mechs)
        self.assertIsNone(features.find("{urn:ietf:params:xml:ns:xmpp-tls}starttls"))

    async def test_wss_on_the_https_listener(self) -> None:
        """Over listen.https_port the WebSocket is TLS itself: secure
        whatever websocket_secure says, PLAIN offered, the log says TLS."""
        self.build(websocket_secure="never")
        https = reactor.listenTCP(0, self.server.https, interface="127.0.0.1")
        self.addCleanup(https.stopListening)
        ws = await connect(https.getHost().port, tls=True)
        self.clients.append(ws)
        ws.send(OPEN)
        await ws.element()
        features = await ws.element()
        mechs = [m.text for m in features.iter(f"{{{SASL}}}mechanism")]
        self.assertIn("PLAIN", mechs)
        [stream] = list(self.server.xmpp.connections)
        self.assertTrue(stream.secure)
        self.assertEqual(stream.transport_note, " over WebSocket (TLS)")

    async def test_sip_websocket_upgrades_over_https_too(self) -> None:
        """The shared upgrade (convergence/http/wsupgrade.py) works over the
        HTTPS listener's TLS for SIP as for XMPP."""
        self.build()
        https = reactor.listenTCP(0, self.server.https, interface="127.0.0.1")
        self.addCleanup(https.stopListening)
        ws = await connect(https.getHost().port, protocols=["sip"], path="/sip", tls=True)
        self.clients.append(ws)
        self.assertEqual(ws.websocket_protocol_in_use, "sip")

    async def test_not_secure_refused_when_tls_required(self) -> None:
        self.build(websocket_secure="never")
        head = await raw_http(self.port, upgrade("xmpp"))
        self.assertTrue(head.startswith(b"HTTP/1.1 403"), head)
