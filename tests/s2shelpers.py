"""
Helpers for federation tests: XMPP servers for different domains joined
by in-memory connections (iosim, with its pretend TLS), one clock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lxml import etree
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.names.error import DNSNameError
from twisted.test import iosim

from convergence.auth.accounts import Accounts
from convergence.config import S2SConfig, S2SPolicy, XmppConfig
from convergence.container.container import Container
from convergence.store.sqlite import SqliteAccountStore
from convergence.xmpp.s2s.manager import S2SManager
from convergence.xmpp.s2s.resolver import Resolver, Target
from convergence.xmpp.server import XmppServer
from tests.xmpphelpers import Client, run_now

PLAIN = S2SPolicy(tls="disabled")


class Net:
    """Servers by address; connections between them pumped on demand."""

    def __init__(self, tmpdir: str) -> None:
        self.tmpdir = Path(tmpdir)
        self.clock = Clock()
        self.servers: dict[tuple[str, int], S2SManager] = {}
        self.pumps: list[iosim.IOPump] = []
        self.down: set[str] = set()
        #: addresses whose connection attempts never end
        self.hanging: set[str] = set()

    def server(self, domain: str, address: str, s2s: dict[str, Any] | None = None,
               users: tuple[str, ...] = ("alice", "bob"), **xmpp: Any) -> XmppServer:
        """A server for C{domain} reachable at C{address}:5269."""
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        store = SqliteAccountStore(self.tmpdir / f"{domain}.sqlite3")
        accounts = Accounts(store, 4096)
        for user in users:
            accounts.add(f"{user}@{domain}", "secret")
        options = {"require_tls": False, "allow_plain_without_tls": True,
                   "ping_interval": 0, "mam_retention": 0}
        options.update(xmpp)
        server = XmppServer(XmppConfig(**options), [domain], accounts,
                            Container(self.clock, ()), self.clock, run_in_thread=run_now)
        settings: dict[str, Any] = {"server_login": PLAIN, "login_to_other_server": PLAIN,
                                    "dialback_secret": f"secret of {domain}"}
        settings.update(s2s or {})
        # no real DNS in unit tests: a domain not in the map does not exist
        manager = S2SManager(server, S2SConfig(**settings),
                             resolver=Resolver(settings.get("hosts", ()),
                                               lookup_service=lambda name: fail(
                                                   DNSNameError(name))),
                             connect=self.connect)
        manager.install()
        self.servers[(address, 5269)] = manager
        return server

    def connect(self, target: Target, protocol: Any) -> Deferred:
        if target.host in self.hanging:
            return Deferred()
        manager = self.servers.get((target.host, target.port))
        if manager is None or target.host in self.down:
            return fail(ConnectionRefusedError(target.host))
        inbound = manager.factory().buildProtocol(None)
        server_io = iosim.FakeTransport(inbound, isServer=True)
        client_io = iosim.FakeTransport(protocol, isServer=False)
        self.pumps.append(iosim.connect(inbound, server_io, protocol, client_io,
                                        greet=False, clock=self.clock))
        return succeed(protocol)

    def flush(self) -> None:
        """Move bytes until every connection is quiet."""
        for _ in range(100):
            moved = False
            for pump in list(self.pumps):
                if pump.flush():
                    moved = True
            if not moved:
                return


def login(server: XmppServer, user: str, resource: str = "r") -> Client:
    """A client bound as C{user} on C{server}, its output read."""
    domain = server.default_host
    client = Client(server)
    client.send(_header(domain))
    client.read()
    import base64

    token = base64.b64encode(f"\0{user}\0secret".encode()).decode()
    client.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>")
    client.expect("success")
    client.restart_parser()
    client.send(_header(domain))
    client.read()
    client.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                f"<resource>{resource}</resource></bind></iq>")
    client.expect("iq")
    return client


def _header(domain: str) -> bytes:
    return (b"<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
            b" xmlns:stream='http://etherx.jabber.org/streams' to='" + domain.encode()
            + b"' version='1.0'>")


def answer_verify(server: XmppServer, remote: str, valid: bool) -> etree._Element:
    """Answer the one dialback question C{server} asks C{remote}'s server,
    as that authoritative server would; the question is returned."""
    link = server.s2s.links[(server.default_host, remote)]
    ((question, _),) = link.verifies.values()
    link.verify_answered(etree.fromstring(
        f"<db:verify xmlns:db='jabber:server:dialback' from='{remote}'"
        f" to='{server.default_host}' id='{question.get('id')}'"
        f" type='{'valid' if valid else 'invalid'}'/>"))
    return question


def names(elements: list[etree._Element]) -> list[str]:
    return [etree.QName(e).localname for e in elements]


S2S_HEADER = ("<?xml version='1.0'?><stream:stream xmlns='jabber:server'"
              " xmlns:stream='http://etherx.jabber.org/streams'"
              " xmlns:db='jabber:server:dialback' from='{from_}' to='{to}' version='1.0'>")


class RawPeer:
    """Another server speaking raw s2s XML to an inbound stream of ours."""

    def __init__(self, server: XmppServer) -> None:
        from twisted.internet.testing import StringTransport

        self.stream = server.s2s.factory().buildProtocol(None)
        self.transport = StringTransport()
        self.stream.makeConnection(self.transport)
        self._reader = Client.__new__(Client)
        self._reader.transport = self.transport
        self._reader.restart_parser()
        self._reader.elements = []
        self._reader.closed_tag = False
        self._reader.header = None

    def send(self, data: str) -> None:
        self.stream.dataReceived(data.encode())

    def open(self, from_: str, to: str) -> list[etree._Element]:
        self.send(S2S_HEADER.format(from_=from_, to=to))
        return self.read()

    def read(self) -> list[etree._Element]:
        return self._reader.read()

    @property
    def header(self) -> etree._Element | None:
        return self._reader.header

    @property
    def closed(self) -> bool:
        return self._reader.closed_tag


def stream_error(elements: list[etree._Element]) -> str | None:
    """The condition of the stream error among C{elements}, if any."""
    for e in elements:
        if e.tag == "{http://etherx.jabber.org/streams}error":
            return etree.QName(e[0]).localname
    return None
