"""
Bad SIP input over real loopback sockets gets its own answer: control
characters in a header (400 naming it, UDP and TCP), a Content-Length
shorter than the body on TCP (the message is cut there and answered, the
rest is the next message), and a source over its request rate (503 with
Retry-After).
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from tests.siphelpers import TcpPeer, UdpPeer, request, start_server, stop_server


def sleep(seconds: float) -> Deferred:
    d: Deferred = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


class ServerFixture(TestCase):
    timeout = 30
    sip_extra = ""

    def setUp(self) -> None:
        self.server, self.port = start_server(self.mktemp(), sip_extra=self.sip_extra)
        self.addCleanup(stop_server, self.server)
        self.uri = f"sip:127.0.0.1:{self.port}"

    def udp_peer(self) -> UdpPeer:
        peer = UdpPeer(self.port)
        self.addCleanup(peer.close)
        return peer

    async def tcp_peer(self) -> tuple[TcpPeer, Deferred]:
        peer = await TcpPeer.connect(self.server.sip.transport.tcp_port)
        self.addCleanup(peer.close)
        lost: Deferred = Deferred()
        peer.connectionLost = lambda reason: lost.callback(None)
        return peer, lost


class ControlCharacterTests(ServerFixture):
    def with_nul(self, port: int, transport: str = "UDP") -> str:
        return request("OPTIONS", self.uri, port, transport=transport,
                       extra="Subject: hello\x00world")

    async def test_nul_in_header_udp(self) -> None:
        """A NUL octet in a header value: 400 naming the header; the
        listener goes on serving."""
        peer = self.udp_peer()
        peer.send(self.with_nul(peer.port))
        reply = await peer.wait(lambda m: m.status is not None)
        self.assertEqual(reply.start, "SIP/2.0 400 NUL in Subject header")
        peer.send(request("OPTIONS", self.uri, peer.port))
        await peer.wait(peer.status(200), since=1)

    async def test_nul_in_header_tcp(self) -> None:
        """The same over TCP, and the connection stays usable."""
        peer, _ = await self.tcp_peer()
        local = peer.transport.getHost().port
        peer.send(self.with_nul(local, "TCP"))
        reply = await peer.wait(lambda m: m.status is not None)
        self.assertEqual(reply.start, "SIP/2.0 400 NUL in Subject header")
        peer.send(request("OPTIONS", self.uri, local, transport="TCP"))
        await peer.wait(peer.status(200), since=1)

    async def test_control_character_in_folded_header(self) -> None:
        """A control character on a folded line names the folded header."""
        peer = self.udp_peer()
        peer.send(request("OPTIONS", self.uri, peer.port,
                          extra="Subject: hello\n wor\x01ld"))
        reply = await peer.wait(lambda m: m.status is not None)
        self.assertEqual(reply.start, "SIP/2.0 400 Control character in Subject header")


class ShortContentLengthTests(ServerFixture):
    async def test_rest_is_a_whole_message(self) -> None:
        """The bytes past a short Content-Length that form a request get
        their own answer, in order."""
        peer, _ = await self.tcp_peer()
        local = peer.transport.getHost().port
        second = request("OPTIONS", self.uri, local, transport="TCP", call_id="rest-two")
        first = request("OPTIONS", self.uri, local, transport="TCP", call_id="rest-one",
                        body=second, content_type="text/plain")
        peer.send(first.replace(f"Content-Length: {len(second)}", "Content-Length: 0"))
        await peer.wait(lambda m: m.header("call-id") == "rest-two" and m.status == 200)
        self.assertEqual([m.header("call-id") for m in peer.received], ["rest-one", "rest-two"])

    async def test_garbage_after_cut_body(self) -> None:
        """Garbage past the cut: the request is answered first, then the
        connection is closed (the stream cannot be resynchronised)."""
        peer, lost = await self.tcp_peer()
        local = peer.transport.getHost().port
        text = request("OPTIONS", self.uri, local, transport="TCP", call_id="cut-garbage",
                       body="\x16\x03garbage", content_type="text/plain")
        peer.send(text.replace("Content-Length: 9", "Content-Length: 0"))
        reply = await peer.wait(peer.status(200))
        self.assertEqual(reply.header("call-id"), "cut-garbage")
        await lost


class RateLimitTests(ServerFixture):
    # loopback is exempt by default: not in this test
    sip_extra = ("max_requests_per_second_per_source = 2\n"
                 "request_burst_per_source = 3\n"
                 "rate_limit_exempt = []")

    async def test_over_rate_gets_503_then_silence(self) -> None:
        """A burst of 3 is served, up to 3 more get 503 with Retry-After,
        the rest is dropped; after a pause the source is served again."""
        peer = self.udp_peer()
        for n in range(10):
            peer.send(request("OPTIONS", self.uri, peer.port, call_id=f"rate-{n}"))
        await peer.wait(lambda m: m.header("call-id") == "rate-9", timeout=0.5) \
            .addErrback(lambda _: None)  # dropped, as expected
        statuses = [m.status for m in peer.received]
        self.assertEqual(statuses[:3], [200, 200, 200])
        refused = [m for m in peer.received if m.status == 503]
        self.assertTrue(1 <= len(refused) <= 4, statuses)
        self.assertTrue(all(int(m.header("retry-after")) >= 1 for m in refused))
        self.assertLess(len(peer.received), 10)
        await sleep(1.0)  # two tokens back
        since = len(peer.received)
        peer.send(request("OPTIONS", self.uri, peer.port, call_id="rate-later"))
        reply = await peer.wait(lambda m: m.header("call-id") == "rate-later", since=since)
        self.assertEqual(reply.status, 200)
