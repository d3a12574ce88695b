"""
A raw RFC 7395 client for tests: autobahn's Twisted WebSocket client on a
real loopback socket, every wait bounded.
"""

from __future__ import annotations

import base64
from typing import Any

from autobahn.twisted.websocket import (
    WebSocketClientFactory,
    WebSocketClientProtocol,
    connectWS,
)
from lxml import etree
from twisted.internet import defer, reactor

from convergence.xmpp.websocket import PlainTimers, forget_timers

FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
OPEN = (f"<open xmlns='{FRAMING}' to='localhost' version='1.0'/>").encode()
CLOSE = f"<close xmlns='{FRAMING}'/>".encode()
WAIT = 10.0


class RawWs(WebSocketClientProtocol):
    """Collects text messages; L{next} waits (bounded) for the next one."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[bytes] = []
        self.waiting: list[defer.Deferred] = []
        self.opened: defer.Deferred = defer.Deferred()
        self.closed: defer.Deferred = defer.Deferred()
        self.close_code: int | None = None
        self.handshake_failure: str | None = None

    def onOpen(self) -> None:
        self.opened.callback(self)
        self.factory.opened.callback(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.messages.append(payload)
        waiting, self.waiting = self.waiting, []
        for d in waiting:
            d.callback(None)

    def connectionLost(self, reason=None) -> None:
        super().connectionLost(reason)
        forget_timers(self)

    def onClose(self, wasClean: bool, code: Any, reason: Any) -> None:
        self.close_code = code
        if not self.opened.called:
            self.handshake_failure = str(reason)
            self.opened.callback(None)
            if not self.factory.opened.called:
                self.factory.opened.errback(ConnectionError(f"handshake failed: {reason}"))
        if not self.closed.called:
            self.closed.callback(code)
        waiting, self.waiting = self.waiting, []
        for d in waiting:
            d.callback(None)

    def send(self, data: bytes | str) -> None:
        self.sendMessage(data.encode() if isinstance(data, str) else data, False)

    async def next(self, limit: float = WAIT) -> bytes:
        """The next unread message (bounded wait); raise if none comes."""
        if not self.messages:
            if self.closed.called:
                raise AssertionError("connection closed")
            d: defer.Deferred = defer.Deferred()
            self.waiting.append(d)
            d.addTimeout(limit, reactor)
            await d
            if not self.messages:
                raise AssertionError("connection closed")
        return self.messages.pop(0)

    async def element(self, limit: float = WAIT) -> etree._Element:
        return etree.fromstring(await self.next(limit))

    async def wait_closed(self, limit: float = WAIT) -> int | None:
        if not self.closed.called:
            d = defer.Deferred()
            self.closed.addBoth(lambda r: (d.called or d.callback(r), r)[1])
            d.addTimeout(limit, reactor)
            await d
        return self.close_code


async def connect(port: int, protocols: list[str] | None = ("xmpp",),
                  path: str = "/xmpp-websocket",
                  headers: dict[str, str] | None = None, tls: bool = False) -> RawWs:
    """A connected client (raises if the handshake fails); C{tls}: wss://
    without certificate checks (the test certificate is self-signed)."""
    scheme = "wss" if tls else "ws"
    factory = WebSocketClientFactory(f"{scheme}://127.0.0.1:{port}{path}",
                                     protocols=list(protocols or []), headers=headers)
    factory.protocol = RawWs
    factory._batched_timer = PlainTimers(reactor)
    factory.opened = defer.Deferred()
    if tls:
        from twisted.internet.ssl import CertificateOptions

        connectWS(factory, CertificateOptions(verify=False))
    else:
        connectWS(factory)
    factory.opened.addTimeout(WAIT, reactor)
    return await factory.opened


async def login(port: int, user: str, password: str, resource: str = "ws",
                bind: bool = True) -> tuple[RawWs, list[etree._Element]]:
    """Open, SASL PLAIN, reopen, bind: the client and what it saw."""
    ws = await connect(port)
    seen = []
    ws.send(OPEN)
    seen.append(await ws.element())          # <open/>
    seen.append(await ws.element())          # features
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    ws.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>")
    seen.append(await ws.element())          # success
    ws.send(OPEN)
    seen.append(await ws.element())          # <open/>
    seen.append(await ws.element())          # features
    if bind:
        ws.send("<iq xmlns='jabber:client' type='set' id='b1'>"
                "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                f"<resource>{resource}</resource></bind></iq>")
        seen.append(await ws.element())
    return ws, seen
