"""
XMPP over WebSocket (RFC 7395) for the load generators: autobahn's asyncio
client behind the asyncio stream interface bench/xmppload.py's clients use,
so the same client code drives TCP and WebSocket.

``open_websocket(url, ...)`` returns a ``(reader, writer)`` pair:

 - the writer takes what a TCP client writes: the stream header becomes
   ``<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>``, the closing
   tag ``<close/>``, each other write is one text message (``write_parts``
   sends one message per element), a stanza with its ``jabber:client``
   namespace declared;
 - the reader gives back an ordinary XML stream: the server's ``<open/>``
   as a stream header, each message as it is, ``<close/>`` as the closing
   tag, so the generators' stream framer parses it unchanged.

The client masks its frames (RFC 6455 5.3) with autobahn's native masker.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol

FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
NS_STREAM = "http://etherx.jabber.org/streams"
_HEADER = b"<?xml version='1.0'?><stream:stream "
_CLOSE = b"</stream:stream>"
CLOSE_MESSAGE = f"<close xmlns='{FRAMING}'/>".encode()
#: the writer's drain() waits while more than this is buffered
HIGH_WATER = 1 << 16

_factories: dict[str, WebSocketClientFactory] = {}


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace("'", "&apos;").replace("<", "&lt;")


def open_message(header: bytes) -> bytes:
    """Our stream header as RFC 7395's ``<open/>``."""
    root = ET.fromstring(header[len(b"<?xml version='1.0'?>"):] + _CLOSE)
    attrs = "".join(f" {'xml:lang' if k.endswith('}lang') else k}='{_attr(v)}'"
                    for k, v in root.attrib.items())
    return f"<open xmlns='{FRAMING}'{attrs}/>".encode()


def stream_header(message: bytes) -> bytes:
    """The server's ``<open/>`` as a stream header for a stream parser."""
    root = ET.fromstring(message)
    attrs = "".join(f" {'xml:lang' if k.endswith('}lang') else k}='{_attr(v)}'"
                    for k, v in root.attrib.items())
    return (f"<stream:stream xmlns='jabber:client' xmlns:stream='{NS_STREAM}'"
            f"{attrs}>").encode()


_STANZAS = (b"<message", b"<presence", b"<iq")
_CLIENT_NS = b" xmlns='jabber:client'"


def with_namespace(element: bytes) -> bytes:
    """
    RFC 7395 3.3.3: each message declares its namespaces; the TCP clients
    leave a stanza's jabber:client to the stream header, so it is added.
    """
    for name in _STANZAS:
        if element.startswith(name):
            end = element.find(b">")
            if element.find(b"xmlns=", 0, end) < 0:
                return name + _CLIENT_NS + element[len(name):]
            break
    return element


class _Protocol(WebSocketClientProtocol):
    connection: WsConnection

    def onOpen(self) -> None:
        if not self.connection.opened.done():
            self.connection.opened.set_result(None)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.connection.received(payload)

    def onClose(self, wasClean: bool, code: Any, reason: Any) -> None:
        self.connection.lost(reason)


class WsConnection:
    """One WebSocket: the reader and the writer side."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.protocol: _Protocol | None = None
        self.incoming: deque[bytes] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.at_eof = False

    # -- reader --

    def received(self, payload: bytes) -> None:
        start = payload[:8].lstrip()
        if start.startswith(b"<open"):
            payload = stream_header(payload)
        elif start.startswith(b"<close"):
            payload = _CLOSE
        self.incoming.append(payload)
        self._wake()

    def lost(self, reason: Any) -> None:
        self.at_eof = True
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"handshake failed: {reason}"))
        if not self.closed.done():
            self.closed.set_result(None)
        self._wake()

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self, size: int = -1) -> bytes:
        """What arrived since the last read (b"" at the end)."""
        while not self.incoming:
            if self.at_eof:
                return b""
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        data = b"".join(self.incoming)
        self.incoming.clear()
        return data

    # -- writer --

    def write(self, data: bytes) -> None:
        proto = self.protocol
        if proto is None or self.at_eof:
            return
        if data.startswith(_HEADER):
            data = open_message(data)
        elif data == _CLOSE:
            data = CLOSE_MESSAGE
        else:
            data = with_namespace(data)
        proto.sendMessage(data, False)

    def write_parts(self, parts: list[bytes]) -> None:
        """One message per element."""
        proto = self.protocol
        if proto is None or self.at_eof:
            return
        for part in parts:
            if part:
                proto.sendMessage(with_namespace(part), False)

    async def drain(self) -> None:
        transport = self.protocol.transport if self.protocol else None
        while (transport is not None and not self.at_eof
               and transport.get_write_buffer_size() > HIGH_WATER):
            await asyncio.sleep(0.001)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        transport = self.protocol.transport if self.protocol else None
        return transport.get_extra_info(name, default) if transport else default

    @property
    def transport(self) -> Any:
        return self.protocol.transport if self.protocol else _NoTransport()

    def close(self) -> None:
        """The WebSocket closing handshake (after our ``<close/>``)."""
        proto = self.protocol
        if proto is not None and not self.at_eof:
            proto.sendClose(1000)

    async def wait_closed(self) -> None:
        await self.closed


class _NoTransport:
    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


async def open_websocket(url: str, local_addr: tuple[str, int] | None = None
                         ) -> tuple[WsConnection, WsConnection]:
    """Connect and complete the handshake (subprotocol ``xmpp``)."""
    factory = _factories.get(url)
    if factory is None:
        factory = _factories[url] = WebSocketClientFactory(url, protocols=["xmpp"])
        factory.protocol = _Protocol
        factory.setProtocolOptions(openHandshakeTimeout=0, closeHandshakeTimeout=1.0)
    parts = urlsplit(url)
    connection = WsConnection()

    def build() -> _Protocol:
        proto = factory()
        proto.connection = connection
        connection.protocol = proto
        return proto

    loop = asyncio.get_running_loop()
    await loop.create_connection(build, parts.hostname, parts.port or 80,
                                 local_addr=local_addr)
    await connection.opened
    return connection, connection
