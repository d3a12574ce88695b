# -*- test-case-name: tests.test_c2s -*-
"""
The receiving side of an XML stream (RFC 6120 section 4): parser, stream
header, sending, stream errors and the closing handshake.

Role-specific negotiation (client-to-server, server-to-server in both
directions: L{convergence.xmpp.s2s}) lives in subclasses, which implement L{stream_opened} and L{element_received}.
"""

from __future__ import annotations

import secrets
from typing import Any

from lxml import etree
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from convergence.xmpp import ns
from convergence.xmpp.errors import StreamError
from convergence.xmpp.limits import ReadRate, address_host
from convergence.xmpp.parser import StreamParseError, StreamParser

#: How long to wait for the peer's closing tag after sending ours.
CLOSE_TIMEOUT = 5.0

_CLOSE = b"</stream:stream>"


class XmlStreamServer(Protocol):
    """An XML stream received from a peer that initiated it."""

    log = Logger()
    #: The default namespace of the stream's content (C{jabber:client} …).
    content_namespace = ns.CLIENT
    #: more namespace declarations on our stream header (prefix -> name),
    #: such as dialback's C{db} on server-to-server streams
    header_namespaces: dict[str, str] = {}

    def __init__(self, clock: IReactorTime, max_stanza_size: int,
                 read_rate: ReadRate | None = None) -> None:
        self.clock = clock
        self.max_stanza_size = max_stanza_size
        #: bytes/s this peer may send; over it, reading pauses
        self.read_rate = read_rate
        self.stream_id: str | None = None
        self.header_sent = False
        self.closing = False
        self.closed = False
        self._close_timer: IDelayedCall | None = None
        #: when the peer last sent anything, and how many reads so far
        #: (idleness and liveness: XEP-0199 pings)
        self.last_received = clock.seconds()
        self.reads = 0
        self.parser = StreamParser(
            self._on_stream_start, self._on_element, self._on_stream_end,
            max_stanza_size=max_stanza_size,
        )

    # Twisted Protocol
    def dataReceived(self, data: bytes) -> None:
        if self.closed:
            return
        self.last_received = self.clock.seconds()
        self.reads += 1
        if self.read_rate is not None:
            self.read_rate.received(len(data), self.transport)
        try:
            self.parser.feed(data)
        except StreamParseError as e:
            self.stream_error(e.condition, e.text)
        except StreamError as e:
            self.stream_error(e.condition, e.text)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.closed = True
        self.parser.close()
        if self.read_rate is not None:
            self.read_rate.stop()
        if self._close_timer is not None and self._close_timer.active():
            self._close_timer.cancel()
        self.stream_closed(reason)

    # Parser callbacks
    def _on_stream_start(self, root: etree._Element) -> None:
        try:
            self.stream_opened(root)
        except StreamError as e:
            self.stream_error(e.condition, e.text)

    def _on_element(self, element: etree._Element) -> None:
        if self.closed or self.closing:
            return
        try:
            self.element_received(element)
        except StreamError as e:
            self.stream_error(e.condition, e.text)
        except Exception:
            self.log.failure("unhandled error processing an element")
            self.stream_error("internal-server-error")

    def _on_stream_end(self) -> None:
        if not self.closing:
            self._write(_CLOSE)
        self._disconnect()

    # To override
    def stream_opened(self, root: etree._Element) -> None:
        """The peer opened (or restarted) the stream."""
        raise NotImplementedError

    def element_received(self, element: etree._Element) -> None:
        """A complete first-level element arrived."""
        raise NotImplementedError

    def stream_closed(self, reason: Failure | None) -> None:
        """The connection is gone."""

    # Output
    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def send(self, element: etree._Element) -> None:
        """Serialise and send one element."""
        self._write(etree.tostring(element))

    def send_header(self, from_: str, to: str | None = None,
                    version: str | None = "1.0", lang: str = "en") -> None:
        """Send our stream header with a fresh stream id."""
        self.stream_id = secrets.token_hex(8)
        attrs = [
            f"xmlns='{self.content_namespace}'",
            f"xmlns:stream='{ns.STREAMS}'",
            *(f"xmlns:{p}='{u}'" for p, u in self.header_namespaces.items()),
            f"id='{self.stream_id}'",
            f"from='{_attr(from_)}'",
        ]
        if to:
            attrs.append(f"to='{_attr(to)}'")
        if version:
            attrs.append(f"version='{version}'")
        attrs.append(f"xml:lang='{_attr(lang)}'")
        self._write(b"<?xml version='1.0'?><stream:stream "
                    + " ".join(attrs).encode() + b">")
        self.header_sent = True

    def stream_error(self, condition: str, text: str | None = None,
                     wait: bool = True, app: etree._Element | None = None) -> None:
        """Send a stream error and close the stream (RFC 6120 4.9.1);
        C{app} is an application-specific condition element."""
        if self.closed or self.closing:
            return
        self.log.info("stream error {condition}: {text} (peer {peer})",
                      condition=condition, text=text or "", peer=self.peer_name())
        if not self.header_sent:
            self.send_header(self.default_from())
        self.send(StreamError(condition, text, app).to_element())
        self.close(wait)

    def close(self, wait: bool = True) -> None:
        """
        Send our closing tag and wait briefly for the peer's (or, with
        C{wait=False}, as when the server stops, disconnect at once).
        """
        if self.closed or self.closing:
            return
        self.closing = True
        self._write(_CLOSE)
        if wait:
            self._close_timer = self.clock.callLater(CLOSE_TIMEOUT, self._disconnect)
        else:
            self._disconnect()

    def _disconnect(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()

    def default_from(self) -> str:
        """The C{from} of a header sent only to carry a stream error."""
        raise NotImplementedError

    def peer_ip(self) -> str:
        """The peer's IP address, the key of per-address limits."""
        peer: Any = self.transport.getPeer() if self.transport else None
        return address_host(peer)

    def peer_name(self) -> str:
        """The peer's address, for logs."""
        peer: Any = self.transport.getPeer() if self.transport else None
        host = getattr(peer, "host", None)
        return f"{host}:{peer.port}" if host else str(peer)


def _attr(value: str) -> str:
    return (value.replace("&", "&amp;").replace("'", "&apos;")
            .replace("<", "&lt;"))
