# -*- test-case-name: tests.test_c2s -*-
"""
The XMPP service: one object holding what every stream and feature shares.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from convergence.auth.accounts import AccountLookup
from convergence.config import XmppConfig
from convergence.container.descriptor import LoginConfig
from convergence.store.dbthread import run_now
from convergence.xmpp.applications import XmppApplications
from convergence.xmpp.delivery import LocalDelivery
from convergence.xmpp.events import EventBus
from convergence.xmpp.features import Feature, FeatureRegistry, builtin_features
from convergence.xmpp.guests import GuestLogins
from convergence.xmpp.limits import (
    AuthFailureLimits,
    ConnectionsPerAddress,
    ReadRate,
    address_host,
)
from convergence.xmpp.router import StanzaRouter
from convergence.xmpp.servlet import XmppConnectionEvent, XmppFactory
from convergence.xmpp.sessions import SessionRegistry
from convergence.xmpp.stats import XmppStats


class XmppServer:
    """
    Shared state of the XMPP service layer: hosted domains, policy, the
    event bus and router, bound sessions, accounts and applications.
    """

    log = Logger()

    def __init__(
        self,
        config: XmppConfig,
        hosts: Sequence[str],
        accounts: Any,
        container: Any,
        clock: IReactorTime,
        tls_context: Any = None,
        run_in_thread: Callable[..., Deferred] = deferToThread,
        run_in_db: Callable[..., Deferred] = run_now,
        features: Iterable[Feature] | None = None,
        im_store: Any = None,
        push_store: Any = None,
        pep_store: Any = None,
        muc_store: Any = None,
        archive_store: Any = None,
    ) -> None:
        """
        @param im_store: rosters and offline messages (an L{IRosterStore}
            and L{IOfflineStore}); by default an in-memory SQLite database.
        @param push_store: XEP-0357 push registrations (an L{IPushStore});
            by default an in-memory SQLite database.
        @param pep_store: personal eventing nodes and private XML (an
            L{IPepStore} and L{IPrivateStore}); by default in memory.
        @param muc_store: persistent XEP-0045 rooms (an L{IMucStore}); by
        @param archive_store: message archives (an L{IArchiveStore}); by
            default an in-memory SQLite database.
        """
        self.config = config
        self.hosts = frozenset(hosts)
        self.default_host = hosts[0]
        self.accounts = accounts
        self.container = container
        self.clock = clock
        self.tls_context = tls_context
        self.run_in_thread = run_in_thread
        #: account queries, on the database thread (Deferreds)
        self.account_lookup = AccountLookup(accounts, run_in_db)
        self.run_in_db = run_in_db
        if im_store is None:
            from convergence.store.sqlite_im import SqliteImStore

            im_store = SqliteImStore(":memory:")
        self.im_store = im_store
        if push_store is None:
            from convergence.store.sqlite_push import SqlitePushStore

            push_store = SqlitePushStore(":memory:")
        self.push_store = push_store
        if pep_store is None:
            from convergence.store.sqlite_pep import SqlitePepStore

            pep_store = SqlitePepStore(":memory:")
        self.pep_store = pep_store
        if muc_store is None:
            from convergence.store.sqlite_muc import SqliteMucStore

            muc_store = SqliteMucStore(":memory:")
        self.muc_store = muc_store
        #: the chat service (L{convergence.xmpp.muc.service.MucService}),
        #: set by the muc feature when it runs
        self.muc: Any = None
        if archive_store is None:
            from convergence.store.sqlite_mam import SqliteArchiveStore

            archive_store = SqliteArchiveStore(":memory:")
        self.archive_store = archive_store
        self.bus = EventBus()
        self.router = StanzaRouter(self.bus, self.hosts)
        self.registry = SessionRegistry()
        #: stream features offered after SASL, added by feature modules:
        #: (namespace, name) for an empty element (roster versioning,
        #: pre-approval …) or C{stream -> element | None} (caps, SM …)
        self.stream_features: list[Any] = []
        #: more disco#items of a hosted domain, added by feature modules:
        #: C{host -> [(jid, name or None)]} (the upload service …)
        self.disco_items: list[Callable[[str], list[tuple[str, str | None]]]] = []
        #: federation (L{convergence.xmpp.s2s.manager.S2SManager}), when the
        #: server runs it; set by the manager's install
        self.s2s: Any = None
        #: the HTTP upload service (L{convergence.upload.service}), when the
        #: server runs one; set by whoever builds the server
        self.http_upload: Any = None
        #: the same, offered with the SASL mechanisms, before authentication
        #: (XEP-0077's register feature)
        self.pre_auth_features: list[Any] = []
        #: XEP-0128 extension forms of the server's disco#info, added by
        #: feature modules: C{() -> disco.Form | None} (XEP-0157 …)
        self.disco_forms: list[Callable[[], Any]] = []
        self.connections: set[Any] = set()
        #: counters for the metrics endpoint (read when it is scraped)
        self.stats = XmppStats()
        self._per_ip = ConnectionsPerAddress()
        #: one-time login tokens for guest addresses (applications issue them)
        self.guests = GuestLogins(clock, config.guest_token_lifetime)
        # after every other handler: they may still ask whether it is a guest
        self.bus.hook("c2s/unbound", self._guest_unbound, -1000)
        self.auth_limits = AuthFailureLimits(
            clock, config.auth_failures_per_ip,
            config.auth_failures_per_account, config.auth_failure_window)
        self.client_login = LoginConfig(
            tls="required" if config.require_tls else "optional",
            sasl=tuple(config.sasl_mechanisms),
        )
        LocalDelivery(self.registry, self.account_exists).install(self.router)
        self.applications = XmppApplications(self, container)
        self.applications.install(self.router)
        container.factories["xmpp"] = XmppFactory(self.applications)
        self.features = FeatureRegistry(
            builtin_features() if features is None else features
        )
        self.features.install(self)

    # Policy
    def serves_c2s(self, host: str) -> bool:
        """Whether clients may open streams to C{host}."""
        return host in self.hosts

    def login_config(self, host: str) -> LoginConfig:
        """The login policy for client streams to C{host}."""
        return self.client_login

    def account_exists(self, localpart: str | None, domain: str) -> Deferred:
        """Deferred: whether C{localpart@domain} is an account here."""
        if localpart is None:
            return succeed(False)
        return self.account_lookup.exists(localpart, domain)

    def container_addresses(self, host: str) -> list[str]:
        """Application addresses listed in disco#items of C{host}."""
        return [
            a for a in self.container.router.addresses("xmpp")
            if a == host or a.endswith("." + host) or a.endswith("@" + host)
        ]

    def stream_opened(self, stream: Any, stage: str) -> list[XmppConnectionEvent]:
        """Tell applications' connection listeners of a stream (re)start."""
        return self.applications.stream_opened(stream, stage)

    # Connections
    def admit(self, addr: Any) -> bool:
        """Enforce C{max_connections_per_ip} at accept time."""
        host = address_host(addr)
        if not self._per_ip.admits(host, self.config.max_connections_per_ip):
            self.log.warn("refusing connection from {host}: limit of {n} reached",
                          host=host, n=self.config.max_connections_per_ip)
            return False
        return True

    def read_rate(self) -> ReadRate | None:
        """A fresh read-rate limit for one connection (None: unlimited)."""
        rate = self.config.max_read_rate
        if not rate:
            return None
        return ReadRate(self.clock, rate, max(rate, self.config.read_burst))

    def connection_opened(self, stream: Any) -> None:
        self.connections.add(stream)
        self._per_ip.opened(stream.peer_ip())
        self.stats.connection_accepted(stream.transport_label)

    def connection_released(self, stream: Any) -> bool:
        """
        Forget C{stream}'s connection (per-address accounting); return
        whether it was still counted.
        """
        if stream not in self.connections:
            return False
        self.connections.discard(stream)
        self._per_ip.closed(stream.peer_ip())
        return True

    def connection_moved(self, old: Any, new: Any) -> None:
        """The connection of C{old} now carries the session C{new}
        (XEP-0198 resumption): same socket, same peer."""
        if old in self.connections:
            self.connections.discard(old)
            self.connections.add(new)

    def connection_closed(self, stream: Any) -> None:
        """
        A client connection is gone.  The session ends with it, unless a
        C{c2s/lost} handler keeps it (XEP-0198 hibernation: it ends later
        through L{session_ended}).
        """
        if not self.connection_released(stream):
            return
        if self.bus.fire("c2s/lost", stream):
            return
        self.session_ended(stream)

    def session_ended(self, stream: Any) -> None:
        """A client session is over: C{c2s/closed} (still bound: presence
        says goodbye), unbinding, C{c2s/unbound}."""
        self.bus.fire("c2s/closed", stream)
        self.registry.unbind(stream)
        self.bus.fire("c2s/unbound", stream)
        self.applications.connection_closed(stream)

    def _guest_unbound(self, stream: Any) -> None:
        jid = getattr(stream, "jid", None)
        if jid is not None and not self.registry.resources(jid.bare):
            self.guests.forget(jid)

    def start(self) -> None:
        """The service runs (after twistd's fork, the database thread up):
        fire C{xmpp/started} for features with work to do at startup."""
        self.bus.fire("xmpp/started", self)

    def shutdown(self) -> None:
        """
        Fire C{xmpp/shutdown} (feature modules stop their timers; sessions
        without a connection end there), then close every stream with
        C{system-shutdown}.
        """
        self.bus.fire("xmpp/shutdown", self)
        for stream in list(self.connections):
            stream.stream_error("system-shutdown", wait=False)
