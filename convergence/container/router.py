# -*- test-case-name: tests.test_app_router -*-
"""
The default application router: a rules table mapping addresses to apps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from zope.interface import implementer

from convergence.container.interfaces import IApplicationRouter


@dataclass(frozen=True)
class RoutingRule:
    """C{address} of C{protocol} is served by the application C{application}."""

    protocol: str
    address: str
    application: Any


class RoutingConflict(ValueError):
    """Two applications claim the same address."""


@implementer(IApplicationRouter)
class DefaultApplicationRouter:
    """
    Exact-match rules table, consulted most specific candidate first.

    For XMPP the candidates are the target's bare JID, then its domain, so an
    application can own a whole domain (C{echo.example.org}) or single JIDs
    on a shared domain (C{selfhelp@example.org}).
    """

    def __init__(self, rules: Iterable[RoutingRule] = ()) -> None:
        self._table: dict[tuple[str, str], Any] = {}
        for rule in rules:
            self.add_rule(rule)

    def add_rule(self, rule: RoutingRule) -> None:
        """Add one rule; a second app for the same address is refused."""
        key = (rule.protocol, rule.address.lower())
        existing = self._table.get(key)
        if existing is not None and existing is not rule.application:
            raise RoutingConflict(
                f"{rule.protocol} address {rule.address} is claimed by both"
                f" {existing.name} and {rule.application.name}"
            )
        self._table[key] = rule.application

    def addresses(self, protocol: str) -> list[str]:
        """Every address routed for C{protocol}."""
        return sorted(a for (p, a) in self._table if p == protocol)

    def select(self, protocol: str, candidates: Sequence[str]) -> Any | None:
        """The application of the first candidate with a rule, or C{None}."""
        table = self._table
        for candidate in candidates:
            app = table.get((protocol, candidate))
            if app is not None:
                return app
        return None


def expand(pattern: str, domains: Sequence[str]) -> list[str]:
    """Expand C{{domain}} in an address pattern for each server domain."""
    if "{domain}" not in pattern:
        return [pattern.lower()]
    return [pattern.replace("{domain}", d).lower() for d in domains]
