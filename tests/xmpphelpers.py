"""
Helpers for XMPP tests: a server on a StringTransport and a scripted client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path
from typing import Any

from lxml import etree
from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from convergence.auth.accounts import Accounts
from convergence.config import XmppConfig
from convergence.container.application import Application
from convergence.container.container import Container
from convergence.container.descriptor import DeploymentDescriptor
from convergence.store.sqlite import SqliteAccountStore
from convergence.xmpp.c2s import C2SStream
from convergence.xmpp.server import XmppServer

STREAMS = "http://etherx.jabber.org/streams"
HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
    b" xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'"
    b" xml:lang='en'>"
)


def run_now(f: Any, *args: Any) -> Any:
    """A synchronous stand-in for deferToThread."""
    return succeed(f(*args))


def make_server(
    tmpdir: str, apps: tuple[Application, ...] = (),
    features: Any = None, im_store: Any = None, muc_store: Any = None,
    archive_store: Any = None, **xmpp: Any
) -> tuple[XmppServer, Clock]:
    """An XmppServer for C{localhost} without TLS, with alice and bob.

    @param features: the L{Feature}s to run (default: the built-in ones).
    @param im_store: rosters, offline messages … (default: in memory).
    @param muc_store: persistent rooms (default: in memory).
    @param archive_store: message archives (default: in memory).
    """
    clock = Clock()
    Path(tmpdir).mkdir(parents=True, exist_ok=True)
    store = SqliteAccountStore(Path(tmpdir) / "db.sqlite3")
    accounts = Accounts(store, 4096)
    accounts.add("alice@localhost", "secret")
    accounts.add("bob@localhost", "hunter2")
    # no XEP-0199 pings of idle clients unless a test asks for them: tests
    # that move the clock far would see them among the stanzas they expect
    options = {"require_tls": False, "allow_plain_without_tls": True,
               "auth_failure_delay": 1.0, "ping_interval": 0,
               # no hourly archive sweep timer unless a test asks for one
               "mam_retention": 0, "muc_archive_retention": 0}
    options.update(xmpp)
    container = Container(clock, apps)
    server = XmppServer(XmppConfig(**options), ["localhost"], accounts, container,
                        clock, tls_context=None, run_in_thread=run_now,
                        features=features, im_store=im_store, muc_store=muc_store,
                        archive_store=archive_store)
    return server, clock


def make_app(name: str, servlet: Any, addresses: tuple[str, ...],
             **descriptor: Any) -> Application:
    """An Application built in the test, as the loader would build it."""
    d = DeploymentDescriptor(name=name, xmpp=addresses,
                             servlets={"xmpp": type(servlet)}, **descriptor)
    listener = descriptor.get("connection_listener")
    return Application(name, d, {"xmpp": servlet}, addresses,
                       connection_listener=listener() if listener else None)


class Client:
    """A scripted client on a StringTransport, parsing what the server says."""

    def __init__(self, server: XmppServer, host: str = "127.0.0.1") -> None:
        self.server = server
        self.stream = C2SStream(server)
        self.transport = StringTransport(peerAddress=_Addr(host))
        self.stream.makeConnection(self.transport)
        self._parser = etree.XMLPullParser(events=("start", "end"))
        self._depth = 0
        self.header: etree._Element | None = None
        self.elements: list[etree._Element] = []
        self.closed_tag = False

    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.stream.dataReceived(data)

    def restart_parser(self) -> None:
        self._parser = etree.XMLPullParser(events=("start", "end"))
        self._depth = 0

    def read(self) -> list[etree._Element]:
        """New elements the server sent since the last read."""
        data = self.transport.value()
        self.transport.clear()
        if b"</stream:stream>" in data:
            self.closed_tag = True
            data = data.replace(b"</stream:stream>", b"")
        out: list[etree._Element] = []
        while data:
            if data.startswith(b"<?xml"):
                self.restart_parser()
            self._parser.feed(data)
            data = b""
            for event, el in self._parser.read_events():
                if event == "start":
                    if self._depth == 0:
                        self.header = el
                    self._depth += 1
                else:
                    self._depth -= 1
                    if self._depth == 1:
                        out.append(el)
        self.elements.extend(out)
        return out

    def expect(self, local: str) -> etree._Element:
        """The next element, asserted to have local name C{local}."""
        got = self.read()
        assert got, f"expected <{local}/>, server sent nothing"
        assert etree.QName(got[0]).localname == local, etree.tostring(got[0])
        return got[0]

    def available(self, priority: int | None = None) -> list[etree._Element]:
        """Send initial presence; assert the server echoes it to this very
        resource (RFC 6121 4.2.2); return everything it sent."""
        body = "" if priority is None else f"<priority>{priority}</priority>"
        self.send(f"<presence>{body}</presence>")
        got = self.read()
        jid = str(self.stream.jid)
        assert any(etree.QName(e).localname == "presence" and e.get("from") == jid
                   and e.get("to") == jid for e in got), [etree.tostring(e) for e in got]
        return got

    def login(self, user: str = "alice", password: str = "secret",
              resource: str = "phone") -> str:
        """Negotiate PLAIN and bind; return the bound full JID."""
        self.send(HEADER)
        self.read()
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        self.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>")
        success = self.expect("success")
        self.restart_parser()
        self.send(HEADER)
        self.read()
        self.send(
            "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
            f"<resource>{resource}</resource></bind></iq>")
        iq = self.expect("iq")
        assert success is not None
        return iq.findtext(".//{urn:ietf:params:xml:ns:xmpp-bind}jid")


class _Addr:
    def __init__(self, host: str) -> None:
        self.host = host
        self.port = 40000

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def scram_client_proof(hash_name: str, password: str, salt: bytes,
                       iterations: int, auth_message: bytes) -> bytes:
    """The client proof of RFC 5802, computed independently of the server."""
    salted = hashlib.pbkdf2_hmac(hash_name, password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hash_name).digest()
    stored = hashlib.new(hash_name, client_key).digest()
    signature = hmac.new(stored, auth_message, hash_name).digest()
    return bytes(a ^ b for a, b in zip(client_key, signature))
