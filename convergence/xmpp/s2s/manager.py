# -*- test-case-name: tests.test_s2s_manager -*-
"""
Federation for one XMPP server: the router's C{route/remote} handler, the
outgoing links per (local domain, remote domain), the inbound streams,
dialback keys and questions, policy (C{s2s.blocked_domains},
C{s2s.allowed_domains}, the C{server_login} / C{login_to_other_server}
login configs) and the idle timer.

Inbound stanzas enter the router as stanzas from another server do: in
the client namespace, with C{origin} None (so no module takes them for a
local user's own requests), and are routed to local accounts, rooms and
applications like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lxml import etree
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from convergence.config import S2SConfig
from convergence.xmpp.errors import StanzaError
from convergence.xmpp.limits import ConnectionsPerAddress, address_host
from convergence.xmpp.router import StanzaEvent
from convergence.xmpp.s2s import identity
from convergence.xmpp.s2s.dialback import DialbackKeys
from convergence.xmpp.s2s.inbound import S2SFactory, S2SInbound
from convergence.xmpp.s2s.link import OutgoingLink
from convergence.xmpp.s2s.namespaces import to_client
from convergence.xmpp.s2s.resolver import Resolver, Target
from convergence.xmpp.s2s.tls import ServerTls, context

log = Logger()

#: on C{route/remote}: the only taker; low, so others may look first
ROUTE_PRIORITY = 0


def _endpoint_connect(reactor: Any, timeout: float) -> Callable[[Target, Any], Deferred]:
    """Connect with C{HostnameEndpoint} (A and AAAA, RFC 8305)."""
    from twisted.internet.endpoints import HostnameEndpoint, connectProtocol

    def connect(target: Target, protocol: Any) -> Deferred:
        endpoint = HostnameEndpoint(reactor, target.host.encode("idna"), target.port,
                                    timeout=timeout)
        return connectProtocol(endpoint, protocol)

    return connect


class S2SManager:
    """Server-to-server streams of one L{XmppServer}."""

    def __init__(self, server: Any, config: S2SConfig, certificate: Path | None = None,
                 private_key: Path | None = None, reactor: Any = None,
                 resolver: Resolver | None = None,
                 connect: Callable[[Target, Any], Deferred] | None = None) -> None:
        """
        @param certificate: our PEM certificate (and key); None: no TLS.
        @param connect: C{(target, protocol) -> Deferred} that connects
            (tests pass their own); by default C{HostnameEndpoint}.
        """
        self.server = server
        self.config = config
        self.clock = server.clock
        self.keys = DialbackKeys(config.dialback_secret or None)
        self.resolver = resolver or Resolver(config.hosts, reactor=reactor)
        if connect is None:
            connect = _endpoint_connect(reactor or server.clock, config.connect_timeout)
        self.connect = connect
        self.server_tls: ServerTls | None = None
        self.client_tls: Any = None
        self.client_tls_alpn: Any = None
        if certificate is not None:
            self.server_tls = ServerTls(certificate, private_key)
            self.client_tls = context(certificate, private_key)
            self.client_tls_alpn = context(certificate, private_key, alpn=True)
        self.trust = identity.trust_store(config.ca_file)
        self.links: dict[tuple[str, str], OutgoingLink] = {}
        self.inbound: set[S2SInbound] = set()
        self._per_ip = ConnectionsPerAddress()
        self.blocked = frozenset(config.blocked_domains)
        self.allowed = frozenset(config.allowed_domains)
        self._sweep: LoopingCall | None = None

    def factory(self, direct_tls: bool = False) -> S2SFactory:
        """The factory of the s2s listener (C{direct_tls}: XEP-0368's)."""
        if direct_tls and self.server_tls is None:
            raise ValueError("direct TLS needs a certificate")
        return S2SFactory(self, direct_tls)

    def install(self) -> None:
        bus = self.server.bus
        bus.hook("route/remote", self.route_remote, ROUTE_PRIORITY)
        bus.hook("xmpp/shutdown", lambda _: self.shutdown())
        self.server.s2s = self
        if self.config.idle_timeout:
            self._sweep = LoopingCall(self.close_idle)
            self._sweep.clock = self.clock
            self._sweep.start(max(1.0, self.config.idle_timeout / 4), now=False)

    # Policy
    def permitted(self, remote: str) -> bool:
        """Whether we federate with C{remote} (block list, allow-list mode)."""
        if remote in self.blocked or self.is_local(remote):
            return False
        return not self.allowed or remote in self.allowed

    def is_local(self, domain: str) -> bool:
        """Whether C{domain} is ours: a hosted domain or one of its services
        (chat rooms, upload, applications' subdomains)."""
        hosts = self.server.hosts
        if domain in hosts:
            return True
        muc = self.server.muc
        if muc is not None and domain in muc.domains:
            return True
        return any(domain.endswith("." + host) and self._serves(domain) for host in hosts)

    def _serves(self, domain: str) -> bool:
        """A subdomain applications or the upload service answer for."""
        if self.server.http_upload is not None and domain.startswith("upload."):
            return True
        return any(a == domain or a.endswith("@" + domain)
                   for a in self.server.container.router.addresses("xmpp"))

    # Outbound
    def route_remote(self, event: StanzaEvent) -> bool:
        local, remote = event.sender.host, event.to.host
        if not self.is_local(local):
            log.info("s2s: not relaying a stanza from {sender} to {to}",
                     sender=event.sender, to=event.to)
            return True
        if not self.permitted(remote):
            event.reply_error("remote-server-not-found", f"no federation with {remote}")
            return True
        self.link(local, remote).send(event.stanza)
        return True

    def link(self, local: str, remote: str) -> OutgoingLink:
        key = (local, remote)
        link = self.links.get(key)
        if link is None:
            link = self.links[key] = OutgoingLink(self, local, remote)
        return link

    def link_done(self, link: OutgoingLink) -> None:
        """A link has nothing left to do: forget it."""
        if self.links.get((link.local, link.remote)) is link:
            del self.links[(link.local, link.remote)]

    def bounce(self, stanza: etree._Element, error: StanzaError) -> None:
        self.server.router.bounce(stanza, error)

    # Dialback, receiving role: ask the authoritative server
    def verify_dialback(self, originating: str, receiving: str, stream_id: str,
                        key: str) -> Deferred:
        """Deferred bool: whether C{originating}'s server made C{key}."""
        if not self.permitted(originating):
            return succeed(False)
        return self.link(receiving, originating).ask_verify(receiving, stream_id, key)

    # Inbound
    def admit(self, addr: Any) -> bool:
        """Enforce C{s2s.max_connections_per_ip} at accept time."""
        host = address_host(addr)
        limit = self.config.max_connections_per_ip
        if not self._per_ip.admits(host, limit):
            log.warn("s2s: refusing a connection from {host}: limit of {n} reached",
                     host=host, n=limit)
            return False
        return True

    def inbound_opened(self, stream: S2SInbound) -> None:
        self.inbound.add(stream)
        self._per_ip.opened(stream.peer_ip())

    def inbound_closed(self, stream: S2SInbound) -> None:
        if stream in self.inbound:
            self.inbound.discard(stream)
            self._per_ip.closed(stream.peer_ip())

    def deliver(self, stanza: etree._Element, stream: S2SInbound) -> None:
        """A stanza from an authenticated remote domain: into the router."""
        self.server.router.route(to_client(stanza))

    # Timers and shutdown
    def close_idle(self) -> None:
        """Close streams silent both ways for C{s2s.idle_timeout} seconds."""
        limit = self.clock.seconds() - self.config.idle_timeout
        streams: list[Any] = list(self.inbound)
        streams += [link.stream for link in self.links.values()
                    if link.stream is not None and not link.verifies and not link.queue]
        for stream in streams:
            if max(stream.last_received, stream.last_sent) < limit and not stream.closed:
                log.info("s2s: closing idle stream {stream}", stream=stream)
                stream.close()

    def shutdown(self) -> None:
        if self._sweep is not None and self._sweep.running:
            self._sweep.stop()
        self.resolver.close()
        for stream in list(self.inbound):
            stream.stream_error("system-shutdown", wait=False)
        for link in list(self.links.values()):
            if link.stream is not None and not link.stream.closed:
                link.stream.stream_error("system-shutdown", wait=False)
