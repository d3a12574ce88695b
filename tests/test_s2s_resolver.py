"""Finding a remote domain's server: override map, SRV, fallback."""

from __future__ import annotations

from twisted.internet.defer import fail, succeed
from twisted.names import dns
from twisted.names.error import DNSNameError
from twisted.trial.unittest import SynchronousTestCase

from convergence.xmpp.s2s.resolver import Resolver, Target, parse_override


def srv(name: str, priority: int, weight: int, port: int, target: str) -> dns.RRHeader:
    return dns.RRHeader(name=name, type=dns.SRV,
                        payload=dns.Record_SRV(priority, weight, port, target))


class ResolverTests(SynchronousTestCase):
    def resolve(self, resolver: Resolver, domain: str) -> list[Target]:
        return self.successResultOf(resolver.resolve(domain))

    def test_override_wins(self) -> None:
        asked: list[str] = []
        resolver = Resolver((("b.test", "127.0.0.2:5270"), ("c.test", "tls:[::1]:5271")),
                            lookup_service=lambda n: asked.append(n) or fail(DNSNameError()))
        self.assertEqual(self.resolve(resolver, "b.test"), [Target("127.0.0.2", 5270)])
        self.assertEqual(self.resolve(resolver, "c.test"), [Target("::1", 5271, True)])
        self.assertEqual(asked, [])

    def test_srv_merged_by_priority(self) -> None:
        """Direct TLS and STARTTLS records in one order (XEP-0368)."""
        answers = {
            "_xmpps-server._tcp.example.org": [
                srv("_xmpps-server._tcp.example.org", 10, 0, 443, "tls.example.org")],
            "_xmpp-server._tcp.example.org": [
                srv("_xmpp-server._tcp.example.org", 5, 0, 5269, "xmpp1.example.org"),
                srv("_xmpp-server._tcp.example.org", 10, 0, 5269, "xmpp2.example.org"),
                srv("_xmpp-server._tcp.example.org", 20, 0, 5269, "xmpp3.example.org")],
        }
        resolver = Resolver(lookup_service=lambda n: succeed((answers[n], [], [])))
        self.assertEqual(self.resolve(resolver, "example.org"), [
            Target("xmpp1.example.org", 5269), Target("tls.example.org", 443, True),
            Target("xmpp2.example.org", 5269), Target("xmpp3.example.org", 5269)])

    def test_no_srv_falls_back_to_the_domain(self) -> None:
        """No record: the domain itself on 5269 (A/AAAA by the endpoint)."""
        resolver = Resolver(lookup_service=lambda n: fail(DNSNameError(n)))
        self.assertEqual(self.resolve(resolver, "plain.test"), [Target("plain.test", 5269)])

    def test_dot_target_means_no_service(self) -> None:
        """RFC 2782: a single '.' target says there is no XMPP service."""
        def lookup(name: str):
            if name.startswith("_xmpp-server"):
                return succeed(([srv(name, 0, 0, 0, "")], [], []))  # "." on the wire
            return fail(DNSNameError(name))
        self.assertEqual(self.resolve(Resolver(lookup_service=lookup), "no.test"), [])

    def test_parse_override(self) -> None:
        self.assertEqual(parse_override("h.test:1"), Target("h.test", 1))
        self.assertEqual(parse_override("tls:h.test:2"), Target("h.test", 2, True))
