# -*- test-case-name: tests.test_wsframing -*-
"""
RFC 7395 framing: XMPP over WebSocket as the same XML stream as over TCP.

Over WebSocket a stream has no C{<stream:stream>} root: each text message
holds one complete element, the stream is opened by
C{<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>} and closed by
C{<close/>} in that namespace.  This module translates in both directions
so that L{convergence.xmpp.c2s.C2SStream} runs unchanged:

 - L{FramedStreamParser} replaces a stream's parser: it is fed one message
   at a time, turns C{<open/>} into the stream header and C{<close/>} into
   the closing tag of an ordinary XML stream for the incremental parser
   (so restricted XML, the stanza size limit and the namespace checks are
   the ones of TCP), and ends the stream when a message is not exactly one
   complete element;
 - L{frame} turns what the stream writes (its header, one element, the
   closing tag) into the payload of one text message.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lxml import etree

from convergence.xmpp import ns
from convergence.xmpp.parser import StanzaCallback, StreamParseError, StreamParser

#: Our stream header as L{convergence.xmpp.stream.XmlStreamServer} writes it.
_HEADER = b"<?xml version='1.0'?><stream:stream "
_CLOSE = b"</stream:stream>"
_STREAM_XMLNS = re.compile(rb"xmlns(?::stream)?='[^']*' ?")

OPEN = f"{{{ns.FRAMING}}}open"
CLOSE = f"{{{ns.FRAMING}}}close"
#: The C{<close/>} the server sends.
CLOSE_FRAME = f"<close xmlns='{ns.FRAMING}'/>".encode()

_XML_LANG = f"{{{ns.XML}}}lang"
_WHITESPACE = b" \t\r\n"


def frame(data: bytes) -> list[bytes]:
    """
    The text messages that carry C{data}, one write of a stream: its header
    becomes C{<open/>}, its closing tag C{<close/>}; anything else is one
    element and goes as it is.
    """
    if data.startswith(_HEADER):
        attrs = _STREAM_XMLNS.sub(b"", data[len(_HEADER):-1]).strip()
        return [b"<open xmlns='" + ns.FRAMING.encode() + b"' " + attrs + b"/>"]
    if data.endswith(_CLOSE):
        head = data[:-len(_CLOSE)]
        return [head, CLOSE_FRAME] if head else [CLOSE_FRAME]
    return [data]


class FramedStreamParser(StreamParser):
    """
    A L{StreamParser} fed one WebSocket text message per L{feed}.

    Its callbacks are the stream's, as for TCP: C{on_stream_start} for each
    C{<open/>} (the stream header it stands for), C{on_stanza} for the
    element of each message, C{on_stream_end} for C{<close/>}.
    """

    def __init__(self, on_stream_start: StanzaCallback, on_stanza: StanzaCallback,
                 on_stream_end: Callable[[], None], max_stanza_size: int) -> None:
        self._deliver = on_stanza
        self._in_message = 0
        super().__init__(on_stream_start, self._one, on_stream_end,
                         max_stanza_size=max_stanza_size)

    def reset(self) -> None:
        """Wait for a new C{<open/>} (after SASL, RFC 7395 3.5)."""
        super().reset()
        self.generation = getattr(self, "generation", 0) + 1

    @property
    def awaiting_open(self) -> bool:
        """Whether the next message must be C{<open/>}."""
        return self._parser is not None and self._root is None

    def feed(self, data: bytes) -> None:
        """Take one text message."""
        if self._parser is None:
            return
        start = data.lstrip(_WHITESPACE)
        if not start:
            return  # RFC 7395 3.8: no whitespace keepalives; ignored
        if self._root is None:
            self._opening(data)
            return
        if start.startswith((b"<open", b"<close")):
            top = self._framing_element(data)
            if top is not None:
                if top.tag == CLOSE:
                    super().feed(_CLOSE)
                    return
                self._fail("bad-format", "the stream is already open")
        generation = self.generation
        self._in_message = 0
        super().feed(data)
        if self._parser is not None and self.generation == generation and (
                self._depth != 1 or self._in_message == 0):
            self._fail("not-well-formed",
                       "a WebSocket message must hold one complete element"
                       " (RFC 7395 3.3.3)")

    def _one(self, element: etree._Element) -> None:
        self._in_message += 1
        if self._in_message > 1:
            self._fail("bad-format", "one element per WebSocket message"
                                     " (RFC 7395 3.3.3)")
        self._deliver(element)

    def _opening(self, data: bytes) -> None:
        """The first message of a stream (or after a restart)."""
        top = self._framing_element(data)
        if top is None or top.tag not in (OPEN, CLOSE):
            self._fail("invalid-namespace", "expected <open xmlns='"
                       f"{ns.FRAMING}'/> (RFC 7395 3.4)")
        if top.tag == CLOSE:
            self._on_stream_end()
            return
        attrs = [f"xmlns='{ns.CLIENT}'", f"xmlns:stream='{ns.STREAMS}'"]
        for name, value in (("to", top.get("to")), ("version", top.get("version")),
                            ("xml:lang", top.get(_XML_LANG))):
            if value is not None:
                attrs.append(f"{name}='{_attr(value)}'")
        super().feed(("<stream:stream " + " ".join(attrs) + ">").encode())

    def _framing_element(self, data: bytes) -> etree._Element | None:
        """
        Parse a message that should be C{<open/>} or C{<close/>} on its
        own (the same restricted XML as a stream); None if it is some
        other element.
        """
        found: list[etree._Element] = []
        children: list[etree._Element] = []
        ended: list[bool] = []
        alone = StreamParser(found.append, children.append, lambda: ended.append(True),
                             max_stanza_size=self.max_stanza_size)
        try:
            alone.feed(data)
        except StreamParseError as e:
            self._fail(e.condition, e.text)
        if not ended:
            self._fail("not-well-formed",
                       "a WebSocket message must hold one complete element"
                       " (RFC 7395 3.3.3)")
        top = found[0]
        if top.tag not in (OPEN, CLOSE):
            return None
        if children:
            self._fail("bad-format", "<open/> and <close/> are empty elements")
        return top


def _attr(value: str) -> str:
    return (value.replace("&", "&amp;").replace("'", "&apos;")
            .replace("<", "&lt;"))
