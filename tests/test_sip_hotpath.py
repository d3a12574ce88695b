"""The call path's shortcuts: pooled random bytes, shared UDP peers."""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from convergence import entropy


class EntropyTests(SynchronousTestCase):
    def test_lengths_and_hex(self) -> None:
        self.assertEqual(len(entropy.random_bytes(12)), 12)
        tag = entropy.random_hex(6)
        self.assertEqual(len(tag), 12)
        int(tag, 16)

    def test_token(self) -> None:
        """Session ids: URL-safe, 16 bytes (22 characters), never repeated."""
        import base64

        tokens = {entropy.random_token(16) for _ in range(1000)}
        self.assertEqual(len(tokens), 1000)
        for token in list(tokens)[:50]:
            self.assertEqual(len(token), 22)
            self.assertEqual(len(base64.urlsafe_b64decode(token + "==")), 16)
            self.assertTrue(set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                              "0123456789-_"))

    def test_no_repeats(self) -> None:
        """Across several refills of the pool no value comes twice."""
        seen = {entropy.random_hex(8) for _ in range(3 * entropy.POOL_SIZE // 8)}
        self.assertEqual(len(seen), 3 * entropy.POOL_SIZE // 8)

    def test_below(self) -> None:
        values = [entropy.random_below(7) for _ in range(2000)]
        self.assertEqual(set(values), set(range(7)))
        self.assertTrue(all(0 <= entropy.random_below(2 ** 31 - 1) < 2 ** 31 - 1
                            for _ in range(100)))

    def test_fork_gets_its_own_bytes(self) -> None:
        """A forked child never hands out the bytes its parent will."""
        entropy.random_bytes(1)  # the pool is full
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            try:
                os.write(write, entropy.random_bytes(16))
            finally:
                os._exit(0)
        os.close(write)
        child = os.read(read, 16)
        os.close(read)
        os.waitpid(pid, 0)
        self.assertNotEqual(child, entropy.random_bytes(16))


class SharedUdpPeerTests(SynchronousTestCase):
    """Datagrams from one UDP source share a Peer and a response channel."""

    def test_shared(self) -> None:
        from convergence.sip.transport import (
            Peer,
            SipDatagramProtocol,
            SipTransportLayer,
        )

        seen: list[Peer] = []

        class Receiver:
            def request_received(self, request: object, peer: Peer) -> None:
                seen.append(peer)

            def response_received(self, response: object, peer: Peer) -> None:
                seen.append(peer)

        layer = SipTransportLayer(None, Receiver(), "127.0.0.1", 65535, 0)
        udp = SipDatagramProtocol(layer)
        options = (b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n"
                   b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-%d\r\n"
                   b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\n"
                   b"Call-ID: %d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
        udp.datagramReceived(options % (1, 1), ("127.0.0.1", 5070))
        udp.datagramReceived(options % (2, 2), ("127.0.0.1", 5070))
        udp.datagramReceived(options % (3, 3), ("127.0.0.1", 5071))
        self.assertIs(seen[0], seen[1])
        self.assertIsNot(seen[0], seen[2])
        self.assertEqual((seen[2].host, seen[2].port), ("127.0.0.1", 5071))
        self.assertIs(layer.channel(seen[0]), layer.channel(seen[1]))
        tcp = Peer("TCP", "127.0.0.1", 5070)
        self.assertIsNot(layer.channel(tcp), layer.channel(tcp))


class Retransmit2xxTests(SynchronousTestCase):
    """The UAS core's 2xx retransmissions over UDP (RFC 3261 13.3.1.4) on a
    Clock: the first waits share one queue, the later ones double to T2,
    and an ACK stops them."""

    def setUp(self) -> None:
        from twisted.internet.task import Clock

        from convergence.container.application import load_application
        from convergence.container.container import Container
        from convergence.sip.core import UserAgentCore
        from convergence.sip.timers import Timers
        from convergence.sip.transport import SipDatagramProtocol, SipTransportLayer

        self.clock = Clock()
        container = Container(self.clock, domains=["localhost"])
        container.deploy(load_application("chatline", "apps.chatline", ["localhost"]))
        layer = SipTransportLayer(self.clock, None, "127.0.0.1")  # type: ignore[arg-type]
        self.core = UserAgentCore(self.clock, container, ["localhost"], layer, None,
                                  Timers(0.5, 4.0, 5.0))
        self.addCleanup(self.core.shutdown)
        self.addCleanup(container.undeploy_all)
        self.sent: list[tuple[float, bytes]] = []
        test = self

        class Wire:
            def write(self, data: bytes, addr: object = None) -> None:
                test.sent.append((test.clock.seconds(), data))

        layer.udp = SipDatagramProtocol(layer)
        layer.udp.transport = Wire()  # type: ignore[assignment]
        self.udp = layer.udp

    def invite(self, call_id: str) -> str:
        from tests.siphelpers import SEED_SDP, request

        self.udp.datagramReceived(request(
            "INVITE", "sip:chatline@localhost", 5070, call_id=call_id, body=SEED_SDP,
            content_type="application/sdp").encode(), ("127.0.0.1", 5070))
        ok = self.sent[-1][1].decode()
        self.assertTrue(ok.startswith("SIP/2.0 200"))
        return ok.split("tag=")[-1].split("\r\n")[0].split(";")[0]

    def oks(self, call_id: str) -> list[float]:
        return [round(at, 3) for at, data in self.sent
                if data.startswith(b"SIP/2.0 200") and f"Call-ID: {call_id}".encode() in data]

    def test_doubling_to_t2_and_ack(self) -> None:
        from tests.siphelpers import request

        self.invite("a")
        self.clock.advance(0.25)
        to_tag = self.invite("b")
        self.clock.pump([0.125] * 58)  # to 7.5 s
        self.assertEqual(self.oks("a"), [0.0, 0.5, 1.5, 3.5, 7.5])
        self.assertEqual(self.oks("b"), [0.25, 0.75, 1.75, 3.75])
        before = len(self.oks("b"))
        self.udp.datagramReceived(request(
            "ACK", "sip:chatline@localhost", 5070, call_id="b", to_tag=to_tag).encode(),
            ("127.0.0.1", 5070))
        self.clock.pump([0.5] * 20)
        self.assertEqual(len(self.oks("b")), before)
        self.assertEqual(self.oks("a")[5:7], [11.5, 15.5])  # capped at T2

    def test_ack_before_the_first_retransmission(self) -> None:
        from tests.siphelpers import request

        to_tag = self.invite("c")
        self.clock.advance(0.2)
        self.udp.datagramReceived(request(
            "ACK", "sip:chatline@localhost", 5070, call_id="c", to_tag=to_tag).encode(),
            ("127.0.0.1", 5070))
        self.clock.pump([0.25] * 10)
        self.assertEqual(self.oks("c"), [0.0])
        self.assertEqual(self.core._unacked, {})
