"""
SIP over WebSocket (RFC 7118): the transport's flows on a fake connection,
and the whole stack over real loopback WebSocket connections (autobahn's
client): the handshake, messages in text and binary frames, bad input,
REGISTER, an application's INVITE routed down the registered connection,
dialogs both ways, and the connection's end removing its registrations.
"""

from __future__ import annotations

import re
import secrets
import socket
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from convergence.config import ConfigError, load_config
from convergence.sip.message import Request, Response, SipParseError, parse_message
from convergence.sip.registrar import Registrar
from convergence.sip.transport import Peer, SipTransportLayer
from convergence.store.dbthread import run_now
from convergence.store.location import MemoryLocationStore
from tests.siphelpers import (
    SEED_SDP,
    UdpPeer,
    WsPeer,
    listen_http,
    request,
    start_server,
    stop_server,
)
from tests.test_sip_core import digest


def sleep(seconds: float) -> Deferred:
    d: Deferred = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


# -- the transport layer on a fake connection ------------------------------

class FakeConnection:
    """What the transport layer needs of a SIP WebSocket connection."""

    def __init__(self, host: str = "192.0.2.7", port: int = 40000,
                 transport: str = "WS") -> None:
        self.sip_peer = Peer(transport, host, port, connection=self)
        self.connected = True
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        self.connected = False


class Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[Request, Peer]] = []
        self.responses: list[Response] = []
        self.closed: list[Peer] = []

    def request_received(self, request: Request, peer: Peer) -> None:
        self.requests.append((request, peer))

    def response_received(self, response: Response, peer: Peer) -> None:
        self.responses.append(response)

    def flow_closed(self, peer: Peer) -> None:
        self.closed.append(peer)


def ws_request(method: str = "OPTIONS", body: str = "", extra: str = "",
               host: str = "df7jal23ls0d.invalid") -> bytes:
    text = request(method, "sip:localhost", 0, transport="WS", body=body, extra=extra,
                   content_type="text/plain" if body else None)
    return text.replace("127.0.0.1:0;", f"{host};").encode()


class FlowTests(TestCase):
    def setUp(self) -> None:
        from twisted.internet.task import Clock

        self.clock = Clock()
        self.receiver = Receiver()
        self.layer = SipTransportLayer(self.clock, self.receiver, "127.0.0.1")
        self.layer.ws_port = 8080
        self.conn = FakeConnection()
        self.layer.ws_connection_made(self.conn)

    def test_flow_token_and_lookup(self) -> None:
        """A connection is a flow named ws:host:port; a closed one is not found."""
        self.assertEqual(self.conn.sip_peer.flow, "ws:192.0.2.7:40000")
        self.assertIs(self.layer.flow("ws:192.0.2.7:40000"), self.conn.sip_peer)
        self.assertIsNone(self.layer.flow("ws:192.0.2.7:40001"))
        self.conn.connected = False
        self.assertIsNone(self.layer.flow("ws:192.0.2.7:40000"))
        self.assertTrue(self.conn.sip_peer.reliable)
        self.assertTrue(self.conn.sip_peer.connection_bound)
        self.assertFalse(Peer("TCP", "h", 1).connection_bound)

    def test_received_stamped_on_invalid_via(self) -> None:
        """RFC 7118 5.2: the .invalid Via host gets received (and rport) of the
        connection; the request goes up with the flow as its peer."""
        self.layer.message_received(ws_request(), self.conn.sip_peer, exact_length=True)
        [(message, peer)] = self.receiver.requests
        via = message.top_via
        self.assertEqual(via.transport, "WS")
        self.assertEqual(via.host, "df7jal23ls0d.invalid")
        self.assertEqual(via.received, "192.0.2.7")
        self.assertEqual(via.params["rport"], "40000")
        self.assertIs(peer, self.conn.sip_peer)

    def test_response_goes_down_the_connection(self) -> None:
        """Responses go back over the flow, never to the Via's .invalid host."""
        message = parse_message(ws_request())
        self.layer.send_response(message.create_response(200), self.conn.sip_peer)
        self.assertEqual(len(self.conn.sent), 1)
        self.assertTrue(self.conn.sent[0].startswith(b"SIP/2.0 200 OK\r\n"))

    def test_response_for_closed_connection_dropped(self) -> None:
        """A response for a closed WebSocket is dropped: no connection is opened."""
        self.conn.connected = False
        message = parse_message(ws_request())
        self.layer.send_response(message.create_response(200), self.conn.sip_peer)
        self.assertEqual(self.conn.sent, [])
        self.assertEqual(self.layer.connections, {})

    def test_content_length_must_match(self) -> None:
        """On a WebSocket, bytes past the Content-Length are a 400 (one SIP
        message per WebSocket message); over UDP they are dropped."""
        data = ws_request(body="hello") + b"trailing"
        self.layer.message_received(data, self.conn.sip_peer, exact_length=True)
        self.assertEqual(self.receiver.requests, [])
        self.assertEqual(len(self.conn.sent), 1)
        self.assertTrue(self.conn.sent[0].startswith(b"SIP/2.0 400 Content-Length mismatch"))
        message = parse_message(data)
        self.assertEqual(message.body, b"hello")
        with self.assertRaises(SipParseError):
            parse_message(data, exact_length=True)

    def test_without_content_length(self) -> None:
        """Content-Length is not needed: the message is the WebSocket message."""
        data = ws_request(body="hello").replace(b"Content-Length: 5\r\n", b"")
        self.assertNotIn(b"Content-Length", data)
        self.layer.message_received(data, self.conn.sip_peer, exact_length=True)
        [(message, _)] = self.receiver.requests
        self.assertEqual(message.body, b"hello")

    def test_request_to_flow(self) -> None:
        """A request to a flow's peer goes down its connection; a closed flow
        calls the sender's error callbacks (once registered)."""
        message = parse_message(ws_request())
        self.layer.send_request(message, self.conn.sip_peer)
        self.assertEqual(len(self.conn.sent), 1)
        self.conn.connected = False
        errors: list[str] = []
        target = Peer("WS", "192.0.2.7", 40000, connection=self.conn)
        target.on_error(lambda: errors.append("gone"))
        self.layer.send_request(message, target)
        self.assertEqual(errors, [])
        self.clock.advance(0)
        self.assertEqual(errors, ["gone"])
        self.assertEqual(len(self.conn.sent), 1)

    def test_connection_lost_tells_receiver(self) -> None:
        self.layer.ws_connection_lost(self.conn)
        self.assertEqual(self.receiver.closed, [self.conn.sip_peer])
        self.assertIsNone(self.layer.flow(self.conn.sip_peer.flow))

    def test_via_and_contact_for_ws(self) -> None:
        """Our Via and Contact for a WebSocket name the HTTP listener's port."""
        self.assertRegex(self.layer.via("WS"), r"^SIP/2.0/WS 127.0.0.1:8080;branch=z9hG4bK")
        self.assertEqual(self.layer.contact_uri("bob", "WS"),
                         "sip:bob@127.0.0.1:8080;transport=ws")
        self.assertEqual(self.layer.contact_uri("bob", "TCP"),
                         "sip:bob@127.0.0.1:0;transport=tcp")
        self.assertEqual(self.layer.contact_uri("bob"), "sip:bob@127.0.0.1:0")

    def test_close_flows(self) -> None:
        self.layer.close_flows()
        self.assertFalse(self.conn.connected)


class RegistrarFlowTests(TestCase):
    def test_forget_flow(self) -> None:
        """A closed flow's bindings go, others stay; forget_flows clears every
        WebSocket binding (a restart)."""
        from convergence.config import SipConfig

        store = MemoryLocationStore()
        store.register_binding("sip:a@x", "sip:a@h.invalid;transport=ws", 100, "c", 1,
                               received="ws:1.2.3.4:5")
        store.register_binding("sip:a@x", "sip:a@1.2.3.4:5060", 100, "c2", 1,
                               received="udp:1.2.3.4:5060")
        store.register_binding("sip:b@x", "sip:b@k.invalid;transport=ws", 100, "c3", 1,
                               received="wss:1.2.3.4:6")
        registrar = Registrar(store, None, SipConfig(), lambda: 0.0, run_now)
        self.assertEqual(self.successResultOf(registrar.forget_flow("ws:1.2.3.4:5")), 1)
        self.assertEqual([b.contact for b in store.bindings("sip:a@x", 0)],
                         ["sip:a@1.2.3.4:5060"])
        self.assertEqual(self.successResultOf(registrar.lookup_bindings("sip:a@x")),
                         [("sip:a@1.2.3.4:5060", "udp:1.2.3.4:5060")])
        self.assertEqual(self.successResultOf(registrar.forget_flows()), 1)
        self.assertEqual(store.bindings("sip:b@x", 0), [])
        self.assertEqual(len(store.bindings("sip:a@x", 0)), 1)

    def test_sqlite_store(self) -> None:
        from convergence.store.sqlite import SqliteLocationStore

        store = SqliteLocationStore(self.mktemp())
        self.addCleanup(store.close)
        store.register_binding("sip:a@x", "sip:a@h.invalid;transport=ws", 100, "c", 1,
                               received="ws:1.2.3.4:5")
        store.register_binding("sip:a@x", "sip:a@g.invalid;transport=ws", 100, "c", 1,
                               received="wss:1.2.3.4:7")
        store.register_binding("sip:a@x", "sip:a@1.2.3.4", 100, "c2", 1,
                               received="w%:1")
        self.assertEqual(store.remove_received("ws:1.2.3.4:6"), 0)
        self.assertEqual(store.remove_received("ws:1.2.3.4:5"), 1)
        self.assertEqual(store.remove_received_prefix("wss:"), 1)
        self.assertEqual([b.contact for b in store.bindings("sip:a@x", 0)],
                         ["sip:a@1.2.3.4"])


class ConfigTests(TestCase):
    def load(self, text: str) -> Any:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        return load_config(path, {})

    def test_defaults(self) -> None:
        config = self.load("")
        self.assertTrue(config.sip.websocket)
        self.assertEqual(config.sip.websocket_path, "/sip")
        self.assertEqual(config.sip.websocket_ping_interval, 30.0)
        self.assertEqual(config.sip.websocket_digest_algorithms, ("SHA-256", "MD5"))
        with self.assertRaises(ConfigError):
            self.load("[sip]\nwebsocket_ping_interval = 1\n")
        with self.assertRaises(ConfigError):
            self.load('[sip]\nwebsocket_digest_algorithms = ["SHA-1"]\n')

    def test_path_is_one_segment(self) -> None:
        self.assertEqual(self.load('[sip]\nwebsocket_path = "/ws-sip"\n').sip.websocket_path,
                         "/ws-sip")
        for bad in ('"sip"', '"/a/b"', '"/"', '"/s p"', "1"):
            with self.assertRaises(ConfigError):
                self.load(f"[sip]\nwebsocket_path = {bad}\n")

    def test_off(self) -> None:
        """websocket = false: nothing is mounted at the path."""
        from convergence.service import build

        root = self.mktemp()
        config = load_config(None, {"data_dir": root})
        import dataclasses

        config = dataclasses.replace(
            config, sip=dataclasses.replace(config.sip, websocket=False))
        server = build(config, reactor)
        self.addCleanup(server.close)
        self.assertNotIn("sip", server.http.root.resources)


# -- over real sockets ------------------------------------------------------

class WsFixture(TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.server, self.udp_port = start_server(self.mktemp())
        self.addCleanup(stop_server, self.server)
        self.http_port = listen_http(self.server)
        self.server.accounts.add("romeo@localhost", "montague")

    async def connect(self, protocols: list[str] | None = None) -> WsPeer:
        peer = WsPeer.connect(self.http_port, protocols=protocols)
        await peer.opened
        self.addCleanup(peer.close)
        return peer

    async def ask(self, peer: WsPeer, method: str, status: int | None, uri: str,
                  binary: bool = False, **kwargs: Any) -> Any:
        since = len(peer.received)
        peer.send(peer.request(method, uri, **kwargs), binary=binary)
        if status is None:
            return await peer.wait(lambda m: m.status is not None and m.status >= 200,
                                   since=since)
        return await peer.wait(peer.status(status, method), since=since)

    async def register(self, peer: WsPeer, expires: int = 600) -> Any:
        uri = "sip:localhost"
        call_id = secrets.token_hex(6)
        challenge = await self.ask(peer, "REGISTER", 401, uri, call_id=call_id, cseq=1,
                                   to="<sip:romeo@localhost>", extra=f"Expires: {expires}")
        nonce = re.search(r'nonce="([^"]+)"', challenge.header("www-authenticate")).group(1)
        auth = digest("romeo", "localhost", "montague", "REGISTER", uri, nonce)
        return await self.ask(peer, "REGISTER", None, uri, call_id=call_id, cseq=2,
                              to="<sip:romeo@localhost>",
                              extra=f"Expires: {expires}\nAuthorization: {auth}")

    async def bindings(self) -> list[tuple[str, str | None]]:
        return await self.server.sip.registrar.lookup_bindings("sip:romeo@localhost")


class ChallengeOrderTests(WsFixture):
    async def test_websocket_order(self) -> None:
        """Over WebSocket the challenges come in sip.websocket_digest_algorithms
        order (MD5 last, the one the JsSIP family reads); over UDP in
        sip.digest_algorithms order."""
        peer = await self.connect()
        reply = await self.ask(peer, "REGISTER", 401, "sip:localhost",
                               to="<sip:romeo@localhost>")
        self.assertEqual([re.search(r"algorithm=([\w-]+)", v).group(1)
                          for v in reply.all("www-authenticate")], ["SHA-256", "MD5"])
        self.server.sip.registrar.authenticator.websocket_order = ("MD5", "SHA-256")
        reply = await self.ask(peer, "REGISTER", 401, "sip:localhost",
                               to="<sip:romeo@localhost>")
        self.assertEqual([re.search(r"algorithm=([\w-]+)", v).group(1)
                          for v in reply.all("www-authenticate")], ["MD5", "SHA-256"])


class HandshakeTests(WsFixture):
    def raw_handshake(self, protocol: str | None) -> bytes:
        """The server's answer to a hand-written upgrade request."""
        lines = [
            "GET /sip HTTP/1.1", f"Host: 127.0.0.1:{self.http_port}", "Upgrade: websocket",
            "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
        ]
        if protocol is not None:
            lines.append(f"Sec-WebSocket-Protocol: {protocol}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()

        def exchange() -> bytes:
            with socket.create_connection(("127.0.0.1", self.http_port), timeout=5) as s:
                s.sendall(data)
                answer = b""
                while b"\r\n\r\n" not in answer:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
                return answer

        from twisted.internet.threads import deferToThread

        return deferToThread(exchange)

    async def test_sip_subprotocol_accepted(self) -> None:
        """RFC 7118 4.1: the sip subprotocol is selected (101)."""
        answer = await self.raw_handshake("foo, sip")
        self.assertTrue(answer.startswith(b"HTTP/1.1 101 "), answer)
        self.assertIn(b"Sec-WebSocket-Protocol: sip\r\n", answer)
        self.assertIn(b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", answer)
        self.assertNotIn(b"Autobahn", answer)  # no Server header naming the library

    async def test_wrong_subprotocol_refused(self) -> None:
        """A handshake without the sip subprotocol is refused before the
        upgrade (RFC 6455 4.2.2: an HTTP error status, no 101)."""
        for offered in ("xmpp", None):
            answer = await self.raw_handshake(offered)
            self.assertTrue(answer.startswith(b"HTTP/1.1 400 "), answer)
            self.assertIn(b"\r\nContent-Length: 0\r\n", answer)
        peer = WsPeer.connect(self.http_port, protocols=["xmpp"])
        with self.assertRaises(ConnectionError):
            await peer.opened

    async def test_plain_get_is_426(self) -> None:
        """A GET without the upgrade gets 426 naming websocket, not a page."""
        def get() -> bytes:
            with socket.create_connection(("127.0.0.1", self.http_port), timeout=5) as s:
                s.sendall(f"GET /sip HTTP/1.1\r\nHost: 127.0.0.1:{self.http_port}\r\n\r\n"
                          .encode())
                answer = b""
                while chunk := s.recv(4096):
                    answer += chunk
                return answer

        from twisted.internet.threads import deferToThread

        answer = await deferToThread(get)
        self.assertTrue(answer.startswith(b"HTTP/1.1 426 "), answer)
        self.assertIn(b"\r\nUpgrade: websocket\r\n", answer)
        self.assertNotIn(b"Autobahn", answer)
        self.assertTrue(answer.endswith(b"\r\n\r\n"), answer)

    async def test_upgraded_connection_is_not_an_http_request(self) -> None:
        """The upgraded connection leaves the HTTP site's channels: stopping
        HTTP does not wait for it."""
        await self.connect()
        self.assertEqual(self.server.http.channels, set())


class MessageTests(WsFixture):
    async def test_options_text_and_binary(self) -> None:
        """OPTIONS in a text and in a binary frame: 200 back over the connection,
        the Via with received and rport."""
        peer = await self.connect()
        for binary in (False, True):
            reply = await self.ask(peer, "OPTIONS", 200, "sip:localhost", binary=binary)
            via = reply.header("via")
            self.assertIn(f"SIP/2.0/WS {peer.host};", via)
            self.assertIn("received=127.0.0.1", via)
            self.assertRegex(via, r"rport=\d+")

    async def test_malformed_gets_400_and_connection_lives(self) -> None:
        """A bad header gets 400; garbage is dropped; a frame of bytes that is
        not UTF-8 in binary is dropped; the connection goes on."""
        peer = await self.connect()
        text = peer.request("OPTIONS", "sip:localhost")
        peer.send(text.replace("Max-Forwards: 70", "Max-Forwards: abc"))
        reply = await peer.wait(lambda m: m.status == 400)
        self.assertEqual(reply.start, "SIP/2.0 400 Bad Max-Forwards")
        peer.send("this is not SIP at all")
        peer.send(b"\xff\xfe\x00garbage", binary=True)
        peer.send(text + "extra bytes past the Content-Length")
        reply = await peer.wait(lambda m: m.status == 400, since=1)
        self.assertEqual(reply.start, "SIP/2.0 400 Content-Length mismatch")
        await self.ask(peer, "OPTIONS", 200, "sip:localhost")
        self.assertEqual(self.flushLoggedErrors(), [])

    async def test_keepalive_ping(self) -> None:
        """A double CRLF is answered with a CRLF (RFC 5626 ping/pong)."""
        peer = await self.connect()
        peer.send("\r\n\r\n")
        await peer.wait(lambda m: m.raw == b"\r\n")

    async def test_oversized_message_closes_with_1009(self) -> None:
        """A WebSocket message over sip.max_message_size: close code 1009."""
        peer = await self.connect()
        peer.send("x" * (self.server.config.sip.max_message_size + 1))
        code = await peer.closed
        self.assertEqual(code, 1009)
        other = await self.connect()
        await self.ask(other, "OPTIONS", 200, "sip:localhost")

    async def test_protocol_violation_closes_with_1002(self) -> None:
        """An unmasked client frame breaks RFC 6455 5.1: the server fails the
        connection (1002) and serves the next one."""
        peer = await self.connect()
        peer.protocol.transport.write(b"\x81\x05hello")  # FIN, text, no mask
        code = await peer.closed
        self.assertEqual(code, 1002)
        other = await self.connect()
        await self.ask(other, "OPTIONS", 200, "sip:localhost")


class SecureTests(WsFixture):
    def setUp(self) -> None:
        super().setUp()
        self.http_port = listen_http(self.server, tls=True)

    async def test_wss_via_and_flow(self) -> None:
        """Over TLS the flow is WSS: a REGISTER binds to a wss: flow, our
        Via and Contact toward the client say WSS / transport=wss."""
        peer = WsPeer.connect(self.http_port, tls=True)
        await peer.opened
        self.addCleanup(peer.close)
        self.assertEqual((await self.register(peer)).status, 200)
        [(_, received)] = await self.bindings()
        self.assertRegex(received, r"^wss:127\.0\.0\.1:\d+$")
        [flow] = self.server.sip.transport.ws_connections.values()
        self.assertEqual(flow.sip_peer.transport, "WSS")
        reply = await self.ask(peer, "INVITE", 200, "sip:chatline@localhost",
                               body=SEED_SDP, content_type="application/sdp")
        self.assertIn(";transport=wss>", reply.header("contact"))


class RegistrationTests(WsFixture):
    async def test_register_bound_to_connection_removed_on_close(self) -> None:
        """REGISTER over WS: the contact is bound to the connection's flow;
        closing the connection removes the registration."""
        peer = await self.connect()
        ok = await self.register(peer)
        self.assertEqual(ok.status, 200, ok.start)
        self.assertIn(f"sip:romeo@{peer.host};transport=ws", ok.header("contact"))
        [(contact, received)] = await self.bindings()
        self.assertEqual(contact, f"sip:romeo@{peer.host};transport=ws")
        self.assertRegex(received, r"^ws:127\.0\.0\.1:\d+$")
        await peer.close()
        for _ in range(50):
            if not await self.bindings():
                break
            await sleep(0.02)
        self.assertEqual(await self.bindings(), [])

    async def test_silent_client_dropped_by_pings(self) -> None:
        """A client that stops answering pings (it stopped reading) is
        dropped after the ping timeout, and its registration goes."""
        from convergence.http.wsupgrade import WebSocketUpgrade
        from convergence.sip.ws import SipWebSocketFactory

        # autobahn's timers have whole-second buckets: 2 s is the shortest
        # interval whose timeout cannot fire before a loopback pong
        factory = SipWebSocketFactory(self.server.sip.transport, reactor, ping_interval=2)
        self.server.http.root.resources["sip-ping"] = WebSocketUpgrade(factory)
        peer = WsPeer.connect(self.http_port, path="/sip-ping")
        await peer.opened
        self.addCleanup(peer.close)
        self.assertEqual((await self.register(peer)).status, 200)
        await sleep(2.5)  # a ping answered: still there
        self.assertEqual(len(await self.bindings()), 1)
        self.assertIsNotNone(peer.protocol.transport)
        peer.protocol.transport.pauseProducing()  # reads nothing, answers no ping
        for _ in range(300):
            if not await self.bindings():
                break
            await sleep(0.02)
        self.assertEqual(await self.bindings(), [])
        self.assertEqual(self.server.sip.transport.ws_connections, {})
        peer.protocol.transport.resumeProducing()
        self.assertEqual(await peer.closed, 1006)  # dropped, no closing handshake

    async def test_dead_flow_is_not_a_target(self) -> None:
        """A WS binding whose connection is gone is never sent to: the
        app's request gets 480."""
        from tests.sipapps import CallerServlet

        CallerServlet.responses = []
        self.server.locations.register_binding(
            "sip:romeo@localhost", "sip:romeo@gone.invalid;transport=ws",
            reactor.seconds() + 600, "old", 1, received="ws:127.0.0.1:1")
        udp = UdpPeer(self.udp_port)
        self.addCleanup(udp.close)
        udp.send(request("MESSAGE", f"sip:caller@127.0.0.1:{self.udp_port}", udp.port,
                         body="sip:romeo@localhost", content_type="text/plain"))
        for _ in range(100):
            if (480, "MESSAGE") in CallerServlet.responses:
                break
            await sleep(0.02)
        self.assertIn((480, "MESSAGE"), CallerServlet.responses)


class StartupTests(TestCase):
    async def test_start_removes_websocket_bindings(self) -> None:
        """At startup the WebSocket bindings of an earlier run are removed
        (their connections are gone); the others stay."""
        from convergence.service import ConvergenceService, build

        root = self.mktemp()
        config = load_config(None, {"data_dir": root})
        server = build(config, reactor)
        later = reactor.seconds() + 600
        server.locations.register_binding("sip:a@localhost", "sip:a@x.invalid;transport=ws",
                                          later, "c1", 1, received="ws:127.0.0.1:4000")
        server.locations.register_binding("sip:a@localhost", "sip:a@127.0.0.1:5062",
                                          later, "c2", 1, received="udp:127.0.0.1:5062")
        service = ConvergenceService(server)
        service.startService()
        self.addCleanup(service.stopService)
        for _ in range(100):
            if len(await server.sip.registrar.lookup("sip:a@localhost")) == 1:
                break
            await sleep(0.02)
        self.assertEqual(await server.sip.registrar.lookup("sip:a@localhost"),
                         ["sip:a@127.0.0.1:5062"])


class DialogTests(WsFixture):
    async def test_app_invite_routed_down_the_connection(self) -> None:
        """The dialer app INVITEs the AOR registered over WS: the INVITE, the
        ACK and the BYE come down that connection, with a WS Via and
        Contact; our 200s go back over it."""
        from tests.sipapps import DialerServlet

        DialerServlet.responses = []
        peer = await self.connect()
        self.assertEqual((await self.register(peer)).status, 200)
        udp = UdpPeer(self.udp_port)
        self.addCleanup(udp.close)
        udp.send(request("MESSAGE", f"sip:dialer@127.0.0.1:{self.udp_port}", udp.port,
                         body="sip:romeo@localhost", content_type="text/plain"))
        invite = await peer.wait(lambda m: m.method == "INVITE")
        self.assertTrue(invite.start.startswith(f"INVITE sip:romeo@{peer.host};transport=ws "),
                        invite.start)
        self.assertRegex(invite.header("via"),
                         rf"^SIP/2.0/WS 127.0.0.1:{self.http_port};branch=z9hG4bK")
        self.assertIn(f":{self.http_port};transport=ws>", invite.header("contact"))
        answer = SEED_SDP.replace("m=audio 39923", "m=audio 0")
        ok = self.answer(invite, 200, answer, f"<sip:romeo@{peer.host};transport=ws>")
        peer.send(ok)
        ack = await peer.wait(lambda m: m.method == "ACK")
        bye = await peer.wait(lambda m: m.method == "BYE")
        self.assertEqual(ack.header("call-id"), invite.header("call-id"))
        self.assertEqual(bye.header("call-id"), invite.header("call-id"))
        peer.send(self.answer(bye, 200))
        for _ in range(100):
            if (200, "BYE") in DialerServlet.responses:
                break
            await sleep(0.02)
        self.assertEqual(DialerServlet.responses, [(200, "INVITE"), (200, "BYE")])

    async def test_no_retransmissions_on_a_reliable_flow(self) -> None:
        """A WebSocket is reliable: the INVITE toward it is sent once (no
        timer A), and our 200 to the client's INVITE is not retransmitted
        while its ACK is awaited (RFC 3261 13.3.1.4, 17.1.1.2)."""
        peer = await self.connect()
        self.assertEqual((await self.register(peer)).status, 200)
        udp = UdpPeer(self.udp_port)
        self.addCleanup(udp.close)
        udp.send(request("MESSAGE", f"sip:dialer@127.0.0.1:{self.udp_port}", udp.port,
                         body="sip:romeo@localhost", content_type="text/plain"))
        invite = await peer.wait(lambda m: m.method == "INVITE")
        call_id = secrets.token_hex(6)
        ok = await self.ask(peer, "INVITE", 200, "sip:chatline@localhost", call_id=call_id,
                            body=SEED_SDP, content_type="application/sdp")
        await sleep(8 * self.server.sip.timers.T1)  # UDP would have retransmitted thrice
        self.assertEqual([m.method for m in peer.received].count("INVITE"), 1)
        self.assertEqual(len([m for m in peer.received if m.status == 200
                              and m.header("call-id") == call_id]), 1)
        peer.send(self.answer(invite, 486))
        to_tag = ok.header("to").split("tag=")[1]
        peer.send(peer.request("ACK", "sip:chatline@localhost", call_id=call_id,
                               to_tag=to_tag))

    @staticmethod
    def answer(message: Any, status: int, body: str = "", contact: str | None = None) -> str:
        to = message.header("to")
        if "tag=" not in to:
            to += ";tag=ws" + secrets.token_hex(3)
        lines = [f"SIP/2.0 {status} OK"]
        lines += [f"Via: {v}" for v in message.all("via")]
        lines += [f"From: {message.header('from')}", f"To: {to}",
                  f"Call-ID: {message.header('call-id')}", f"CSeq: {message.header('cseq')}"]
        if contact:
            lines.append(f"Contact: {contact}")
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    async def test_client_invites_app_and_hangs_up(self) -> None:
        """A WS client calls the chatline app: the 200 over the connection
        (no 100: chatline answers at once, RFC 3261 17.2.1), the app's
        Contact a WS URI; ACK and BYE from the client."""
        peer = await self.connect()
        call_id = secrets.token_hex(6)
        uri = "sip:chatline@localhost"
        ok = await self.ask(peer, "INVITE", 200, uri, call_id=call_id, body=SEED_SDP,
                            content_type="application/sdp")
        self.assertNotIn(100, [m.status for m in peer.received])
        self.assertIn(";transport=ws>", ok.header("contact"))
        self.assertIn("a=jid:chatline@localhost", ok.body.decode())
        to_tag = ok.header("to").split("tag=")[1]
        [session] = self.server.container.sessions.sessions("chatline")
        sip_session = session.sessions_of("sip")[0]
        self.assertEqual(sip_session.flow.transport, "WS")
        peer.send(peer.request("ACK", uri, call_id=call_id, to_tag=to_tag))
        await self.ask(peer, "BYE", 200, uri, call_id=call_id, to_tag=to_tag, cseq=2)
        self.assertEqual(self.server.container.sessions.sessions("chatline"), [])

    async def test_app_hangs_up_down_the_connection(self) -> None:
        """The app's BYE in a dialog the WS client started goes down its flow."""
        peer = await self.connect()
        call_id = secrets.token_hex(6)
        uri = "sip:chatline@localhost"
        ok = await self.ask(peer, "INVITE", 200, uri, call_id=call_id, body=SEED_SDP,
                            content_type="application/sdp")
        to_tag = ok.header("to").split("tag=")[1]
        peer.send(peer.request("ACK", uri, call_id=call_id, to_tag=to_tag))
        [session] = self.server.container.sessions.sessions("chatline")
        session.sessions_of("sip")[0].bye()
        bye = await peer.wait(lambda m: m.method == "BYE")
        self.assertEqual(bye.header("call-id"), call_id)
        self.assertTrue(bye.start.startswith(f"BYE sip:romeo@{peer.host};transport=ws "))
        peer.send(self.answer(bye, 200))
