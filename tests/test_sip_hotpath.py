"""The call path's shortcuts: pooled random bytes, shared UDP peers."""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from convergence.sip import entropy


class EntropyTests(SynchronousTestCase):
    def test_lengths_and_hex(self) -> None:
        self.assertEqual(len(entropy.random_bytes(12)), 12)
        tag = entropy.random_hex(6)
        self.assertEqual(len(tag), 12)
        int(tag, 16)

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
