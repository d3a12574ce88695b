#!/usr/bin/env python3
"""
XMPP load generator: logins/s, routed messages/s, server memory per connection.

Pure asyncio and the standard library, talking plain RFC 6120 XMPP over
sockets (STARTTLS, SASL SCRAM-SHA-1/SCRAM-SHA-256/PLAIN, resource binding),
so the same run measures convergence and any other server (Prosody) alike.
It shares no code with the server it measures.

    python bench/xmppload.py login      --port 5222 --concurrency 10 --duration 10
    python bench/xmppload.py throughput --port 5222 --pairs 10 --window 20 --json
    python bench/xmppload.py throughput --port 5222 --pairs 10 --rate 10000 --window 1000
    python bench/xmppload.py idle       --port 5222 --connections 2000 --server-pid 1234
    python bench/xmppload.py throughput --port 5222 --pairs 10 --window 20 --sm
    python bench/xmppload.py idle       --port 5222 --connections 1000 --sm --hibernate
    python bench/xmppload.py s2s --host 127.0.0.1 --domain a.test --peer-host 127.0.0.2 \
        --peer-port 5222 --peer-domain b.test --pairs 10 --window 20

Users are ``<prefix>1`` .. ``<prefix>K`` on ``--domain``, all with one
password; the caller creates them. Connection i logs in as user (i mod K) + 1
with a server-assigned resource; throughput pair i is user 2i-1 → user 2i;
s2s pair i is user i on ``--domain`` → user i on ``--peer-domain`` (the
receivers log in to ``--peer-host``/``--peer-port``, a server federating with
the first).

Measuring notes: the SCRAM salted password is cached per salt, as real
clients do, so the generator's CPU goes to TLS and XML, not PBKDF2. A server
that leaves Nagle on and writes a stream header and its features separately
stalls a login ~40 ms behind the client's delayed ACK; ``--quickack`` removes
that client-side (logins/s then tracks server CPU). Per-IP connection limits:
spread connections over ``--source-addresses 127.0.0.1,127.0.0.2,...``.

``--sm``: every client enables XEP-0198 stream management with resumption
after binding, counts the stanzas it handles, answers the server's ``<r/>``
and asks for an acknowledgement itself after every ``SM_REQUEST_EVERY``
stanzas it sends (as slixmpp does). ``idle --sm --hibernate`` then resets
every connection (RST) and reports the server's RSS per hibernating session.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import errno
import hashlib
import hmac
import json
import math
import os
import resource
import secrets
import signal
import socket
import ssl
import struct
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

#: seconds between a paced sender's checks of its schedule
PACE_TICK_S = 0.002

NS_STREAM = "http://etherx.jabber.org/streams"
NS_CLIENT = "jabber:client"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session"
NS_PING = "urn:xmpp:ping"
NS_ROSTER = "jabber:iq:roster"
NS_SM = "urn:xmpp:sm:3"

TAG_FEATURES = f"{{{NS_STREAM}}}features"
TAG_STREAM_ERROR = f"{{{NS_STREAM}}}error"
TAG_MESSAGE = f"{{{NS_CLIENT}}}message"
TAG_IQ = f"{{{NS_CLIENT}}}iq"
TAG_PRESENCE = f"{{{NS_CLIENT}}}presence"
TAG_BODY = f"{{{NS_CLIENT}}}body"
TAG_SM_R = f"{{{NS_SM}}}r"
TAG_SM_A = f"{{{NS_SM}}}a"
STANZA_TAGS = frozenset(f"{{{NS_CLIENT}}}{k}" for k in ("message", "presence", "iq"))
#: a client with --sm asks for an acknowledgement after this many stanzas sent
SM_REQUEST_EVERY = 5

MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN")
BODY_MARK = "xl"
READ_SIZE = 65536
QUICKACK = getattr(socket, "TCP_QUICKACK", 12)  # Linux


# ---------------------------------------------------------------------------
# Wire: framing, SASL
# ---------------------------------------------------------------------------

class XmppError(Exception):
    """A step failed: the server refused, closed the stream, or sent nonsense."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class StreamFramer:
    """
    Incremental framing of one inbound XMPP stream into top-level elements.

    The stream element is the document root: its start gives the header,
    each completed child is one top-level element (then dropped from the
    root), its end means the peer closed the stream. Use a new framer for
    each stream restart (after STARTTLS and after SASL success).
    """

    def __init__(self) -> None:
        self._parser = ET.XMLPullParser(events=("start", "end"))
        self._flush: Callable[[], None] | None = getattr(self._parser, "flush", None)
        self._root: ET.Element | None = None
        self._depth = 0
        self.header: dict[str, str] | None = None
        self.closed = False

    def feed(self, data: bytes) -> list[ET.Element]:
        """Parse more bytes; return the top-level elements they completed."""
        if self.closed:
            return []
        out: list[ET.Element] = []
        try:
            self._parser.feed(data)
            if self._flush is not None:  # expat >= 2.6 may defer tokens otherwise
                self._flush()
            events = self._parser.read_events()
            for event, elem in events:
                if event == "start":
                    self._depth += 1
                    if self._depth == 1:
                        self._root = elem
                        self.header = dict(elem.attrib)
                else:
                    self._depth -= 1
                    if self._depth == 1:
                        out.append(elem)
                        assert self._root is not None
                        self._root.remove(elem)
                    elif self._depth == 0:
                        self.closed = True
        except ET.ParseError as e:
            if self._depth == 0 and self.header is not None:
                self.closed = True  # bytes after </stream:stream>
            else:
                raise XmppError("bad-xml", str(e)) from None
        return out


_salted_cache: dict[tuple[str, bytes, bytes, int], bytes] = {}


def _salted_password(hash_name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
    """Hi() of RFC 5802, cached as real clients do (it is the client's dearest step)."""
    key = (hash_name, password, salt, iterations)
    salted = _salted_cache.get(key)
    if salted is None:
        salted = hashlib.pbkdf2_hmac(hash_name, password, salt, iterations)
        if len(_salted_cache) >= 4096:
            _salted_cache.clear()
        _salted_cache[key] = salted
    return salted


def _scram_attributes(message: bytes) -> dict[str, str]:
    """Split a SCRAM message ``a=1,b=2`` into its attributes."""
    attributes: dict[str, str] = {}
    for part in message.decode("utf-8").split(","):
        if len(part) < 2 or part[1] != "=":
            raise XmppError("scram", f"malformed attribute {part!r}")
        attributes.setdefault(part[0], part[2:])
    return attributes


class ScramClient:
    """The client side of SCRAM (RFC 5802, RFC 7677) without channel binding."""

    def __init__(self, mechanism: str, username: str, password: str,
                 nonce: str | None = None) -> None:
        if mechanism not in ("SCRAM-SHA-1", "SCRAM-SHA-256"):
            raise ValueError(f"not a SCRAM mechanism: {mechanism}")
        self.hash_name = "sha1" if mechanism == "SCRAM-SHA-1" else "sha256"
        self.password = password.encode("utf-8")
        self.nonce = nonce or secrets.token_urlsafe(18)
        name = username.replace("=", "=3D").replace(",", "=2C")
        self.client_first_bare = f"n={name},r={self.nonce}".encode()
        self._server_signature: bytes | None = None

    def first(self) -> bytes:
        """client-first-message (GS2 header ``n,,``: no channel binding)."""
        return b"n,," + self.client_first_bare

    def final(self, server_first: bytes) -> bytes:
        """client-final-message for the server-first-message."""
        attributes = _scram_attributes(server_first)
        if "m" in attributes:
            raise XmppError("scram", "mandatory extension")
        try:
            nonce, salt = attributes["r"], base64.b64decode(attributes["s"], validate=True)
            iterations = int(attributes["i"])
        except (KeyError, ValueError) as e:
            raise XmppError("scram", f"bad server-first-message: {e}") from None
        if not nonce.startswith(self.nonce) or len(nonce) == len(self.nonce):
            raise XmppError("scram", "server nonce does not extend ours")
        if not 1 <= iterations <= 10_000_000:
            raise XmppError("scram", f"iteration count {iterations}")
        salted = _salted_password(self.hash_name, self.password, salt, iterations)
        client_key = hmac.digest(salted, b"Client Key", self.hash_name)
        stored_key = hashlib.new(self.hash_name, client_key).digest()
        without_proof = b"c=biws,r=" + nonce.encode()
        auth_message = self.client_first_bare + b"," + server_first + b"," + without_proof
        signature = hmac.digest(stored_key, auth_message, self.hash_name)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.digest(salted, b"Server Key", self.hash_name)
        self._server_signature = hmac.digest(server_key, auth_message, self.hash_name)
        return without_proof + b",p=" + base64.b64encode(proof)

    def verify(self, server_final: bytes) -> None:
        """Check the server-final-message; raise L{XmppError} unless it proves the server."""
        attributes = _scram_attributes(server_final)
        if "e" in attributes:
            raise XmppError("scram", f"server error {attributes['e']}")
        try:
            signature = base64.b64decode(attributes["v"], validate=True)
        except (KeyError, ValueError):
            raise XmppError("scram", "no server signature") from None
        if self._server_signature is None or not hmac.compare_digest(
                signature, self._server_signature):
            raise XmppError("scram", "server signature mismatch")


def _xml_attr(value: str) -> str:
    """Quote a value for an XML attribute in single quotes."""
    return (value.replace("&", "&amp;").replace("<", "&lt;")
            .replace("'", "&apos;").replace('"', "&quot;"))


def _local(tag: str) -> str:
    """The local name of a Clark-notation tag."""
    return tag.rsplit("}", 1)[-1]


def _condition(element: ET.Element) -> str:
    """The first child's local name: a stream, SASL or stanza error condition."""
    for child in element.iter():
        if child is not element and _local(child.tag) not in ("text", "error"):
            return _local(child.tag)
    return "undefined-condition"


# ---------------------------------------------------------------------------
# One client connection
# ---------------------------------------------------------------------------

@dataclass
class Target:
    """Where and how to log in."""

    host: str
    port: int
    domain: str
    password: str
    tls: bool = True
    mechanism: str | None = None
    timeout: float = 10.0
    ssl_context: ssl.SSLContext | None = None
    sources: list[str] = field(default_factory=list)
    quickack: bool = False
    #: enable XEP-0198 stream management (with resumption) after binding
    sm: bool = False
    #: XMPP over WebSocket (RFC 7395) at this ws:// URL instead of TCP
    ws_url: str = ""


class XmppClient:
    """One client stream, driven step by step; every step has a timeout."""

    def __init__(self, target: Target, username: str, source: str | None = None) -> None:
        self.target = target
        self.username = username
        self.source = source
        self.jid = ""
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.framer = StreamFramer()
        self.pending: deque[ET.Element] = deque()
        self.roster: list[str] = []
        self._ids = 0
        #: XEP-0198: stanzas handled since <enabled/>, stanzas sent since the
        #: last <r/>, the resumption id
        self.sm_handled = 0
        self.sm_unrequested = 0
        self.sm_id: str | None = None
        #: the last h the server acknowledged, and how many <r/> it sent
        self.sm_acked = 0
        self.sm_requests = 0

    # -- plumbing --

    def send(self, data: bytes) -> None:
        """Queue bytes for the socket."""
        assert self.writer is not None
        self.writer.write(data)

    async def _read(self) -> None:
        """One socket read into the framer; EOF is an error."""
        assert self.reader is not None and self.writer is not None
        if self.target.quickack:
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
        data = await self.reader.read(READ_SIZE)
        if not data:
            raise XmppError("eof", "connection closed by server")
        self.pending.extend(self.framer.feed(data))

    async def recv(self) -> ET.Element:
        """The next top-level element; stream errors and closes raise."""
        while not self.pending:
            if self.framer.closed:
                raise XmppError("stream-closed", "server closed the stream")
            await self._read()
        element = self.pending.popleft()
        if element.tag == TAG_STREAM_ERROR:
            raise XmppError("stream-error", _condition(element))
        return element

    async def _open_stream(self) -> ET.Element:
        """Send a stream header; return the server's features."""
        self.framer = StreamFramer()
        self.pending.clear()
        self.send(f"<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
                  f" xmlns:stream='{NS_STREAM}' to='{_xml_attr(self.target.domain)}'"
                  f" version='1.0' xml:lang='en'>".encode())
        async with asyncio.timeout(self.target.timeout):
            features = await self.recv()
        if features.tag != TAG_FEATURES:
            raise XmppError("no-features", features.tag)
        return features

    def next_id(self) -> str:
        """A fresh stanza id."""
        self._ids += 1
        return f"x{self._ids}"

    async def iq(self, payload: str, kind: str = "set") -> ET.Element:
        """Send an iq; return its result (other stanzas meanwhile are dropped)."""
        ident = self.next_id()
        self.send(f"<iq type='{kind}' id='{ident}'>{payload}</iq>".encode())
        async with asyncio.timeout(self.target.timeout):
            while True:
                element = await self.recv()
                if element.tag == TAG_IQ and element.get("id") == ident:
                    if element.get("type") != "result":
                        raise XmppError("iq-error", _condition(element))
                    return element

    # -- negotiation --

    async def login(self, presence: bool = True, roster: bool = False) -> None:
        """Connect, STARTTLS, authenticate, bind, (session), [roster get],
        initial presence."""
        target = self.target
        local = (self.source, 0) if self.source else None
        async with asyncio.timeout(target.timeout):
            if target.ws_url:
                from wsclient import open_websocket  # bench/wsclient.py (autobahn)

                self.reader, self.writer = await open_websocket(  # type: ignore[assignment]
                    target.ws_url, local_addr=local)
            else:
                self.reader, self.writer = await asyncio.open_connection(
                    target.host, target.port, local_addr=local)
        features = await self._open_stream()
        if target.tls:
            if features.find(f"{{{NS_TLS}}}starttls") is None:
                raise XmppError("no-starttls", "server does not offer STARTTLS")
            self.send(f"<starttls xmlns='{NS_TLS}'/>".encode())
            async with asyncio.timeout(target.timeout):
                answer = await self.recv()
                if answer.tag != f"{{{NS_TLS}}}proceed":
                    raise XmppError("starttls-failed", _local(answer.tag))
                await self.writer.start_tls(target.ssl_context or insecure_context(),
                                            server_hostname=target.domain)
            features = await self._open_stream()
        await self._authenticate(features)
        features = await self._open_stream()
        if features.find(f"{{{NS_BIND}}}bind") is None:
            raise XmppError("no-bind", "server does not offer resource binding")
        result = await self.iq(f"<bind xmlns='{NS_BIND}'/>")
        jid = result.findtext(f"{{{NS_BIND}}}bind/{{{NS_BIND}}}jid")
        if not jid or "/" not in jid:
            raise XmppError("bind", "no full JID in the bind result")
        self.jid = jid
        session = features.find(f"{{{NS_SESSION}}}session")
        if session is not None and session.find(f"{{{NS_SESSION}}}optional") is None:
            await self.iq(f"<session xmlns='{NS_SESSION}'/>")
        if roster:
            self.roster = await self.get_roster()
        if presence:
            self.send(b"<presence/>")
        if target.sm:
            await self.enable_sm()

    async def enable_sm(self) -> None:
        """<enable resume='true'/>; stanzas before <enabled/> are not counted."""
        self.send(f"<enable xmlns='{NS_SM}' resume='true'/>".encode())
        async with asyncio.timeout(self.target.timeout):
            while True:
                element = await self.recv()
                if element.tag == f"{{{NS_SM}}}enabled":
                    self.sm_id = element.get("id")
                    return
                if element.tag == f"{{{NS_SM}}}failed":
                    raise XmppError("sm-failed", _condition(element))
                if element.tag == TAG_IQ:
                    self.answer_iq(element)

    def sm_seen(self, element: ET.Element) -> bool:
        """Count an inbound element for stream management; answer <r/>.
        True when it was a stream management nonza (nothing else to do)."""
        tag = element.tag
        if tag in STANZA_TAGS:
            self.sm_handled = (self.sm_handled + 1) % (1 << 32)
            return False
        if tag == TAG_SM_R:
            self.sm_requests += 1
            self.send(f"<a xmlns='{NS_SM}' h='{self.sm_handled}'/>".encode())
            return True
        if tag == TAG_SM_A:
            self.sm_acked = int(element.get("h") or 0)
            return True
        return False

    def sm_sent(self, stanzas: int) -> bytes:
        """After sending C{stanzas}: an <r/> to append when one is due."""
        self.sm_unrequested += stanzas
        if self.sm_unrequested < SM_REQUEST_EVERY:
            return b""
        self.sm_unrequested = 0
        return f"<r xmlns='{NS_SM}'/>".encode()

    def reset(self) -> None:
        """Cut the connection with a TCP reset (SO_LINGER 0): no closing tag."""
        writer, self.writer = self.writer, None
        if writer is None:
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        writer.transport.abort()

    async def get_roster(self) -> list[str]:
        """The JIDs of the roster (RFC 6121 2.1.3)."""
        result = await self.iq(f"<query xmlns='{NS_ROSTER}'/>", "get")
        return [item.get("jid", "") for item in result.iter(f"{{{NS_ROSTER}}}item")]

    async def _authenticate(self, features: ET.Element) -> None:
        """SASL with the chosen (or best offered) mechanism."""
        offered = [m.text or "" for m in features.iterfind(
            f"{{{NS_SASL}}}mechanisms/{{{NS_SASL}}}mechanism")]
        wanted = [self.target.mechanism] if self.target.mechanism else list(MECHANISMS)
        mechanism = next((m for m in wanted if m in offered), None)
        if mechanism is None:
            raise XmppError("no-mechanism", f"offered {offered}")
        scram: ScramClient | None = None
        if mechanism == "PLAIN":
            initial = b"\0" + self.username.encode() + b"\0" + self.target.password.encode()
        else:
            scram = ScramClient(mechanism, self.username, self.target.password)
            initial = scram.first()
        self.send(f"<auth xmlns='{NS_SASL}' mechanism='{mechanism}'>".encode()
                  + base64.b64encode(initial) + b"</auth>")
        stage = "done" if scram is None else "first"
        async with asyncio.timeout(self.target.timeout):
            for _ in range(4):  # challenge, [challenge with v=], success
                answer = await self.recv()
                name = _local(answer.tag)
                if name == "failure":
                    raise XmppError("auth-failed", _condition(answer))
                text = (answer.text or "").strip()
                try:
                    data = base64.b64decode(text, validate=True) if text != "=" else b""
                except ValueError:
                    raise XmppError("sasl", f"bad base64 in <{name}>") from None
                if name == "success":
                    if stage != "done":
                        assert scram is not None
                        scram.verify(data)  # RFC 6120 6.3.10: v= in the success
                    return
                if name != "challenge" or scram is None or stage == "done":
                    raise XmppError("sasl", f"unexpected <{name}>")
                if stage == "first":
                    response, stage = scram.final(data), "final"
                else:  # older servers: v= in a challenge, then an empty response
                    scram.verify(data)
                    response, stage = b"", "done"
                self.send(f"<response xmlns='{NS_SASL}'>".encode()
                          + base64.b64encode(response) + b"</response>")
        raise XmppError("sasl", "too many challenges")

    # -- after login --

    def answer_iq(self, element: ET.Element) -> None:
        """Answer an iq get/set addressed to us: pong for pings, else an error."""
        kind = element.get("type")
        if kind not in ("get", "set"):
            return
        ident = _xml_attr(element.get("id", ""))
        to = element.get("from")
        to_attr = f" to='{_xml_attr(to)}'" if to else ""
        if element.find(f"{{{NS_PING}}}ping") is not None:
            self.send(f"<iq type='result' id='{ident}'{to_attr}/>".encode())
        else:
            self.send(f"<iq type='error' id='{ident}'{to_attr}><error type='cancel'>"
                      "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                      "</error></iq>".encode())

    async def close(self, timeout: float | None = None) -> bool:
        """Send ``</stream:stream>``, wait for the server's close or EOF, drop the socket.

        True when the server closed its stream (or the connection) in time.
        """
        if self.writer is None:
            return False
        clean = False
        try:
            self.writer.write(b"</stream:stream>")
            async with asyncio.timeout(timeout or self.target.timeout):
                while not self.framer.closed:
                    assert self.reader is not None
                    data = await self.reader.read(READ_SIZE)
                    if not data:
                        break
                    self.framer.feed(data)
                clean = True
        except (OSError, TimeoutError, XmppError, ssl.SSLError):
            pass
        await self._drop(1.0)
        return clean

    async def _drop(self, timeout: float) -> None:
        """Close the transport (TLS close_notify when it can), abort when that stalls."""
        writer, self.writer = self.writer, None
        if writer is None:
            return
        try:
            writer.close()
            async with asyncio.timeout(timeout):
                await writer.wait_closed()
        except (OSError, TimeoutError, ssl.SSLError):
            writer.transport.abort()

    def abort(self) -> None:
        """Drop the connection now."""
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.transport.abort()


def insecure_context() -> ssl.SSLContext:
    """TLS without certificate checks: a loopback benchmark with self-signed certs."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


FAILURES = (XmppError, OSError, TimeoutError, ssl.SSLError, EOFError, ValueError)


def failure_reason(error: BaseException) -> str:
    """A short failure category for the report."""
    if isinstance(error, XmppError):
        return error.reason
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, ssl.SSLError):
        return "tls"
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, OSError):
        return errno.errorcode.get(error.errno or 0, "os-error")
    return type(error).__name__


# ---------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------

def percentile(ordered: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latency_stats(samples: list[float], prefix: str = "latency") -> dict[str, float | None]:
    """p50, p99 and max of samples in seconds, as milliseconds."""
    ordered = sorted(samples)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000.0, 3)

    return {f"{prefix}_p50_ms": ms(percentile(ordered, 50)),
            f"{prefix}_p99_ms": ms(percentile(ordered, 99)),
            f"{prefix}_max_ms": ms(ordered[-1] if ordered else None)}


def read_rss_kib(pid: int | None) -> int | None:
    """VmRSS of a process in KiB, or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def read_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds a process has used, or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def find_listener_pid(port: int) -> int | None:
    """The process holding the TCP listening socket on ``port`` (Linux /proc), or None."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                next(lines, None)
                for line in lines:
                    cols = line.split()
                    listening = len(cols) > 9 and cols[3] == "0A"  # TCP_LISTEN
                    if listening and int(cols[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(f"socket:[{cols[9]}]")
        except (OSError, ValueError):
            continue
    if not inodes:
        return None
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            for fd in os.listdir(f"/proc/{entry}/fd"):
                if os.readlink(f"/proc/{entry}/fd/{fd}") in inodes:
                    return int(entry)
        except OSError:
            continue
    return None


def server_label(pid: int | None, fallback: str) -> str:
    """A name for the measured server: convergence, prosody, else its command."""
    if pid is None:
        return fallback
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return fallback
    text = b" ".join(argv).decode(errors="replace").lower()
    for known in ("convergence", "prosody", "ejabberd", "openfire", "tigase", "mongooseim"):
        if known in text:
            return known
    return os.path.basename(argv[0].decode(errors="replace")) or fallback


class CpuMeter:
    """Server CPU seconds over a phase (when the server pid is known)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.cpu0 = read_cpu_s(pid)
        self.wall0 = time.monotonic()

    def result(self) -> dict[str, float | None]:
        """server_cpu_s and server_cpu_pct since construction."""
        cpu1 = read_cpu_s(self.pid)
        wall = time.monotonic() - self.wall0
        if self.cpu0 is None or cpu1 is None or wall <= 0:
            return {"server_cpu_s": None, "server_cpu_pct": None}
        used = cpu1 - self.cpu0
        return {"server_cpu_s": round(used, 3), "server_cpu_pct": round(used / wall * 100, 1)}


# ---------------------------------------------------------------------------
# Modes
# ---------------------------------------------------------------------------

@dataclass
class Run:
    """What every mode gets: the target, the options, and a stop signal."""

    target: Target
    args: argparse.Namespace
    stop: asyncio.Event
    server_pid: int | None

    def user(self, index: int) -> str:
        """The username for a 0-based index: prefix + (index mod users) + 1."""
        return f"{self.args.users_prefix}{index % self.args.users + 1}"

    def source(self, index: int) -> str | None:
        """The local address for the index-th connection (round robin), if any."""
        sources = self.target.sources
        return sources[index % len(sources)] if sources else None

    async def sleep(self, seconds: float) -> bool:
        """Sleep unless stopped first; True when stopped."""
        if seconds <= 0:
            return self.stop.is_set()
        try:
            async with asyncio.timeout(seconds):
                await self.stop.wait()
        except TimeoutError:
            pass
        return self.stop.is_set()


async def close_all(clients: list[XmppClient], concurrency: int, timeout: float) -> int:
    """Close clients with bounded concurrency; return how many closed cleanly."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(client: XmppClient) -> bool:
        async with gate:
            return await client.close(timeout)

    results = await asyncio.gather(*(one(c) for c in clients), return_exceptions=True)
    return sum(1 for r in results if r is True)


async def login_many(run: Run, count: int, users: Callable[[int], str],
                     concurrency: int, target: Target | None = None
                     ) -> tuple[list[XmppClient | None], Counter[str]]:
    """Log ``count`` clients in with bounded concurrency (on ``target``, by
    default the run's); failed slots are None."""
    gate = asyncio.Semaphore(max(1, concurrency))
    reasons: Counter[str] = Counter()
    clients: list[XmppClient | None] = [None] * count

    async def one(index: int) -> None:
        async with gate:
            if run.stop.is_set():
                reasons["stopped"] += 1
                return
            client = XmppClient(target or run.target, users(index), run.source(index))
            try:
                await client.login(roster=getattr(run.args, "roster", False))
                clients[index] = client
            except FAILURES as e:
                reasons[failure_reason(e)] += 1
                client.abort()

    await asyncio.gather(*(one(i) for i in range(count)))
    return clients, reasons


async def mode_login(run: Run) -> dict[str, Any]:
    """C workers repeat full logins (connect … presence … close) for the duration."""
    args = run.args
    deadline = time.monotonic() + args.duration
    latencies: list[float] = []
    cycles: list[float] = []
    reasons: Counter[str] = Counter()
    state = {"started": 0, "unclean": 0}
    cpu = CpuMeter(run.server_pid)

    async def worker() -> None:
        while (not run.stop.is_set() and time.monotonic() < deadline
               and state["started"] < args.max_logins):
            index = state["started"]
            state["started"] += 1
            client = XmppClient(run.target, run.user(index), run.source(index))
            begin = time.monotonic()
            try:
                await client.login()
                logged_in = time.monotonic()
                if not await client.close():
                    state["unclean"] += 1
            except FAILURES as e:
                client.abort()
                reasons[failure_reason(e)] += 1
                await run.sleep(0.05)  # no hot loop against a refusing server
                continue
            latencies.append(logged_in - begin)
            cycles.append(time.monotonic() - begin)

    began = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    elapsed = time.monotonic() - began
    return {
        "logins": len(latencies),
        "failures": sum(reasons.values()),
        "failure_reasons": dict(reasons),
        "logins_per_s": round(len(latencies) / elapsed, 2) if elapsed > 0 else 0.0,
        "elapsed_s": round(elapsed, 3),
        **latency_stats(latencies),
        **latency_stats(cycles, "cycle"),
        "unclean_closes": state["unclean"],
        **cpu.result(),
    }


class Pair:
    """One sender → receiver pair with a bounded in-flight window."""

    def __init__(self, sender: XmppClient, receiver: XmppClient, window: int) -> None:
        self.sender = sender
        self.receiver = receiver
        self.window = window
        self.inflight = 0
        self.written = 0  # sent
        self.throttled = 0  # skipped by a paced sender: the window was full
        self.received = 0
        self.bounced = 0
        self.errors = 0
        self.slot = asyncio.Event()


class Throughput:
    """The shared clock and tallies of a throughput run."""

    def __init__(self) -> None:
        self.measure_from = math.inf
        self.measure_until = math.inf
        self.sending = True
        self.delivered = 0
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()

    async def sender(self, pair: Pair, rate: float = 0.0) -> None:
        """Keep ``window`` messages in flight until told to stop; with a
        ``rate`` (messages/s for this pair), send at that pace instead, the
        window only capping what may be in flight (an open loop: the same
        offered load whatever the server's speed)."""
        client = pair.sender
        head = (f"<message type='chat' to='{_xml_attr(pair.receiver.jid)}' id='m").encode()
        seq = 0
        assert client.writer is not None
        writer: Any = client.writer
        ws = bool(client.target.ws_url)
        began = time.monotonic()
        while self.sending:
            room = pair.window - pair.inflight
            if rate:
                due = int((time.monotonic() - began) * rate) - pair.written - pair.throttled
                if due <= 0:
                    await asyncio.sleep(PACE_TICK_S)
                    continue
                if room < due:
                    pair.throttled += due - max(room, 0)  # skipped: the pace goes on
                room = min(room, due)
                if room <= 0:
                    await asyncio.sleep(PACE_TICK_S)
                    continue
            elif room <= 0:
                pair.slot.clear()
                await pair.slot.wait()
                continue
            now = time.monotonic_ns()
            parts = []
            for _ in range(room):
                seq += 1
                parts.append(b"%s%d'><body>%s %d %d</body></message>"
                             % (head, seq, BODY_MARK.encode(), seq, now))
            pair.inflight += room
            pair.written += room
            if client.target.sm:
                parts.append(client.sm_sent(room))
            if ws:
                writer.write_parts(parts)  # one WebSocket message per element
            else:
                writer.write(b"".join(parts))
            await writer.drain()

    async def reader(self, pair: Pair, client: XmppClient, is_receiver: bool) -> None:
        """Read one side: count deliveries (receiver) and bounces (either side)."""
        assert client.reader is not None
        reader = client.reader
        pending = list(client.pending)
        client.pending.clear()
        sm = client.target.sm
        while True:
            for element in pending:
                tag = element.tag
                if sm and client.sm_seen(element):
                    continue
                if tag == TAG_MESSAGE:
                    if element.get("type") == "error":
                        if not is_receiver:
                            pair.bounced += 1
                            pair.inflight -= 1
                            pair.slot.set()
                        self.errors["bounced"] += 1
                        continue
                    body = element.findtext(TAG_BODY)
                    if not is_receiver or not body or not body.startswith(BODY_MARK):
                        continue
                    now = time.monotonic_ns()
                    pair.received += 1
                    pair.inflight -= 1
                    pair.slot.set()
                    if self.measure_from <= now < self.measure_until:
                        self.delivered += 1
                        self.latencies.append((now - int(body.rsplit(" ", 1)[1])) / 1e9)
                elif tag == TAG_IQ:
                    client.answer_iq(element)
                elif tag == TAG_STREAM_ERROR:
                    self.errors["stream-error"] += 1
                    pair.errors += 1
                    return
            if client.framer.closed:
                self.errors["stream-closed"] += 1
                pair.errors += 1
                return
            try:
                data = await reader.read(READ_SIZE)
            except (OSError, ssl.SSLError):
                data = b""
            if not data:
                self.errors["eof"] += 1
                pair.errors += 1
                pair.slot.set()
                return
            try:
                pending = client.framer.feed(data)
            except XmppError:
                self.errors["bad-xml"] += 1
                pair.errors += 1
                return


def peer_target(run: Run) -> Target:
    """s2s: the receivers' server (--peer-host, --peer-port, --peer-domain),
    logged in to as the run's target is."""
    args = run.args
    return replace(run.target, host=args.peer_host, port=args.peer_port,
                   domain=args.peer_domain)


async def mode_s2s(run: Run) -> dict[str, Any]:
    """N senders on the target's server send chat messages to N receivers on
    the peer server (federation between the two): sender i and receiver i
    are both user i, each of their own domain."""
    return await mode_throughput(run, peer=peer_target(run))


async def mode_throughput(run: Run, peer: Target | None = None) -> dict[str, Any]:
    """N pairs exchange chat messages to full JIDs with a bounded window
    (with a ``peer``: senders on the target, receivers on the peer)."""
    args = run.args
    count = args.pairs
    if peer is None:
        clients, reasons = await login_many(run, 2 * count, run.user, args.concurrency)
        senders_, receivers = clients[0::2], clients[1::2]
    else:
        senders_, reasons = await login_many(run, count, run.user, args.concurrency)
        receivers, more = await login_many(run, count, run.user, args.concurrency, peer)
        reasons.update(more)
        clients = [*senders_, *receivers]
    pairs = [Pair(s, r, args.window) for s, r in zip(senders_, receivers)
             if s is not None and r is not None]
    state = Throughput()
    if not pairs:
        await close_all([c for c in clients if c is not None], args.concurrency, args.timeout)
        return {"pairs": 0, "delivered": 0, "messages_per_s": 0.0, "lost": 0,
                "errors": sum(reasons.values()), "login_failures": sum(reasons.values()),
                "failure_reasons": dict(reasons)}
    tasks: list[asyncio.Task[None]] = []
    for pair in pairs:
        tasks.append(asyncio.create_task(state.reader(pair, pair.receiver, True)))
        tasks.append(asyncio.create_task(state.reader(pair, pair.sender, False)))
    per_pair = args.rate / len(pairs) if args.rate else 0.0
    senders = [asyncio.create_task(state.sender(pair, per_pair)) for pair in pairs]
    start = time.monotonic_ns()
    state.measure_from = start + int(args.warmup * 1e9)
    state.measure_until = state.measure_from + int(args.duration * 1e9)
    await run.sleep(args.warmup)
    cpu = CpuMeter(run.server_pid)
    await run.sleep(args.duration)
    measured = min(time.monotonic_ns(), state.measure_until) - state.measure_from
    server_cpu = cpu.result()
    state.sending = False
    for pair in pairs:
        pair.slot.set()
    for task in senders:
        try:
            async with asyncio.timeout(args.timeout):
                await task
        except (TimeoutError, *FAILURES):
            task.cancel()
            state.errors["send"] += 1
    grace_end = time.monotonic() + args.grace
    while time.monotonic() < grace_end and any(p.inflight > 0 and p.errors == 0 for p in pairs):
        await asyncio.sleep(0.02)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    live = [c for c in clients if c is not None]
    await close_all(live, args.concurrency, args.timeout)
    seconds = max(measured / 1e9, 1e-9) if measured > 0 else 0.0
    sent = sum(p.written for p in pairs)
    received = sum(p.received for p in pairs)
    bounced = sum(p.bounced for p in pairs)
    return {
        "pairs": len(pairs),
        "offered_per_s": args.rate or None,
        "throttled": sum(p.throttled for p in pairs),
        "delivered": state.delivered,
        "messages_per_s": round(state.delivered / seconds, 1) if seconds else 0.0,
        "measure_s": round(seconds, 3),
        **latency_stats(state.latencies),
        "sent": sent,
        "received": received,
        "lost": sent - received - bounced,
        "errors": sum(state.errors.values()) + sum(reasons.values()),
        "error_reasons": dict(state.errors),
        "login_failures": sum(reasons.values()),
        "failure_reasons": dict(reasons),
        **({"sm_acked": sum(p.sender.sm_acked for p in pairs),
            "sm_requests": sum(p.receiver.sm_requests for p in pairs)}
           if run.target.sm else {}),
        **server_cpu,
    }


async def mode_idle(run: Run) -> dict[str, Any]:
    """Hold N authenticated connections; report the server's RSS per connection."""
    args = run.args
    rss_before = read_rss_kib(run.server_pid)
    cpu = CpuMeter(run.server_pid)
    began = time.monotonic()
    clients, reasons = await login_many(run, args.connections, run.user, args.concurrency)
    setup = time.monotonic() - began
    live = [c for c in clients if c is not None]
    setup_cpu = cpu.result()
    rss_setup = read_rss_kib(run.server_pid)
    dropped: Counter[str] = Counter()

    def seen(client: XmppClient, element: ET.Element) -> None:
        if run.target.sm and client.sm_seen(element):
            return
        if element.tag == TAG_IQ:
            client.answer_iq(element)

    async def hold(client: XmppClient) -> None:
        assert client.reader is not None
        for element in client.pending:
            seen(client, element)
        client.pending.clear()
        while not client.framer.closed:
            try:
                data = await client.reader.read(READ_SIZE)
                if not data:
                    break
                for element in client.framer.feed(data):
                    seen(client, element)
            except (OSError, ssl.SSLError, XmppError):
                break
        dropped["dropped"] += 1

    holders = [asyncio.create_task(hold(c)) for c in live]
    await run.sleep(args.hold)
    rss_after = read_rss_kib(run.server_pid)
    for task in holders:
        task.cancel()
    await asyncio.gather(*holders, return_exceptions=True)
    hibernating: dict[str, Any] = {}
    if args.hibernate:
        # Every connection reset: the sessions live on without a socket.
        for client in live:
            client.reset()
        await run.sleep(args.hold)
        rss_hibernating = read_rss_kib(run.server_pid)
        grown = (None if rss_before is None or rss_hibernating is None
                 else rss_hibernating - rss_before)
        hibernating = {
            "rss_hibernating_kib": rss_hibernating,
            "rss_per_hibernating_kib": (round(grown / len(live), 2)
                                        if grown is not None and live else None),
        }
    close_began = time.monotonic()
    clean = 0 if args.hibernate else await close_all(live, args.concurrency, args.timeout)
    delta = None if rss_before is None or rss_after is None else rss_after - rss_before
    return {
        "connections": len(live),
        "failures": sum(reasons.values()),
        "failure_reasons": dict(reasons),
        "setup_s": round(setup, 3),
        "setup_per_s": round(len(live) / setup, 1) if setup > 0 else 0.0,
        "rss_before_kib": rss_before,
        "rss_after_setup_kib": rss_setup,
        "rss_after_kib": rss_after,
        "rss_delta_kib": delta,
        "rss_per_connection_kib": (round(delta / len(live), 2)
                                   if delta is not None and live else None),
        "dropped_while_held": dropped["dropped"],
        "closed_cleanly": clean,
        "close_s": round(time.monotonic() - close_began, 3),
        **hibernating,
        **setup_cpu,
    }


MODES = {"login": mode_login, "throughput": mode_throughput, "idle": mode_idle,
         "s2s": mode_s2s}
#: users a mode needs when --users is not given
DEFAULT_USERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "login": lambda a: a.concurrency, "throughput": lambda a: 2 * a.pairs,
    "idle": lambda a: a.connections, "s2s": lambda a: a.pairs}
#: the result that must be non-zero for a run to count as a success
SUCCESS_KEYS = {"login": "logins", "throughput": "delivered", "idle": "connections",
                "s2s": "delivered"}


# ---------------------------------------------------------------------------
# Command line and report
# ---------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="xmppload", description=__doc__.split("\n\n")[1] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("mode", choices=sorted(MODES),
                        help="login: logins/s; throughput: delivered messages/s and latency;"
                             " idle: server RSS per held connection")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5222)
    parser.add_argument("--domain", default="localhost")
    parser.add_argument("--users-prefix", default="user")
    parser.add_argument("--users", type=int, default=None,
                        help="users that exist (prefix1..prefixK); default: one per "
                             "worker/connection, 2 per pair")
    parser.add_argument("--password", default="pw")
    parser.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True,
                        help="STARTTLS before SASL")
    parser.add_argument("--cafile", default=None,
                        help="verify the server certificate against this CA file")
    parser.add_argument("--mechanism", choices=MECHANISMS, default=None,
                        help="SASL mechanism; default: the best offered")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="throughput: seconds sent before measuring")
    parser.add_argument("--grace", type=float, default=2.0,
                        help="throughput: seconds to wait for in-flight messages")
    parser.add_argument("--hold", type=float, default=2.0,
                        help="idle: seconds to hold the connections before measuring")
    parser.add_argument("--concurrency", type=int, default=10,
                        help="login workers; parallel logins while setting up")
    parser.add_argument("--max-logins", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--window", type=int, default=10, help="messages in flight per pair")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="throughput: send this many messages/s in all (an open loop, "
                             "the window only a cap); 0: keep the window full")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--roster", action="store_true",
                        help="idle: each connection gets its roster before presence")
    parser.add_argument("--contacts", type=int, default=100,
                        help="roster_login (bench/imload.py): contacts of each login user")
    parser.add_argument("--messages", type=int, default=1000,
                        help="offline (bench/imload.py): messages stored, then delivered")
    parser.add_argument("--occupants", type=int, default=50,
                        help="muc (bench/mucload.py): users in the room")
    parser.add_argument("--senders", type=int, default=5,
                        help="muc (bench/mucload.py): occupants sending, --window each")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per step")
    parser.add_argument("--source-addresses", default="",
                        help="comma-separated local addresses to connect from (round robin),"
                             " e.g. 127.0.0.2,127.0.0.3 past per-IP connection limits")
    parser.add_argument("--quickack", action="store_true",
                        help="TCP_QUICKACK while negotiating: no 40 ms delayed-ACK stalls"
                             " behind a server's Nagle (not what ordinary clients do)")
    parser.add_argument("--server-pid", default="auto",
                        help="server process for RSS/CPU; 'auto': the owner of the port;"
                             " 'none': do not measure")
    parser.add_argument("--label", default=None,
                        help="server name in the report; default: guessed from its process")
    parser.add_argument("--sm", action="store_true",
                        help="enable XEP-0198 stream management (with resumption) on"
                             " every client; acknowledge and request acks")
    parser.add_argument("--hibernate", action="store_true",
                        help="idle --sm: then reset every connection and report the"
                             " server's RSS per hibernating session")
    parser.add_argument("--ws", default="", metavar="URL",
                        help="XMPP over WebSocket (RFC 7395) at this ws:// URL instead of"
                             " TCP to --host/--port (needs autobahn; implies --no-tls)")
    parser.add_argument("--peer-host", default="127.0.0.2",
                        help="s2s: the receivers' server (federating with --host)")
    parser.add_argument("--peer-port", type=int, default=5222)
    parser.add_argument("--peer-domain", default="b.test")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if args.mode == "s2s" and args.peer_domain == args.domain:
        parser.error("s2s: --peer-domain must differ from --domain")
    if args.ws:
        if not args.ws.startswith("ws://"):
            parser.error("--ws takes a ws:// URL")
        args.tls = False
    if args.hibernate and not (args.sm and args.mode == "idle"):
        parser.error("--hibernate is for idle --sm")
    for name in ("concurrency", "pairs", "window", "connections", "max_logins",
                 "occupants", "senders"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.rate < 0:
        parser.error("--rate must not be negative")
    if args.users is None:
        args.users = DEFAULT_USERS[args.mode](args)
    if args.users < 1:
        parser.error("--users must be at least 1")
    return args


def resolve_pid(args: argparse.Namespace) -> int | None:
    """--server-pid: a number, 'auto' (the port's owner) or 'none'."""
    value = str(args.server_pid).lower()
    if value == "none":
        return None
    if value == "auto":
        local = args.host in ("127.0.0.1", "localhost", "::1")
        return find_listener_pid(args.port) if local else None
    return int(value)


def raise_nofile() -> int:
    """Raise the soft open-file limit to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            pass
    return soft


MODE_PARAMS = {
    "login": ("concurrency", "duration", "max_logins"),
    "throughput": ("pairs", "window", "rate", "duration", "warmup", "grace", "concurrency"),
    "idle": ("connections", "concurrency", "hold", "roster", "hibernate"),
    "s2s": ("pairs", "window", "rate", "duration", "warmup", "grace", "concurrency",
            "peer_host", "peer_port", "peer_domain"),
}


def build_report(args: argparse.Namespace, pid: int | None, results: dict[str, Any],
                 wall: float, interrupted: bool) -> dict[str, Any]:
    """The report object printed with --json."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    params: dict[str, Any] = {
        "host": args.host, "port": args.port, "domain": args.domain,
        "tls": args.tls, "mechanism": args.mechanism or "auto",
        "users": args.users, "users_prefix": args.users_prefix,
        "server_pid": pid, "timeout": args.timeout,
    }
    params.update({name: getattr(args, name) for name in MODE_PARAMS[args.mode]})
    if args.source_addresses:
        params["source_addresses"] = args.source_addresses
    if args.quickack:
        params["quickack"] = True
    if args.sm:
        params["sm"] = True
    if args.ws:
        params["ws"] = args.ws
    if interrupted:
        results = {**results, "interrupted": True}
    return {
        "mode": args.mode,
        "server": args.label or server_label(pid, f"{args.host}:{args.port}"),
        "params": params,
        "results": results,
        "generator_cpu_s": round(cpu, 3),
        "generator_cpu_pct": round(cpu / wall * 100, 1) if wall > 0 else 0.0,
        "wall_s": round(wall, 3),
    }


def format_summary(report: dict[str, Any]) -> str:
    """A readable multi-line rendering of a report."""
    lines = [f"xmppload {report['mode']} against {report['server']}"]
    params = ", ".join(f"{k}={v}" for k, v in report["params"].items())
    lines.append(f"  params: {params}")
    for key, value in report["results"].items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        lines.append(f"  {key:24} {value}")
    lines.append(f"  {'generator_cpu_s':24} {report['generator_cpu_s']}"
                 f" ({report['generator_cpu_pct']}% of {report['wall_s']} s wall)")
    return "\n".join(lines)


def succeeded(report: dict[str, Any]) -> bool:
    """Did the run achieve anything at all (exit status 0)?"""
    results = report["results"]
    return bool(results.get(SUCCESS_KEYS[report["mode"]]))


async def run_mode(args: argparse.Namespace, pid: int | None) -> tuple[dict[str, Any], bool]:
    """Run the chosen mode under SIGINT/SIGTERM handling; return results, interrupted."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    main = asyncio.current_task()
    first_signal: list[float] = []

    def on_signal() -> None:
        # A repeated signal (not a duplicate, e.g. from timeout(1)) gives up at once.
        if first_signal and time.monotonic() - first_signal[0] > 1.0 and main is not None:
            main.cancel()
        first_signal.append(time.monotonic())
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
        except (NotImplementedError, RuntimeError):
            pass
    context = None
    if args.cafile:
        context = ssl.create_default_context(cafile=args.cafile)
    target = Target(
        host=args.host, port=args.port, domain=args.domain, password=args.password,
        tls=args.tls, mechanism=args.mechanism, timeout=args.timeout,
        ssl_context=context or insecure_context(),
        sources=[s.strip() for s in args.source_addresses.split(",") if s.strip()],
        quickack=args.quickack, sm=args.sm, ws_url=args.ws)
    run = Run(target, args, stop, pid)
    results = await MODES[args.mode](run)
    return results, stop.is_set()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run one mode, print the report; 1 when nothing succeeded."""
    args = parse_args(argv)
    began = time.monotonic()
    raise_nofile()
    pid = resolve_pid(args)
    try:
        results, interrupted = asyncio.run(run_mode(args, pid))
    except (KeyboardInterrupt, asyncio.CancelledError):
        results, interrupted = {}, True
    report = build_report(args, pid, results, time.monotonic() - began, interrupted)
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        sys.stdout.write(format_summary(report) + "\n")
    sys.stdout.flush()
    return 0 if results and succeeded(report) else 1


if __name__ == "__main__":
    sys.exit(main())
