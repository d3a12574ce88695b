# -*- test-case-name: tests.test_service -*-
"""
Builds the running server from a L{Config}: data directory, certificate,
stores, container and applications, protocol services and their listeners.
"""

from __future__ import annotations

import gc
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from twisted.application import internet, service
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from convergence import tls_exporter
from convergence.alert import resource as alert_resource
from convergence.alert.poster import XmppAlerts
from convergence.alert.resource import AlertResource
from convergence.alert.tokens import Tokens
from convergence.auth.accounts import AccountLookup, Accounts
from convergence.config import Config, ConfigError
from convergence.container.application import ApplicationLoadError, load_application
from convergence.container.container import Container
from convergence.container.descriptor import DescriptorError
from convergence.container.router import RoutingConflict
from convergence.http import hostmeta
from convergence.http import upload as http_upload
from convergence.http.listener import HttpListener
from convergence.http.resource import HttpSite, MountConflict, base_url, make_site
from convergence.http.wsupgrade import WebSocketUpgrade
from convergence.sip.core import UserAgentCore
from convergence.sip.registrar import Authenticator, Registrar
from convergence.sip.servlet import SipFactory
from convergence.sip.timers import Timers
from convergence.sip.transport import SipTransportLayer
from convergence.sip.ws import SipWebSocketFactory
from convergence.store.dbthread import DatabaseThread, run_now
from convergence.store.sqlite import SqliteAccountStore, SqliteLocationStore
from convergence.store.sqlite_im import SqliteImStore
from convergence.store.sqlite_mam import SqliteArchiveStore
from convergence.store.sqlite_muc import SqliteMucStore
from convergence.store.sqlite_pep import SqlitePepStore
from convergence.store.sqlite_push import SqlitePushStore
from convergence.store.sqlite_upload import SqliteUploadStore
from convergence.store.writebehind import WriteBehindLocationStore
from convergence.tls import (
    ALPN_HTTP_1_1,
    ALPN_XMPP_CLIENT,
    ensure_certificate,
    server_tls_context,
)
from convergence.upload.files import FileStore
from convergence.upload.service import UploadService
from convergence.upload.signing import Signer, load_secret
from convergence.xmpp.c2s import C2SFactory
from convergence.xmpp.s2s.manager import S2SManager
from convergence.xmpp.server import XmppServer
from convergence.xmpp.websocket import (
    ALT_CONNECTIONS_WEBSOCKET,
    XmppWebSocketFactory,
    websocket_url,
)

log = Logger()


@dataclass
class Convergence:
    """The assembled server, before it listens anywhere."""

    config: Config
    store: SqliteAccountStore
    accounts: Accounts
    container: Container
    xmpp: XmppServer
    sip: UserAgentCore
    #: The registrar's bindings: in memory, written behind to SQLite.
    locations: WriteBehindLocationStore
    #: The HTTP site: every application's HTTP servlet under its context path.
    http: HttpSite | None = None
    #: Runs the server's SQLite queries off the reactor thread.
    database: DatabaseThread | None = None
    #: The TLS context of the direct TLS client port (ALPN xmpp-client).
    direct_tls: Any = None
    #: HTTP File Upload (XEP-0363), when the HTTP listener is on.
    uploads: UploadService | None = None
    #: Event alerting at /api/alert, when a token is configured.
    alerts: AlertResource | None = None
    #: The same site over HTTPS, when C{listen.https_port} is set.
    https: HttpSite | None = None
    #: Federation (server-to-server streams), when C{s2s.enabled}.
    s2s: S2SManager | None = None

    def c2s_factory(self) -> C2SFactory:
        return C2SFactory(self.xmpp)

    def c2s_tls_factory(self) -> C2SFactory:
        """Client streams with TLS from the first byte (XEP-0368)."""
        return C2SFactory(self.xmpp, self.direct_tls)

    def close(self) -> None:
        self.xmpp.shutdown()
        self.container.undeploy_all()
        self.sip.shutdown()
        if self.database is not None:
            self.database.stop()  # after the queued queries, before the connections close
        self.locations.close()
        if self.uploads is not None:
            self.uploads.store.close()
        self.xmpp.im_store.close()
        self.xmpp.push_store.close()
        self.xmpp.pep_store.close()
        self.xmpp.muc_store.close()
        self.xmpp.archive_store.close()
        self.store.close()


def load_applications(config: Config, container: Container) -> None:
    """Import and deploy every configured application."""
    for app_config in config.apps:
        try:
            app = load_application(
                app_config.name, app_config.module, config.domains,
                app_config.xmpp, app_config.settings, app_config.sip,
                http=app_config.http,
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
    key = Path(config.tls.private_key) if config.tls.private_key else None
    client_ca = Path(config.tls.client_ca) if config.tls.client_ca else None
    if client_ca is not None:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_verify_locations(cafile=str(client_ca))
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(f"tls.client_ca: cannot load {client_ca}"
                              f" as a PEM CA bundle: {e}") from e
    try:
        tls = server_tls_context(config.certificate_path, key, client_ca=client_ca)
        direct_tls = server_tls_context(config.certificate_path, key,
                                        alpn=(ALPN_XMPP_CLIENT,), client_ca=client_ca)
        https_tls = server_tls_context(config.certificate_path, key,
                                       alpn=(ALPN_HTTP_1_1,)) \
            if config.listen.https_port else None
    except Exception as e:
        used = "c2s and HTTPS" if config.listen.https_port else "c2s"
        raise ConfigError(f"tls.certificate: cannot load {config.certificate_path}"
                          f" (the certificate of {used}): {e}") from e
    tls_exporter.available()  # its one-time self-test now, not on a client's login
    store = SqliteAccountStore(config.database_path)
    accounts = Accounts(store, config.xmpp.scram_iterations)
    database = DatabaseThread(reactor)
    container = Container(reactor, domains=config.domains)
    load_applications(config, container)
    im_store = SqliteImStore(config.database_path)
    xmpp = XmppServer(
        config.xmpp, config.domains, accounts, container, reactor, tls_context=tls,
        run_in_db=database.run, im_store=im_store,
        push_store=SqlitePushStore(config.database_path),
        pep_store=SqlitePepStore(config.database_path),
        muc_store=SqliteMucStore(config.database_path),
        archive_store=SqliteArchiveStore(config.database_path),
    )
    locations = WriteBehindLocationStore(SqliteLocationStore(config.database_path),
                                         database.run, reactor.seconds)
    sip = build_sip(config, reactor, container, AccountLookup(accounts, database.run),
                    locations, database.run)
    http = build_http(config, container, reactor)
    https = http.secure(https_tls) if https_tls is not None else None
    build_sip_websocket(config, reactor, sip, http)
    uploads = build_uploads(config, reactor, database.run, http)
    xmpp.http_upload = uploads
    alerts = build_alerts(config, xmpp, http, reactor)
    build_xmpp_websocket(config, xmpp, http)
    s2s = build_s2s(config, xmpp, key, reactor)
    return Convergence(config, store, accounts, container, xmpp, sip, locations, http,
                       database, direct_tls, uploads, alerts, https, s2s)


def build_s2s(config: Config, xmpp: XmppServer, key: Path | None,
              reactor: Any) -> S2SManager | None:
    """Federation (C{[s2s]}): outgoing streams on the router's remote
    route, the certificate for STARTTLS and SASL EXTERNAL."""
    if not config.s2s.enabled:
        return None
    try:
        manager = S2SManager(xmpp, config.s2s, config.certificate_path, key, reactor)
    except Exception as e:
        raise ConfigError(f"s2s: cannot set up TLS: {e}") from e
    manager.install()
    return manager


def build_uploads(config: Config, reactor: Any, run_in_db: Callable[..., Deferred],
                  http: HttpSite | None) -> UploadService | None:
    """
    HTTP File Upload on the HTTP listener (C{[http_upload]}): files and
    the secret in the data directory, slots in the database.  None when
    disabled or when nothing listens for HTTP.
    """
    settings = config.http_upload
    if not settings.enabled or http is None \
            or not (config.listen.http_port or config.listen.https_port):
        return None
    root = config.data_dir / "http_upload"
    try:
        files = FileStore(root)
        secret = load_secret(config.data_dir / "http_upload.key")
    except (OSError, ValueError) as e:
        raise ConfigError(f"http_upload: cannot use {root}: {e}") from e
    base = http.root.container.factories["http"].base_url
    uploads = UploadService(settings, SqliteUploadStore(config.database_path), files,
                            Signer(secret), reactor, run_in_db, base)
    try:
        http_upload.install(http, uploads)
    except MountConflict as e:
        raise ConfigError(f"http_upload: {e}") from e
    return uploads


def build_alerts(config: Config, xmpp: XmppServer, http: HttpSite | None,
                 reactor: Any) -> AlertResource | None:
    """
    Event alerting at C{/api/alert} of the HTTP listener (C{[alert]}),
    when at least one token is configured (the file's, or
    C{CONVERGENCE_ALERT_TOKEN}); None otherwise (the path is then 404).
    """
    settings = config.alert
    if not settings.tokens or http is None \
            or not (config.listen.http_port or config.listen.https_port):
        return None
    tokens = Tokens(settings.tokens, settings.rate, settings.burst)
    resource = AlertResource(XmppAlerts(xmpp, settings), tokens,
                             min(settings.max_body_size, config.http.max_body_size), reactor)
    try:
        alert_resource.install(http, resource)
    except MountConflict as e:
        raise ConfigError(f"alert: {e}") from e
    log.info("alerts accepted at POST /api/alert for the tokens {names}",
             names=", ".join(tokens.names()))
    for name, secret in settings.tokens:
        if len(secret) < 16:
            log.warn("alert token {name} is short ({length} characters): anyone who"
                     " guesses it posts alerts; use e.g. `openssl rand -hex 16`",
                     name=name, length=len(secret))
    return resource


def build_xmpp_websocket(config: Config, xmpp: XmppServer, http: HttpSite | None) -> None:
    """
    XMPP over WebSocket (RFC 7395) at C{xmpp.websocket_path} of the HTTP
    site, advertised by XEP-0156 host-meta; nothing when it is off or
    nothing listens for HTTP.
    """
    settings = config.xmpp
    if (not settings.websocket or http is None
            or not (config.listen.http_port or config.listen.https_port)):
        return
    factory = XmppWebSocketFactory(xmpp, settings.websocket_secure)
    segment = settings.websocket_path.lstrip("/")
    base = http.root.container.factories["http"]

    def links() -> list[tuple[str, str]]:
        url = websocket_url(settings.websocket_url,
                            config.http_upload.public_url or base.base_url,
                            settings.websocket_path)
        return [(ALT_CONNECTIONS_WEBSOCKET, url)]

    try:
        http.root.mount_resource(segment, WebSocketUpgrade(factory))
        hostmeta.install(http, links)
    except MountConflict as e:
        raise ConfigError(f"xmpp.websocket_path: {e}") from e


def build_http(config: Config, container: Container, reactor: Any = None) -> HttpSite:
    """
    The HTTP site with the C{[http]} limits on every connection; its URLs
    use the listening address (or the first domain), or with HTTPS on,
    C{https://} and the first domain (the name a certificate is for).
    """
    host = config.interface
    if host in ("0.0.0.0", "::"):
        host = config.domains[0]
    if config.listen.https_port:
        base = base_url(config.domains[0], config.listen.https_port, "https")
    else:
        base = base_url(host, config.listen.http_port)
    try:
        return make_site(container, base=base, limits=config.http, reactor=reactor)
    except MountConflict as e:
        raise ConfigError(str(e)) from e


def build_sip(config: Config, reactor: Any, container: Container, accounts: AccountLookup,
              locations: Any, run_in_db: Callable[..., Deferred]) -> UserAgentCore:
    """The SIP stack: transport, transactions, UA core, registrar."""
    sip = config.sip
    now = reactor.seconds
    authenticator = Authenticator(accounts, list(config.domains), now, sip.nonce_lifetime,
                                  sip.digest_algorithms, sip.websocket_digest_algorithms,
                                  sip.digest_replay_entries)
    # The bindings are in memory (written behind by the store itself), so
    # the registrar reads and changes them on the reactor thread: one trip
    # to the database thread per REGISTER, for the HA1.
    registrar = Registrar(locations, authenticator, sip, now, run_now)
    transport = SipTransportLayer(reactor, None, config.interface, sip.max_message_size,
                                  sip.udp_receive_buffer)
    core = UserAgentCore(reactor, container, list(config.domains), transport, registrar,
                         Timers(sip.t1, sip.t2, sip.t4), sip.challenge_invites,
                         proxy=sip.proxy)
    container.factories["sip"] = SipFactory(core)
    return core


def build_sip_websocket(config: Config, reactor: Any, sip: UserAgentCore,
                        http: HttpSite | None) -> SipWebSocketFactory | None:
    """
    SIP over WebSocket (RFC 7118) at C{sip.websocket_path} of the HTTP
    listener; None when disabled or when nothing listens for HTTP.
    """
    if not config.sip.websocket or http is None or not config.listen.http_port:
        return None
    factory = SipWebSocketFactory(sip.transport, reactor, config.sip.websocket_ping_interval)
    try:
        http.root.mount_resource(config.sip.websocket_path.strip("/"),
                                 WebSocketUpgrade(factory))
    except MountConflict as e:
        raise ConfigError(f"sip.websocket_path: {e}") from e
    sip.transport.ws_port = config.listen.http_port
    return factory


class SipListener(service.Service):
    """
    Listens for SIP on UDP and TCP while running; on stop (SIGTERM) the UA
    core ends its dialogs with BYE and answers new INVITEs 503, and the
    ports close once the BYEs are answered or C{grace} seconds have passed.
    """

    def __init__(self, core: UserAgentCore, port: int, interface: str,
                 grace: float = 2.0) -> None:
        self.core = core
        self.port = port
        self.interface = interface
        self.grace = grace
        self.ports: list[Any] = []

    def startService(self) -> None:
        super().startService()
        self.ports = self.core.transport.listen(self.port, self.interface)

    def stopService(self) -> Any:
        super().stopService()
        from twisted.internet.defer import gatherResults

        def stop_listening(_: Any) -> Deferred:
            ports, self.ports = self.ports, []
            return gatherResults([maybeDeferred(p.stopListening)
                                  for p in ports if p is not None])

        d = self.core.shut_down(self.grace)
        d.addErrback(lambda f: log.failure("ending the SIP dialogs", f))
        d.addCallback(lambda _: self.core.transport.close_flows())
        return d.addCallback(stop_listening)


class UploadPurger(service.Service):
    """Deletes expired uploads every C{http_upload.purge_interval} seconds."""

    def __init__(self, uploads: UploadService, reactor: Any = None) -> None:
        self.uploads = uploads
        self.loop = LoopingCall(self._purge)
        if reactor is not None:
            self.loop.clock = reactor

    def _purge(self) -> Deferred:
        d = self.uploads.purge()
        d.addErrback(lambda f: log.failure("purging expired uploads", f))
        return d

    def startService(self) -> None:
        super().startService()
        self.loop.start(self.uploads.config.purge_interval, now=True)

    def stopService(self) -> None:
        super().stopService()
        if self.loop.running:
            self.loop.stop()


class ConvergenceService(service.MultiService):
    """The top-level service: closes the components when stopped."""

    def __init__(self, server: Convergence) -> None:
        super().__init__()
        self.server = server
        #: the metrics (L{convergence.metrics.setup.Metrics}) when enabled
        self.metrics: Any = None
        #: makes the log observer installed on the twistd application
        #: this service joins (set by the twistd plugin, from C{[log]})
        self.log_observer: Callable[[], Any] | None = None

    def setServiceParent(self, parent: Any) -> None:
        """Join C{parent}; a twistd application gets the C{[log]} observer
        (twistd reads it when it starts logging, unless --logger is given)."""
        super().setServiceParent(parent)
        if self.log_observer is not None and hasattr(parent, "setComponent"):
            from twisted.logger import ILogObserver

            parent.setComponent(ILogObserver, self.log_observer())

    def startService(self) -> None:
        super().startService()
        if self.server.database is not None:
            self.server.database.start()
        registrar = self.server.sip.registrar
        if registrar is not None:
            # WebSocket flows of an earlier run are gone, and the contacts
            # registered through them with them (RFC 7118 5.3)
            d = registrar.forget_flows()
            d.addErrback(lambda f: log.failure("removing stale WebSocket bindings", f))
        self.server.xmpp.start()
        c = self.server.config
        log.info(
            "convergence serving {domains} on {interface}"
            " (c2s {c2s}, c2s direct TLS {c2s_tls}, s2s {s2s}, sip {sip}, http {http},"
            " metrics {metrics}, data in {data_dir})",
            domains=", ".join(c.domains), interface=c.interface,
            c2s=c.listen.c2s_port or "off", c2s_tls=c.listen.c2s_tls_port or "off",
            s2s=(c.listen.s2s_port or "off") if self.server.s2s is not None else "off",
            sip=c.listen.sip_port or "off",
            http=(f"{c.listen.http_port or 'off'}, https {c.listen.https_port or 'off'}"),
            metrics=(("on the HTTP listener at " + c.metrics.path if c.metrics.on_http
                      else f"{c.metrics.listen}{c.metrics.path}")
                     if c.metrics.enabled else "off"),
            data_dir=str(c.data_dir),
        )

    def stopService(self) -> Deferred:
        """
        Shut down in order (SIGTERM under twistd): XMPP streams get
        C{system-shutdown}, then the listeners stop (HTTP finishes its
        requests, SIP ends its dialogs), then the applications are
        undeployed and the database thread finishes its queue before the
        stores close.
        """
        self.server.xmpp.shutdown()
        d = maybeDeferred(super().stopService)
        d.addErrback(lambda f: log.failure("stopping the listeners", f))
        d.addCallback(lambda _: self.server.close())
        return d


def freeze_startup_objects() -> None:
    """
    Move what startup built (modules, classes, configuration, the apps) into
    the garbage collector's permanent generation: full collections, whose
    pause grows with the objects they walk, then walk only what the traffic
    keeps alive.
    """
    gc.collect()
    gc.freeze()
    log.info("startup objects frozen for the garbage collector ({count})",
             count=gc.get_freeze_count())


def make_service(config: Config, reactor: Any = None) -> ConvergenceService:
    """The twistd service for C{config}: components plus listeners."""
    server = build(config, reactor)
    top = ConvergenceService(server)
    if config.listen.c2s_port:
        internet.TCPServer(
            config.listen.c2s_port, server.c2s_factory(), interface=config.interface
        ).setServiceParent(top)
    if config.listen.c2s_tls_port:
        internet.TCPServer(
            config.listen.c2s_tls_port, server.c2s_tls_factory(),
            interface=config.interface,
        ).setServiceParent(top)
    if config.listen.s2s_port and server.s2s is not None:
        internet.TCPServer(
            config.listen.s2s_port, server.s2s.factory(), interface=config.interface,
        ).setServiceParent(top)
    if config.listen.s2s_tls_port and server.s2s is not None:
        internet.TCPServer(
            config.listen.s2s_tls_port, server.s2s.factory(direct_tls=True),
            interface=config.interface,
        ).setServiceParent(top)
    if config.listen.sip_port:
        SipListener(server.sip, config.listen.sip_port, config.interface,
                    grace=config.sip.shutdown_grace).setServiceParent(top)
    if config.listen.http_port and server.http is not None:
        HttpListener(
            config.listen.http_port, server.http, interface=config.interface,
            grace=config.http.shutdown_grace, reactor=reactor,
        ).setServiceParent(top)
    if config.listen.https_port and server.https is not None:
        HttpListener(
            config.listen.https_port, server.https, interface=config.interface,
            grace=config.http.shutdown_grace, reactor=reactor,
        ).setServiceParent(top)
    if server.uploads is not None:
        UploadPurger(server.uploads, reactor).setServiceParent(top)
    if config.metrics.enabled:
        from convergence.metrics.setup import install_metrics

        top.metrics = install_metrics(server, config.metrics, top, reactor)
    return top
