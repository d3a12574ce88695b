# -*- test-case-name: tests.test_s2s_resolver -*-
"""
Where a remote domain's XMPP server listens (RFC 6120 3.2, XEP-0368):

  1. the C{[s2s.hosts]} override map (private federations, loopback tests);
  2. DNS SRV C{_xmpps-server._tcp.<domain>} (direct TLS) and
     C{_xmpp-server._tcp.<domain>} (STARTTLS), merged by priority, then
     weight (a single C{.} target: the service is decidedly not offered);
  3. no SRV record: the domain itself on port 5269, its A and AAAA
     records tried by the connecting endpoint (C{HostnameEndpoint}).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.logger import Logger

DEFAULT_PORT = 5269

log = Logger()


@dataclass(frozen=True)
class Target:
    """One place to try: host name or address, port, TLS from the start."""

    host: str
    port: int
    direct_tls: bool = False


def parse_override(value: str) -> Target:
    """C{host:port} or C{tls:host:port} (validated by the config)."""
    direct = value.startswith("tls:")
    rest = value[4:] if direct else value
    host, _, port = rest.rpartition(":")
    return Target(host.strip("[]"), int(port), direct)


class Resolver:
    """Finds the targets of a remote domain."""

    def __init__(self, overrides: Iterable[tuple[str, str]] = (),
                 lookup_service: Callable[[str], Deferred] | None = None,
                 reactor: Any = None) -> None:
        """
        @param lookup_service: C{name -> Deferred} of SRV answers; by
            default a DNS client on the system's C{/etc/resolv.conf},
            made on first use (and stopped by L{close}).
        """
        self.overrides = {domain: parse_override(v) for domain, v in overrides}
        self.lookup_service = lookup_service or self._dns_lookup
        self.reactor = reactor
        self._dns: Any = None

    def _dns_lookup(self, name: str) -> Deferred:
        if self._dns is None:
            from twisted.names import client

            # short retries: a stanza waits for this (s2s.queue_timeout)
            self._dns = client.Resolver(resolv="/etc/resolv.conf", timeout=(1, 3, 5),
                                        reactor=self.reactor)
        return self._dns.lookupService(name)

    def close(self) -> None:
        """Stop the DNS client's periodic re-reading of resolv.conf."""
        call = getattr(self._dns, "_parseCall", None)
        if call is not None and call.active():
            call.cancel()
        self._dns = None

    def resolve(self, domain: str) -> Deferred:
        """Deferred list of L{Target}s, best first (empty: the domain
        declares that it offers no XMPP server service)."""
        if domain in self.overrides:
            return succeed([self.overrides[domain]])
        queries = [
            self.lookup_service(f"_xmpps-server._tcp.{domain}"),
            self.lookup_service(f"_xmpp-server._tcp.{domain}"),
        ]
        d = DeferredList(queries, consumeErrors=True)
        d.addCallback(self._targets, domain)
        return d

    def _targets(self, results: list[tuple[bool, Any]], domain: str) -> list[Target]:
        records = []
        refused = False
        for (ok, answer), direct in zip(results, (True, False)):
            if not ok:
                continue
            answers = answer[0] if isinstance(answer, tuple) else answer
            for rr in answers:
                srv = getattr(rr, "payload", None)
                if srv is None or not hasattr(srv, "target"):
                    continue
                target = str(srv.target).rstrip(".")
                if not target:
                    refused = True  # RFC 2782: "." means not available
                    continue
                records.append((srv.priority, -srv.weight, not direct,
                                Target(target, srv.port, direct)))
        if records:
            records.sort(key=lambda r: r[:3])
            return [r[3] for r in records]
        if refused:
            log.info("{domain} declares no XMPP server service", domain=domain)
            return []
        return [Target(domain, DEFAULT_PORT, False)]
