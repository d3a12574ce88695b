#!/usr/bin/env python3
"""
The floor of a SIP UAS in Python on Twisted: ``python bench/sip_floor.py``.

Answers ``tests/sipp/uac_jabber.xml`` (INVITE with the jabber-chat SDP → 200
with the chatline answer, ACK, BYE → 200) over UDP and TCP with the least
Python work that still passes the scenario's checks: one search for the end
of the headers, one split of the header lines, the five headers a response
copies echoed as bytes, the offered thread copied into a fixed answer, and
one dict entry a call.  It keeps no transactions, no timers and no
retransmissions, checks nothing RFC 3261 asks a server to check, and
answers any request that is not an INVITE or a BYE with nothing.

It is not a server: it measures what one call costs a Python process on
Twisted's reactor before any SIP stack runs, so that ``sipbench.py
--target python-floor`` shows how close a rate can get to a C UAS at all
on this machine (docs/performance.md, "The floor").

    python bench/sip_floor.py --port 5090
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from twisted.internet import protocol, reactor
from twisted.internet.interfaces import IAddress

#: the headers a response copies from its request (RFC 3261 8.2.6.2)
COPIED = (b"via", b"from", b"to", b"call-id", b"cseq")
HEADER_END = re.compile(rb"\r\n\r\n")
CONTENT_LENGTH = re.compile(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*(\d+)", re.IGNORECASE)
THREAD = re.compile(rb"a=thread:(\S+)")


class Floor:
    """The per-process state: live calls by Call-ID, and the answer's parts."""

    def __init__(self, host: bytes, port: int) -> None:
        self.calls: dict[bytes, bytes] = {}
        self.count = 0
        self.contact = b"Contact: <sip:chatline@%s:%d;transport=%%s>\r\n" % (host, port)
        self.sdp_head = (b"v=0\r\no=chatline 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\n"
                         b"t=0 0\r\nm=audio 0 RTP/AVP 0\r\nm=message 5222 xmpp/tcp chat\r\n"
                         b"c=IN IP4 %s\r\na=jid:chatline@localhost\r\na=thread:"
                         % (host, host, host))

    def answer(self, message: bytes, transport: bytes) -> bytes | None:
        """The response to one complete message, or None."""
        end = message.find(b"\r\n\r\n")
        lines = message[:end].split(b"\r\n")
        method = lines[0].partition(b" ")[0]
        if method != b"INVITE" and method != b"BYE":
            return None
        copied = []
        call_id = b""
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name in COPIED:
                copied.append(line)
                if name == b"call-id":
                    call_id = value.strip()
        if method == b"BYE":
            self.calls.pop(call_id, None)
            return b"SIP/2.0 200 OK\r\n%s\r\nContent-Length: 0\r\n\r\n" % b"\r\n".join(copied)
        self.count += 1
        tag = b"%x" % self.count
        self.calls[call_id] = tag
        found = THREAD.search(message, end)
        body = self.sdp_head + (found.group(1) if found else b"-") + b"\r\n"
        head = b"\r\n".join(line + b";tag=" + tag if line[:3].lower() == b"to:" else line
                            for line in copied)
        return (b"SIP/2.0 200 OK\r\n%s\r\n%sContent-Type: application/sdp\r\n"
                b"Content-Length: %d\r\n\r\n%s"
                % (head, self.contact % transport, len(body), body))


class FloorDatagram(protocol.DatagramProtocol):
    def __init__(self, floor: Floor) -> None:
        self.floor = floor

    def datagramReceived(self, datagram: bytes, addr: IAddress) -> None:
        reply = self.floor.answer(datagram, b"UDP")
        if reply is not None:
            self.transport.write(reply, addr)


class FloorFactory(protocol.Factory):
    def __init__(self, floor: Floor) -> None:
        self.floor = floor

    def buildProtocol(self, addr: IAddress) -> FloorStream:
        return FloorStream(self.floor)


class FloorStream(protocol.Protocol):
    def __init__(self, floor: Floor) -> None:
        self.floor = floor
        self.buffer = b""

    def dataReceived(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        out = []
        start = 0
        while True:
            blank = HEADER_END.search(buffer, start)
            if blank is None:
                break
            length = CONTENT_LENGTH.search(buffer, start, blank.start() + 2)
            end = blank.end() + (int(length.group(1)) if length else 0)
            if end > len(buffer):
                break
            reply = self.floor.answer(buffer[start:end], b"TCP")
            if reply is not None:
                out.append(reply)
            start = end
        self.buffer = buffer[start:]
        if out:
            self.transport.write(b"".join(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--port", type=int, default=5090)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    floor = Floor(args.host.encode(), args.port)
    reactor.listenUDP(args.port, FloorDatagram(floor), interface=args.host)
    reactor.listenTCP(args.port, FloorFactory(floor), interface=args.host)
    os.write(1, b"listening on %d\n" % args.port)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
