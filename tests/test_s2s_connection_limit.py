"""
s2s.max_connections_per_ip on real sockets: the streams over the limit
from one address are refused at accept, the others are served, and a
closed stream frees its place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from convergence.config import _from_mapping
from convergence.service import build
from tests.s2shelpers import S2S_HEADER
from tests.test_s2s_twistd import free_port

#: seconds a test waits for the network
LIMIT = 15.0


class _Peer(Protocol):
    """A remote server's connection: what it received, whether it ended."""

    def __init__(self) -> None:
        self.data = b""
        self.lost = False

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.lost = True


class ConnectionLimitTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        work = Path(self.mktemp()).resolve()
        raw: dict[str, Any] = {"domains": ["a.test"], "interface": "127.0.0.1",
                               "data_dir": str(work), "s2s": {"max_connections_per_ip": 2}}
        self.server = build(_from_mapping(raw), reactor)
        self.addCleanup(self.server.close)
        self.port = free_port("127.0.0.1")
        listening = reactor.listenTCP(self.port, self.server.s2s.factory(),
                                      interface="127.0.0.1")
        self.addCleanup(listening.stopListening)

    async def connect(self) -> _Peer:
        peer = _Peer()
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port, timeout=LIMIT)
        await connectProtocol(endpoint, peer)
        self.addCleanup(lambda: peer.transport.abortConnection() if not peer.lost else None)
        return peer

    async def until(self, done: Any, what: str) -> None:
        for _ in range(int(LIMIT / 0.02)):
            if done():
                return
            d: Deferred = Deferred()
            reactor.callLater(0.02, d.callback, None)
            await d
        self.fail(f"not {what} within {LIMIT} s")

    def greet(self, peer: _Peer) -> None:
        peer.transport.write(S2S_HEADER.format(from_="b.test", to="a.test").encode())

    async def test_over_the_limit_refused(self) -> None:
        first, second = await self.connect(), await self.connect()
        await self.until(lambda: len(self.server.s2s.inbound) == 2, "two streams open")
        third = await self.connect()
        await self.until(lambda: third.lost, "the third connection closed")
        self.assertEqual(third.data, b"")
        for peer in (first, second):
            self.greet(peer)
        await self.until(lambda: all(b"<stream:stream" in p.data for p in (first, second)),
                         "both admitted streams answered")
        self.assertFalse(first.lost or second.lost)

        first.transport.loseConnection()
        await self.until(lambda: len(self.server.s2s.inbound) == 1, "the first stream gone")
        fourth = await self.connect()
        self.greet(fourth)
        await self.until(lambda: b"<stream:stream" in fourth.data, "a freed place served")
        self.assertFalse(fourth.lost)
