# -*- test-case-name: tests.test_application -*-
"""
Deployed applications and how they are loaded from Python modules.

An application module exposes a module-level C{descriptor}
(L{DeploymentDescriptor}); the container instantiates its servlets.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from twisted.logger import Logger

from convergence.container.descriptor import DeploymentDescriptor, DescriptorError
from convergence.container.router import expand


class ApplicationLoadError(Exception):
    """An application could not be imported or its descriptor is invalid."""


@dataclass
class ApplicationContext:
    """What a servlet is given at C{init}: its application and the container."""

    application: "Application"
    container: Any
    settings: Mapping[str, Any]
    domains: tuple[str, ...]
    log: Logger


@dataclass
class Application:
    """One deployed application."""

    name: str
    descriptor: DeploymentDescriptor
    servlets: dict[str, Any] = field(default_factory=dict)
    xmpp_addresses: tuple[str, ...] = ()
    sip_addresses: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    connection_listener: Any = None
    #: The HTTP context path (C{/selfhelp}): the configured one, else the
    #: descriptor's; C{None} if the application is not served over HTTP.
    http_path: str | None = None

    def servlet(self, protocol: str) -> Any | None:
        """The main servlet for C{protocol}, if the application has one."""
        return self.servlets.get(protocol)


def load_application(
    name: str,
    module_name: str,
    domains: Sequence[str],
    xmpp: Sequence[str] | None = None,
    settings: Mapping[str, Any] | None = None,
    sip: Sequence[str] | None = None,
    http: str | None = None,
) -> Application:
    """
    Import C{module_name} and build an L{Application} from its descriptor.

    @param xmpp: addresses from the configuration, replacing the
        descriptor's own; likewise C{sip}, and C{http} for the context path.
    """
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise ApplicationLoadError(
            f"apps.{name}.module: cannot import {module_name!r}: {e}"
        ) from e
    descriptor = getattr(module, "descriptor", None)
    if not isinstance(descriptor, DeploymentDescriptor):
        raise ApplicationLoadError(
            f"apps.{name}.module: {module_name} has no DeploymentDescriptor"
            " named 'descriptor'"
        )
    addresses = _expand_all(descriptor.xmpp if xmpp is None else xmpp, domains)
    sip_addresses = _expand_all(descriptor.sip if sip is None else sip, domains)
    try:
        servlets = {p: cls() for p, cls in descriptor.servlets.items()}
        listener = (
            descriptor.connection_listener()
            if descriptor.connection_listener is not None
            else None
        )
    except (DescriptorError, TypeError) as e:
        raise ApplicationLoadError(f"apps.{name}: {e}") from e
    merged = dict(descriptor.settings)
    merged.update(settings or {})
    return Application(
        name=name,
        descriptor=descriptor,
        servlets=servlets,
        xmpp_addresses=addresses,
        sip_addresses=sip_addresses,
        http_path=descriptor.http if http is None else http,
        settings=merged,
        connection_listener=listener,
    )


def _expand_all(patterns: Sequence[str], domains: Sequence[str]) -> tuple[str, ...]:
    addresses: list[str] = []
    for pattern in patterns:
        addresses.extend(expand(pattern, domains))
    return tuple(addresses)
