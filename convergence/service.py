# -*- test-case-name: tests.test_service -*-
"""
Builds the running server from a L{Config}: data directory, certificate,
stores, container and applications, protocol services and their listeners.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.application import internet, service
from twisted.logger import Logger

from convergence.auth.accounts import Accounts
from convergence.config import Config, ConfigError
from convergence.container.application import ApplicationLoadError, load_application
from convergence.container.container import Container
from convergence.container.descriptor import DescriptorError
from convergence.container.router import RoutingConflict
from convergence.store.sqlite import SqliteAccountStore
from convergence.tls import ensure_certificate, server_tls_options
from convergence.xmpp.c2s import C2SFactory
from convergence.xmpp.server import XmppServer

log = Logger()


@dataclass
class Convergence:
    """The assembled server, before it listens anywhere."""

    config: Config
    store: SqliteAccountStore
    accounts: Accounts
    container: Container
    xmpp: XmppServer

    def c2s_factory(self) -> C2SFactory:
        return C2SFactory(self.xmpp)

    def close(self) -> None:
        self.xmpp.shutdown()
        self.container.undeploy_all()
        self.store.close()


def load_applications(config: Config, container: Container) -> None:
    """Import and deploy every configured application."""
    for app_config in config.apps:
        try:
            app = load_application(
                app_config.name, app_config.module, config.domains,
                app_config.xmpp, app_config.settings,
            )
            container.deploy(app)
        except (ApplicationLoadError, DescriptorError, RoutingConflict) as e:
            raise ConfigError(str(e)) from e


def prepare_data_dir(config: Config) -> None:
    """Create the data directory and the self-signed certificate if needed."""
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        if not config.tls.certificate:
            ensure_certificate(config.certificate_path, config.domains)
    except OSError as e:
        raise ConfigError(f"data_dir: cannot use {config.data_dir}: {e.strerror}") from e


def build(config: Config, reactor: Any = None) -> Convergence:
    """Assemble every component for C{config}."""
    if reactor is None:
        from twisted.internet import reactor  # type: ignore[no-redef]
    prepare_data_dir(config)
    try:
        tls = server_tls_options(
            config.certificate_path,
            Path(config.tls.private_key) if config.tls.private_key else None,
        )
    except Exception as e:
        raise ConfigError(f"tls.certificate: cannot load {config.certificate_path}: {e}") from e
    store = SqliteAccountStore(config.database_path)
    accounts = Accounts(store, config.xmpp.scram_iterations)
    container = Container(reactor)
    load_applications(config, container)
    xmpp = XmppServer(
        config.xmpp, config.domains, accounts, container, reactor, tls_options=tls,
    )
    return Convergence(config, store, accounts, container, xmpp)


class ConvergenceService(service.MultiService):
    """The top-level service: closes the components when stopped."""

    def __init__(self, server: Convergence) -> None:
        super().__init__()
        self.server = server

    def startService(self) -> None:
        super().startService()
        c = self.server.config
        log.info(
            "convergence serving {domains} on {interface}"
            " (c2s {c2s}, data in {data_dir})",
            domains=", ".join(c.domains), interface=c.interface,
            c2s=c.listen.c2s_port or "off", data_dir=str(c.data_dir),
        )

    def stopService(self) -> Any:
        self.server.close()
        return super().stopService()


def make_service(config: Config, reactor: Any = None) -> ConvergenceService:
    """The twistd service for C{config}: components plus listeners."""
    server = build(config, reactor)
    top = ConvergenceService(server)
    if config.listen.c2s_port:
        internet.TCPServer(
            config.listen.c2s_port, server.c2s_factory(), interface=config.interface
        ).setServiceParent(top)
    return top
