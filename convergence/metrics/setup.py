# -*- test-case-name: tests.test_metrics -*-
"""
Puts the metrics together for the running server (C{[metrics]}): the
registry (the server's collector, and prometheus_client's process and
platform collectors), the reactor lag monitor, and the endpoint, on a
listener of its own or mounted on the HTTP listener.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry
from twisted.application import internet, service

from convergence.config import ConfigError, MetricsConfig, read_token_file
from convergence.http.resource import MountConflict
from convergence.metrics.collector import ConvergenceCollector
from convergence.metrics.endpoint import MetricsResource, metrics_site
from convergence.metrics.lag import ReactorLag


@dataclass
class Metrics:
    """The metrics of one server."""

    registry: CollectorRegistry
    collector: ConvergenceCollector
    lag: ReactorLag
    resource: MetricsResource


def token_of(config: MetricsConfig) -> str | None:
    """The configured bearer token (C{token}, or the first line of C{token_file})."""
    if config.token_file:
        return read_token_file("metrics.token_file", config.token_file)
    return config.token or None


def build_metrics(server: Any, config: MetricsConfig, reactor: Any) -> Metrics:
    """The registry, collector, lag monitor and resource of C{server}."""
    lag = ReactorLag(reactor, config.reactor_lag_interval)
    collector = ConvergenceCollector(server, lag, server.database.run
                                     if server.database is not None else None)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    resource = MetricsResource(registry, collector.refresh, token_of(config))
    return Metrics(registry, collector, lag, resource)


def install_metrics(server: Any, config: MetricsConfig, parent: service.MultiService,
                    reactor: Any = None) -> Metrics:
    """
    Build the metrics and attach their services to C{parent}: the lag
    monitor and, unless the endpoint is on the HTTP listener (mounted at
    its path there), a listener of its own.

    @raise ConfigError: the path is taken on the HTTP listener.
    """
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    metrics = build_metrics(server, config, reactor)
    metrics.lag.setServiceParent(parent)
    if config.on_http:
        try:
            server.http.root.mount_resource(config.path.strip("/"), metrics.resource)
        except MountConflict as e:
            raise ConfigError(f"metrics.path: {e}") from e
    else:
        host, port = config.address
        site = metrics_site(config.path, metrics.resource, reactor)
        kwargs: dict[str, Any] = {"interface": host}
        if reactor is not None:
            kwargs["reactor"] = reactor
        internet.TCPServer(port, site, **kwargs).setServiceParent(parent)
    return metrics
